"""manifest.json and sizes.json of a shard directory: names, reading (with the schema check), writing.

An output is read where it lives: a local folder, or a URL of one (`http(s)://`, any fsspec URL, `pipe:`; see
`toolbox.urls`); it is written locally (`pipeline` publishes it to an fsspec URL).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from toolbox.atomic import atomic_write_json
from toolbox.errors import UserError
from toolbox.urls import NotFound, is_remote, join, read_bytes
from shards.schema import check_schema_version

MANIFEST_NAME = "manifest.json"
SIZES_NAME = "sizes.json"
SHARDS_DIR = "shards"
CAPTIONS_NAME = "captions.parquet"
REJECTS_NAME = "rejects.parquet"
HISTOGRAM_NAME = "pos_histogram"  # .json and .png
CARD_NAME = "README.md"  # the dataset card beside the manifest


def _read_json(location: str, what: str) -> Any:
    try:
        return json.loads(read_bytes(location).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{location}: unreadable {what} ({err})") from None
    except NotFound:
        raise
    except OSError as err:
        raise UserError(f"{location}: unreadable {what} ({err})") from None


def read_manifest(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check OUT/manifest.json; a clear error if absent, unreadable or of unknown schema."""
    path = join(out_dir, MANIFEST_NAME)
    if not is_remote(out_dir) and not Path(path).is_file():
        raise UserError(f"{out_dir}: no {MANIFEST_NAME}; is this a finished `posmask tag-shards` output?")
    try:
        manifest = _read_json(path, "manifest")
    except NotFound as err:
        raise UserError(f"{out_dir}: no {MANIFEST_NAME} ({err}); is this a finished `posmask tag-shards` "
                        "output?") from None
    if not isinstance(manifest, dict):
        raise UserError(f"{path}: unreadable manifest (not a JSON object)")
    check_schema_version(manifest.get("schema_version"), str(path))
    return manifest


def read_histogram(out_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """OUT/pos_histogram.json (UPOS counts at word and wordpiece level), or None when the output has none."""
    try:
        found = _read_json(join(out_dir, HISTOGRAM_NAME + ".json"), "UPOS histogram")
    except NotFound:
        return None
    return found if isinstance(found, dict) else None


def write_manifest(out_dir: str | os.PathLike[str], manifest: dict[str, Any]) -> None:
    """Write OUT/manifest.json atomically (it is written last: its presence marks a finished output)."""
    atomic_write_json(Path(out_dir) / MANIFEST_NAME, manifest)


def read_sizes(shard_dir: str | os.PathLike[str]) -> dict[str, int]:
    """`{tar name: samples}` from sizes.json in the local folder that holds the tars."""
    path = Path(shard_dir) / SIZES_NAME
    if not path.is_file():
        raise UserError(f"{shard_dir}: no {SIZES_NAME}")
    return {str(k): int(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}


def read_output_sizes(out_dir: str | os.PathLike[str]) -> dict[str, int] | None:
    """`{tar name: samples}` from OUT/shards/sizes.json wherever OUT lives; None when it has none."""
    path = join(out_dir, f"{SHARDS_DIR}/{SIZES_NAME}")
    if not is_remote(out_dir) and not Path(path).is_file():
        return None
    try:
        sizes = _read_json(path, SIZES_NAME)
    except NotFound:
        return None
    return {str(k): int(v) for k, v in sizes.items()}


def write_sizes(shard_dir: str | os.PathLike[str], sizes: dict[str, int]) -> None:
    """Write sizes.json atomically."""
    atomic_write_json(Path(shard_dir) / SIZES_NAME, dict(sorted(sizes.items())))


def shard_urls(out_dir: str | os.PathLike[str], manifest: dict[str, Any]) -> list[str]:
    """Where the tars of an output are, in manifest order (local ones are checked to exist)."""
    urls = [join(out_dir, f"{SHARDS_DIR}/{entry['file']}") for entry in manifest["shards"]]
    if not is_remote(out_dir):
        missing = [u for u in urls if not Path(u).is_file()]
        if missing:
            raise UserError(f"{out_dir}: manifest lists shards that are missing: {missing[:3]}")
    return urls


def shard_paths(out_dir: str | os.PathLike[str]) -> list[Path]:
    """The tar files of a finished local output, in manifest order (checks the manifest first)."""
    return [Path(u) for u in shard_urls(out_dir, read_manifest(out_dir))]
