"""`img2dataset` source: webdataset tars as img2dataset writes them for CC3M (`NNNNN.tar` with
`KEY.jpg`, `KEY.txt`, `KEY.json`). Input tar i -> output shard i; key `<label>-<KEY>`.

Keys are unique over the whole input: before the shard tasks run, every tar's member names are read
(`tar_keys`: headers only, one Ray task per tar) and `plan` hands each chunk the keys that an earlier
tar (in sorted order) already holds; its task rejects those samples as `duplicate_key`, naming that tar.
"""
from __future__ import annotations

import json
import logging
import os
import tarfile
from pathlib import Path
from typing import NamedTuple

from pipeline import items as R
from pipeline.items import ChunkSpec, InputItem
from pipeline.sources import chunk_name, safe_key
from toolbox.errors import UserError

log = logging.getLogger(__name__)

IMAGE_EXTS: tuple[str, ...] = ("jpg", "jpeg", "png", "webp")
Groups = dict[str, dict[str, object]]  # member key -> its txt/json bytes and image "offset:size"


class TarScan(NamedTuple):
    """What the driver learns from one tar's headers."""

    keys: list[str]  # output keys of its samples, in order
    inputs: int  # how many inputs its task will read (samples + rejects for repeats and a broken end)
    broken: str  # why the tar breaks off early, or ""


def find_tars(src: Path) -> list[Path]:
    """The input tars: SRC itself if a .tar, else SRC/*.tar sorted by name."""
    if not src.exists():
        raise UserError(f"{src}: no such file or folder (expected img2dataset .tar files)")
    tars = [src] if src.is_file() else sorted(p for p in src.glob("*.tar") if p.is_file())
    if not tars or tars[0].suffix != ".tar":
        raise UserError(f"{src}: no .tar files found (expected img2dataset output)")
    return tars


def chunks(src: Path, name: str, label: str = "img2dataset") -> list[ChunkSpec]:
    """One chunk per input tar (no --shard-size: img2dataset already chose the shard size); `plan` them
    before their tasks run."""
    tars = find_tars(src)
    log.info("%s: %d input tars", src, len(tars))
    return [ChunkSpec(index=i, name=chunk_name(name, i), source=label, path=str(p.resolve()))
            for i, p in enumerate(tars)]


def tar_keys(path: str, label: str) -> TarScan:
    """The TarScan of one tar, from its headers alone."""
    order, _, extra = scan_tar(path, label, read_text=False)
    broken = extra[-1].detail if extra and extra[-1].reject == R.CORRUPT_INPUT else ""
    return TarScan([sample_key(label, key) for key in order], len(order) + len(extra), broken)


def plan(specs: list[ChunkSpec], scans: list[TarScan]) -> None:
    """Give each chunk its input count and `taken`: its keys that an earlier chunk's tar holds, with the
    name of the first tar holding each (`scans[i]` is the TarScan of `specs[i]`)."""
    first: dict[str, str] = {}  # output key -> name of the first tar that holds it
    for spec, scan in zip(specs, scans, strict=True):
        assert spec.path is not None
        if scan.broken:
            log.warning("%s: input tar breaks off (%s); keeping the samples before that", spec.path, scan.broken)
        spec.n_items = scan.inputs
        spec.taken = {key: first[key] for key in scan.keys if key in first}
        for key in scan.keys:
            first.setdefault(key, Path(spec.path).name)


def sample_key(label: str, key: str) -> str:
    """The output key of the sample whose members are named `key.EXT` ('dir/000010023' -> 'LABEL-000010023')."""
    return f"{label}-{safe_key(Path(key).name)}"


def _split_member(name: str) -> tuple[str, str]:
    """('dir/000010023', 'jpg') from 'dir/000010023.jpg' (webdataset: the key ends at the first dot)."""
    slash = name.rfind("/")
    dot = name.find(".", slash + 1)
    if dot < 0:
        return name, ""
    return name[:dot], name[dot + 1 :].lower()


