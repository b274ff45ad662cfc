"""The one rule for work that is resumed or skipped: same settings, else refuse; done, so skip.

A stage's output (a tag-shards folder, a training run, a study step, a captioner stage) keeps a record of the
settings that made it, its identity. Before running again, the identity it would have now is compared with the
recorded one: when they differ the stage refuses, in one line of its own naming what differs (`check_same`);
when they agree and the output is complete, the stage is skipped. Identities are compared as JSON, so a tuple
and a list, or a path and its string, are the same setting.

`StageRecord` is the rule for a folder whose record file is written last, once the stage is complete (the
captioner's stages).
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolbox.atomic import atomic_write_json
from toolbox.errors import UserError

Refusal = Callable[[list[str]], str]  # the differing keys -> the stage's one-line message


def canonical(value: Any) -> Any:
    """`value` as it reads back from JSON (tuples as lists, paths as strings, keys as strings)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def differences(old: Mapping[str, Any], new: Mapping[str, Any], ignore: Collection[str] = ()) -> list[str]:
    """The keys, sorted, whose values differ between two identities (`ignore`: keys that do not count)."""
    a, b = canonical(dict(old)), canonical(dict(new))
    return sorted(k for k in set(a) | set(b) if k not in ignore and a.get(k) != b.get(k))


def changes(old: Mapping[str, Any], new: Mapping[str, Any], keys: list[str], limit: int = 4) -> str:
    """`key: old -> new` for the first `limit` of `keys`."""
    return "; ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys[:limit])


def check_same(old: Mapping[str, Any] | None, new: Mapping[str, Any], refuse: Refusal,
               ignore: Collection[str] = ()) -> None:
    """Refuse (UserError with `refuse(keys)`) when a recorded identity `old` differs from `new`; nothing
    recorded (None) is no refusal."""
    if old is None:
        return
    keys = differences(old, new, ignore)
    if keys:
        raise UserError(refuse(keys))


def read_json(path: str | os.PathLike[str]) -> Any:
    """A JSON file's content, or None when it is absent or unreadable (a record being written, or torn)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class StageRecord:
    """A stage folder whose `record.json` (identity and what the stage reports) is written last.

    `outputs`: the files that must exist besides the record for the stage to be complete; `refuse`: the stage's
    message when the folder holds another's output."""

    folder: Path
    identity: Mapping[str, Any]
    outputs: tuple[str, ...]
    refuse: Refusal
    name: str = "record.json"

    @property
    def path(self) -> Path:
        return self.folder / self.name

    def complete(self) -> dict[str, Any] | None:
        """The record of a complete stage made with this identity; None when the stage is not complete;
        UserError when its folder holds a stage made with other settings."""
        record = read_json(self.path)
        if not isinstance(record, dict) or not all((self.folder / f).is_file() for f in self.outputs):
            return None
        check_same(record.get("identity", {}), self.identity, self.refuse)
        return record

    def write(self, **report: Any) -> dict[str, Any]:
        """Write the record (the stage is complete) and return it."""
        record = {"identity": canonical(self.identity), **report}
        atomic_write_json(self.path, record)
        return record
