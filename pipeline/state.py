"""The state of an OUT folder: new, resumable, finished, or made with a different config (refused); and of an OUT
that is an fsspec URL: the output is made in a local stage folder, then published (`publish_out`)."""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pipeline.writer import WORK_DIR
from toolbox.atomic import atomic_write_json
from toolbox.errors import UserError
from toolbox.stage import canonical, changes, check_same, differences
from toolbox.urls import FSSPEC, NotFound, is_remote, join, kind, publish, read_bytes
from shards.manifest import CAPTIONS_NAME, CARD_NAME, HISTOGRAM_NAME, MANIFEST_NAME, REJECTS_NAME, SHARDS_DIR

log = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
OUR_FILES: tuple[str, ...] = (MANIFEST_NAME, CAPTIONS_NAME, REJECTS_NAME, f"{HISTOGRAM_NAME}.json",
                              f"{HISTOGRAM_NAME}.png", CARD_NAME, SHARDS_DIR, WORK_DIR)


def wipe(out: Path) -> None:
    """Remove what a previous tag-shards run wrote to OUT (and nothing else)."""
    for name in OUR_FILES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def check_out(out: Path, config: dict[str, Any], overwrite: bool) -> str:
    """What OUT holds for a run with `config`: "new", "resume", "done" or "overwrite" (writes nothing).

    An OUT made with a different config, or a non-empty folder that is not a tag-shards output,
    is refused unless `overwrite` ("overwrite": its previous tag-shards files will be removed).
    """
    config = canonical(config)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    manifest, work_config = out / MANIFEST_NAME, out / WORK_DIR / CONFIG_NAME
    old: dict[str, Any] | None = None
    state = "new"
    try:
        if manifest.is_file():
            old, state = json.loads(manifest.read_text(encoding="utf-8")).get("config"), "done"
        elif work_config.is_file():
            old, state = json.loads(work_config.read_text(encoding="utf-8")), "resume"
    except (OSError, ValueError, AttributeError):  # unreadable, or not a JSON object
        old, state = None, "unknown"
    if old is not None and not isinstance(old, dict):
        old, state = None, "unknown"
    if state == "new" and out.is_dir() and any(out.iterdir()):
        state = "unknown"
    if overwrite and state != "new":
        return "overwrite"
    if state == "unknown":
        raise UserError(f"--out {out} is not empty and not a finished or resumable tag-shards output; "
                        "choose another --out or pass --overwrite")
    check_same(old, config, lambda keys: f"--out {out} was made with a different config "
               f"({changes(old or {}, config, keys)}); pass --overwrite to replace it, or choose another --out")
    return state


def prepare_out(out: Path, config: dict[str, Any], state: str) -> None:
    """Make OUT ready to write (after `check_out`): remove an overwritten output, record the config."""
    if state == "overwrite":
        log.info("--overwrite: removing the previous output in %s", out)
        wipe(out)
    (out / SHARDS_DIR).mkdir(parents=True, exist_ok=True)
    if state != "done":
        atomic_write_json(out / WORK_DIR / CONFIG_NAME, canonical(config))


def remove_stale_temporaries(out: Path) -> None:
    """Delete temporary files left by killed writers (`.NAME.tmp-PID`)."""
    for folder in (out / SHARDS_DIR, out / WORK_DIR / "parts", out):
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp-*"):
                tmp.unlink(missing_ok=True)


def local_out(out: str | Path, stage: Path | None) -> tuple[Path, str | None]:
    """(the local folder the output is made in, the URL it is published to or None). An fsspec URL is made in
    `stage` (default: a folder under the temp dir named after the URL); http(s):// and pipe: cannot be written."""
    if not is_remote(out):
        return Path(out).resolve(), None
    url = str(out)
    if kind(url) != FSSPEC:
        raise UserError(f"--out {url}: an output is written to a folder or an fsspec URL (s3://, gs://, file://, "
                        "...), not to http(s):// or pipe:")
    if stage is None:
        stage = Path(tempfile.gettempdir()) / "posmask-stage" / hashlib.sha256(url.encode()).hexdigest()[:16]
    return stage.resolve(), url


def check_remote_out(url: str, config: dict[str, Any], overwrite: bool) -> str:
    """"done" when `url` holds a finished output made with `config`, else "new" (with `overwrite`, a different
    finished output is unpublished first: its manifest and shards are removed); refused in one line otherwise."""
    try:
        old = json.loads(read_bytes(join(url, MANIFEST_NAME)).decode("utf-8")).get("config")
    except NotFound:
        return "new"
    except (ValueError, AttributeError):
        old = None
    config = canonical(config)
    if isinstance(old, dict) and not differences(old, config):
        return "done"
    if not overwrite:
        what = (f"a different config ({changes(old, config, differences(old, config))})" if isinstance(old, dict)
                else "an unreadable manifest")
        raise UserError(f"--out {url} holds an output made with {what}; pass --overwrite to replace it, or choose "
                        "another --out")
    from fsspec.core import url_to_fs

    fs, root = url_to_fs(url)
    fs.rm(f"{root.rstrip('/')}/{MANIFEST_NAME}")  # first: readers see an unfinished output from now on
    if fs.exists(f"{root.rstrip('/')}/{SHARDS_DIR}"):
        fs.rm(f"{root.rstrip('/')}/{SHARDS_DIR}", recursive=True)
    return "new"


def publish_out(stage: Path, url: str) -> None:
    """Copy a finished output from `stage` to `url`, every file to a temporary key and then to its name, the
    manifest last (so a reader that finds the manifest finds every file it lists); then remove the stage."""
    files = sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file()
                   and p.name != MANIFEST_NAME and WORK_DIR not in p.relative_to(stage).parts)
    log.info("publishing %d files to %s", len(files) + 1, url)
    publish(stage, url, files, MANIFEST_NAME)
    shutil.rmtree(stage, ignore_errors=True)
