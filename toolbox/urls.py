"""Files wherever they live: a local path, an `http(s)://` URL, any fsspec URL (`s3://`, `gs://`, `memory://`,
`file://`, ...: the protocol's package installed by the user) or a `pipe:` command whose output is the file.

A folder of files (a tag-shards output) is named by its root: `join(root, "shards/a.tar")` is a path, a URL below
the root, or, for `pipe:`, the command with `{}` replaced by the file's path inside the folder
(`pipe:aws s3 cp s3://bucket/cc3m/{} -`). Reading: `read_bytes`, `open_stream`, `size`, `digest`; a failure is one
`UserError` naming the location (`NotFound` when there is no such file). Writing to an fsspec URL: `publish`, the
atomic-write rule for object stores (each file to a temporary key, then renamed, the record file last).
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import posixpath
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from toolbox.errors import UserError

log = logging.getLogger(__name__)
LOCAL, HTTP, FSSPEC, PIPE = "local", "http", "fsspec", "pipe"
TIMEOUT_S = 60.0
CHUNK = 1 << 20


class NotFound(UserError):
    """The location holds no such file (HTTP 404, a missing key or path)."""


def kind(location: str) -> str:
    """`local`, `http`, `fsspec` or `pipe`."""
    if location.startswith("pipe:"):
        return PIPE
    scheme = urlsplit(location).scheme.lower()
    if scheme in ("http", "https"):
        return HTTP
    return FSSPEC if scheme and "://" in location else LOCAL


def is_remote(location: str | os.PathLike[str]) -> bool:
    """True for anything but a local path."""
    return kind(str(location)) != LOCAL


def join(root: str | os.PathLike[str], relative: str) -> str:
    """The location of `relative` (a `/`-separated path) inside the folder `root`."""
    root = str(root)
    where = kind(root)
    if where == PIPE:
        if "{}" not in root:
            raise UserError(f"{root}: a pipe: location needs {{}} where the file's path inside the output goes, "
                            "e.g. 'pipe:aws s3 cp s3://bucket/cc3m/{} -'")
        return root.replace("{}", relative)
    if where == LOCAL:
        return str(Path(root) / relative)
    return root.rstrip("/") + "/" + relative


def _fsspec(url: str) -> tuple[Any, str]:
    """(filesystem, path) of an fsspec URL; a missing protocol package is one line."""
    try:
        from fsspec.core import url_to_fs
    except ImportError:
        raise UserError(f"{url}: reading URLs needs fsspec (pip install fsspec)") from None
    try:
        return url_to_fs(url)
    except ImportError as err:
        protocol = urlsplit(url).scheme
        raise UserError(f"{url}: {protocol}:// needs its fsspec package ({err}); install it, e.g. "
                        "pip install s3fs for s3://, gcsfs for gs://") from None
    except ValueError as err:
        raise UserError(f"{url}: {err}") from None


def _http_error(url: str, err: Exception) -> UserError:
    import urllib.error

    if isinstance(err, urllib.error.HTTPError):
        cls = NotFound if err.code == 404 else UserError
        return cls(f"{url}: HTTP {err.code} {err.reason}")
    reason = getattr(err, "reason", err)
    return UserError(f"{url}: cannot reach the server ({reason})")


def _pipe_command(location: str) -> str:
    return location[len("pipe:"):]


def read_bytes(location: str | os.PathLike[str]) -> bytes:
    """The whole file; `NotFound` or a one-line `UserError` naming the location."""
    location = str(location)
    where = kind(location)
    if where == PIPE:
        result = subprocess.run(_pipe_command(location), shell=True, capture_output=True, timeout=600)
        if result.returncode != 0:
            last = (result.stderr.decode("utf-8", "replace").strip().splitlines() or ["no message"])[-1][:200]
            raise NotFound(f"{location}: the command exited {result.returncode} ({last})")
        return result.stdout
    with open_stream(location) as stream:
        try:
            return stream.read()
        except OSError as err:
            raise UserError(f"{location}: read failed ({err})") from None


@contextlib.contextmanager
def _one_line(location: str, doing: str) -> Iterator[None]:
    """Errors of reading `location` as one line naming it: `NotFound`, an HTTP status, or what failed."""
    try:
        yield
    except FileNotFoundError:
        raise NotFound(f"{location}: no such file") from None
    except UserError:
        raise
    except OSError as err:
        if kind(location) == HTTP:
            raise _http_error(location, err) from None
        raise UserError(f"{location}: cannot {doing} ({err})") from None


def open_stream(location: str | os.PathLike[str]) -> IO[bytes]:
    """A binary stream of the file, read front to back (what a tar reader needs); close it when done."""
    location = str(location)
    where = kind(location)
    with _one_line(location, "open it"):
        if where == LOCAL:
            return open(location, "rb")
        if where == HTTP:
            import urllib.request

            return urllib.request.urlopen(location, timeout=TIMEOUT_S)  # noqa: S310 - http(s) only, checked above
        if where == FSSPEC:
            fs, path = _fsspec(location)
            return fs.open(path, "rb")
    from webdataset.gopen import gopen_pipe  # webdataset's reader, which checks the command's exit status

    return gopen_pipe(location, "rb")


def size(location: str | os.PathLike[str]) -> int | None:
    """The file's size in bytes, without reading it; None where the location cannot tell (`pipe:`, or an
    HTTP server that sends no Content-Length)."""
    location = str(location)
    where = kind(location)
    with _one_line(location, "read its size"):
        if where == LOCAL:
            return os.path.getsize(location)
        if where == HTTP:
            import urllib.request

            request = urllib.request.Request(location, method="HEAD")
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
                length = response.headers.get("Content-Length")
            return int(length) if length is not None else None
        if where == FSSPEC:
            fs, path = _fsspec(location)
            return int(fs.size(path))
    return None


def digest(location: str | os.PathLike[str]) -> tuple[int, str]:
    """(bytes, hex sha256) of the file, read once front to back."""
    hasher, total = hashlib.sha256(), 0
    with open_stream(location) as stream:
        while block := stream.read(CHUNK):
            hasher.update(block)
            total += len(block)
    return total, hasher.hexdigest()


def publish(folder: Path, url: str, files: Iterable[str], last: str) -> None:
    """Copy `files` (paths relative to `folder`) to the fsspec URL `url`, then `last` (the record that marks the
    output finished). Each goes to a temporary key first and is then renamed (`fs.mv`: on object stores a
    server-side copy and a delete), so a reader never sees a partial file under its final name; a file already
    there with the same size is kept (a resumed upload)."""
    fs, root = _fsspec(url)
    for name in [*files, last]:
        source, target = folder / name, f"{root.rstrip('/')}/{name}"
        if name != last and fs.exists(target) and fs.size(target) == source.stat().st_size:
            continue
        temporary = posixpath.join(root, posixpath.dirname(name), f".{posixpath.basename(name)}.tmp-{os.getpid()}")
        try:
            fs.makedirs(posixpath.dirname(target), exist_ok=True)  # a no-op on object stores
            fs.put_file(str(source), temporary)
            fs.mv(temporary, target)
        except OSError as err:
            raise UserError(f"{url}: uploading {name} failed ({err}); re-run to resume the upload") from None
        log.debug("published %s -> %s", source, target)


__all__ = ["FSSPEC", "HTTP", "LOCAL", "NotFound", "PIPE", "digest", "is_remote", "join", "kind", "open_stream",
           "publish", "read_bytes", "size"]
