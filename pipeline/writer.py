"""Deterministic shard tars and the per-shard parts (caption rows, result) used to resume and merge."""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pipeline.items import Reject, ShardResult
from pipeline.tar_members import TarMembers
from toolbox.atomic import atomic_path, atomic_write_json
from shards.manifest import SHARDS_DIR

TAR_MTIME = 0  # fixed member metadata (an int: a float mtime costs a PAX header per member)
TAR_USER = "posmask"
TAR_MODE = 0o444
WORK_DIR = ".work"  # OUT/.work: config of the run in progress and finished-shard parts


class ShardWriter:
    """Writes one shard tar to a temporary name; `close()` renames it into place."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ctx = atomic_path(path)
        self._tmp = self._ctx.__enter__()
        self._stream = open(self._tmp, "wb")
        self._tar = TarMembers(self._stream, user=TAR_USER, group=TAR_USER, mode=TAR_MODE, mtime=TAR_MTIME)
        self.samples = 0

    def write(self, sample: dict[str, Any]) -> None:
        """Add one sample (member name -> bytes, plus `__key__`), members in name order as webdataset's
        TarWriter writes them (the bytes are the same)."""
        key = sample["__key__"]
        for member in sorted(k for k in sample if not k.startswith("_")):
            value = sample[member]
            self._tar.add(f"{key}.{member}", value.encode("utf-8") if isinstance(value, str) else value)
        self.samples += 1

    def close(self) -> None:
        """Finish the tar and rename it into place."""
        self._tar.close()
        if not self._stream.closed:
            self._stream.close()
        self._ctx.__exit__(None, None, None)

    def abort(self) -> None:
        """Remove the temporary file."""
        try:
            self._stream.close()
        finally:
            self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)


def parts_dir(out: Path) -> Path:
    """OUT/.work/parts."""
    return out / WORK_DIR / "parts"


def part_paths(out: Path, name: str) -> tuple[Path, Path]:
    """(result json, caption rows parquet) of shard `name`."""
    stem = name.removesuffix(".tar")
    return parts_dir(out) / f"{stem}.json", parts_dir(out) / f"{stem}.parquet"


def write_part(out: Path, result: ShardResult) -> None:
    """The finished-shard marker (written after the tar and the caption rows)."""
    atomic_write_json(part_paths(out, result.name)[0], asdict(result))


def read_part(out: Path, name: str) -> ShardResult | None:
    """The result of a finished shard, or None if the shard is not (completely) there."""
    marker, rows = part_paths(out, name)
    tar = out / SHARDS_DIR / name
    if not (marker.is_file() and rows.is_file() and tar.is_file()):
        return None
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
        data["rejects"] = [Reject(**r) for r in data["rejects"]]
        result = ShardResult(**data)
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return result if os.path.getsize(tar) == result.bytes else None


CAPTION_COLUMNS: tuple[str, ...] = (
    "key", "source", "image_id", "shard", "caption", "truncated", "words", "upos", "spans",
    "ids", "pos", "word",
)


def caption_schema():  # -> pyarrow.Schema
    """Schema of captions.parquet (and of each shard's part)."""
    import pyarrow as pa

    return pa.schema([
        ("key", pa.string()), ("source", pa.string()), ("image_id", pa.string()), ("shard", pa.string()),
        ("caption", pa.string()), ("truncated", pa.bool_()),
        ("words", pa.list_(pa.string())), ("upos", pa.list_(pa.uint8())), ("spans", pa.list_(pa.list_(pa.int32(), 2))),
        ("ids", pa.list_(pa.int32())), ("pos", pa.list_(pa.uint8())), ("word", pa.list_(pa.int16())),
    ])


def write_rows(path: Path, rows: dict[str, list[Any]]) -> None:
    """Write one shard's caption rows as parquet (atomically)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({name: rows[name] for name in CAPTION_COLUMNS}, schema=caption_schema())
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