def scan_tar(path: str, label: str, read_text: bool) -> tuple[list[str], Groups, list[InputItem]]:
    """One pass over a tar: (member keys in order, each key's txt/json bytes and image "offset:size",
    rejects). A key that comes back after other samples and a tar that breaks off (the readable part is
    kept) become rejects. Without `read_text` only the headers are read."""
    groups: Groups = {}
    extra: list[InputItem] = []
    seen_done: set[str] = set()
    last_key = None
    file_size = os.path.getsize(path)
    try:
        with tarfile.open(path, mode="r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                if member.offset_data + member.size > file_size:
                    raise tarfile.ReadError(f"member {member.name} extends past the end of the file")
                key, ext = _split_member(member.name)
                if key != last_key and key in groups:  # the key comes back after other samples
                    seen_done.add(key)
                if key in seen_done:
                    if key != last_key:
                        extra.append(InputItem(sample_key(label, key), Path(key).name, None, reject=R.DUPLICATE_KEY,
                                               detail=f"{Path(path).name}: {member.name}"))
                    last_key = key
                    continue
                last_key = key
                group = groups.setdefault(key, {})
                if ext in ("txt", "json") and read_text:
                    group[ext] = tar.extractfile(member).read()  # type: ignore[union-attr]
                elif ext in IMAGE_EXTS and "image" not in group:
                    group["image"] = f"{member.offset_data}:{member.size}"
            _check_tail(path, tar.offset, file_size)
    except (tarfile.TarError, OSError, EOFError) as err:
        extra.append(InputItem(f"{label}-{safe_key(Path(path).name)}-rest", "", None,
                               reject=R.CORRUPT_INPUT, detail=f"{type(err).__name__}: {err}"[:200]))
    return list(groups), groups, extra


def read_tar_items(spec: ChunkSpec) -> list[InputItem]:
    """Pass 1 over one tar: the samples' captions and where their images are (offset, size).

    An item's `image` is "offset:size" of its image member. Duplicate keys (within the tar, or held by an
    earlier tar), samples without a caption or image, and a tar that breaks off become rejects.
    """
    assert spec.path is not None
    order, groups, extra = scan_tar(spec.path, spec.source, read_text=True)
    out: list[InputItem] = []
    emitted: set[str] = set()
    for key in order:
        group = groups[key]
        short = Path(key).name
        item = InputItem(sample_key(spec.source, key), short,
                         group.get("txt"), group.get("image"))  # type: ignore[arg-type]
        if item.caption is None and "json" in group:
            try:
                caption = json.loads(group["json"]).get("caption")  # type: ignore[arg-type]
                item.caption = caption if isinstance(caption, str) else None
            except (ValueError, AttributeError):
                pass
        where = f"{Path(spec.path).name}: {key}"
        if item.key in spec.taken:
            item.reject, item.detail = R.DUPLICATE_KEY, f"{where}, key first in {spec.taken[item.key]}"
        elif item.key in emitted:  # another member name with the same key (e.g. in another folder of the tar)
            item.reject, item.detail = R.DUPLICATE_KEY, where
        elif item.image is None:
            item.reject = R.MISSING_IMAGE
        emitted.add(item.key)
        out.append(item)
    return out + extra


def _check_tail(path: str, offset: int, file_size: int) -> None:
    """After the last member only zero blocks may follow; anything else means the tar breaks off."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        tail = handle.read(file_size - offset) if file_size - offset <= 1 << 20 else handle.read(1 << 20)
    if tail.strip(b"\0"):
        raise tarfile.ReadError(f"unreadable data at byte {offset}")


def read_tar_image(spec: ChunkSpec, item: InputItem) -> bytes:
    """Pass 2: the image bytes of one item, read at the offset found in pass 1."""
    assert spec.path is not None and item.image is not None
    offset, size = (int(x) for x in item.image.split(":"))
    with open(spec.path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(size)
    if len(data) != size:
        raise OSError(f"short read: {len(data)} of {size} bytes")
    return data
