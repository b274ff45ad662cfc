"""Processes as the tests see them, from /proc: below a process, by name, alive, and every process a command
started, found by a tag in its environment (inherited by everything it starts, in its tree or not)."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

TAG = "POSMASK_TEST_TAG"


def descendants(root: int) -> list[int]:
    """Process ids below `root`."""
    from pipeline.reaper import descendants as below

    return sorted(pid for pid, _ in below(root))


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def tagged_env() -> tuple[dict[str, str], str]:
    """An environment with a fresh tag, for a command whose every process `started_with(tag)` finds; and the tag."""
    tag = uuid.uuid4().hex
    return {**os.environ, TAG: tag}, tag


def started_with(tag: str) -> list[int]:
    """Running processes whose environment holds the tag (a zombie's is empty: it does not count)."""
    wanted = f"{TAG}={tag}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:  # gone, or not ours
            continue
        if wanted in environ.split(b"\0") and running(int(entry)):
            found.append(int(entry))
    return sorted(found)
