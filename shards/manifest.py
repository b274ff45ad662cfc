"""manifest.json and sizes.json of a shard directory: names, reading (with the schema check), writing."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from toolbox.atomic import atomic_write_json
from toolbox.errors import UserError
from shards.schema import check_schema_version

MANIFEST_NAME = "manifest.json"
SIZES_NAME = "sizes.json"
SHARDS_DIR = "shards"
CAPTIONS_NAME = "captions.parquet"
REJECTS_NAME = "rejects.parquet"
HISTOGRAM_NAME = "pos_histogram"  # .json and .png


def read_manifest(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check OUT/manifest.json; a clear error if absent, unreadable or of unknown schema."""
    path = Path(out_dir) / MANIFEST_NAME
    if not path.is_file():
        raise UserError(f"{out_dir}: no {MANIFEST_NAME}; is this a finished `posmask tag-shards` output?")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: unreadable manifest ({err})") from None
    check_schema_version(manifest.get("schema_version"), str(path))
    return manifest


def write_manifest(out_dir: str | os.PathLike[str], manifest: dict[str, Any]) -> None:
    """Write OUT/manifest.json atomically (it is written last: its presence marks a finished output)."""
    atomic_write_json(Path(out_dir) / MANIFEST_NAME, manifest)


def read_sizes(shard_dir: str | os.PathLike[str]) -> dict[str, int]:
    """`{tar name: samples}` from sizes.json in the folder that holds the tars."""
    path = Path(shard_dir) / SIZES_NAME
    if not path.is_file():
        raise UserError(f"{shard_dir}: no {SIZES_NAME}")
    return {str(k): int(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}


def write_sizes(shard_dir: str | os.PathLike[str], sizes: dict[str, int]) -> None:
    """Write sizes.json atomically."""
    atomic_write_json(Path(shard_dir) / SIZES_NAME, dict(sorted(sizes.items())))


def shard_paths(out_dir: str | os.PathLike[str]) -> list[Path]:
    """The tar files of a finished output, in manifest order (checks the manifest first)."""
    manifest = read_manifest(out_dir)
    root = Path(out_dir) / SHARDS_DIR
    paths = [root / entry["file"] for entry in manifest["shards"]]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UserError(f"{out_dir}: manifest lists shards that are missing: {missing[:3]}")
    return paths
