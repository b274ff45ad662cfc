"""Is each shard the file its manifest lists? Its size against the manifest's `bytes` (where the location can tell
without reading it) and, when asked, its sha256 against the manifest's `sha256` (reads every byte once)."""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from toolbox.urls import digest, size

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShardCheck:
    """What checking the shards found: one line per damaged shard, and how many could not be checked."""

    damaged: tuple[str, ...]
    unchecked: tuple[str, ...]  # shards whose size their location cannot tell (pipe:) and that were not read


def check_shards(urls: Sequence[str], entries: Sequence[Mapping[str, Any]], hashes: bool = False) -> ShardCheck:
    """Compare each shard at `urls[i]` with the manifest entry `entries[i]` (`bytes`, `sha256`)."""
    damaged, unchecked = [], []
    for url, entry in zip(urls, entries, strict=True):
        expected = entry.get("bytes")
        if hashes:
            found, sha = digest(url)
            if expected is not None and found != int(expected):
                damaged.append(f"{url} is {found} bytes, the manifest says {int(expected)}")
            elif entry.get("sha256") and sha != entry["sha256"]:
                damaged.append(f"{url} has sha256 {sha[:16]}..., the manifest says {str(entry['sha256'])[:16]}...")
            elif not entry.get("sha256"):
                log.warning("%s: the manifest records no sha256; only its size was checked", url)
            continue
        found_size = size(url)
        if found_size is None:
            unchecked.append(url)
        elif expected is not None and found_size != int(expected):
            damaged.append(f"{url} is {found_size} bytes, the manifest says {int(expected)}")
    return ShardCheck(tuple(damaged), tuple(unchecked))


__all__ = ["ShardCheck", "check_shards"]
