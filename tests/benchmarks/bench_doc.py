"""Where `make bench` writes: each benchmark replaces its own `## ` section of docs/benchmarks.md, keeping the others.

POSMASK_BENCH_DOC names another file to write. POSMASK_BENCH_SMOKE=1 runs the benchmarks at tiny sizes, to check
that they work (the figures mean nothing), and never writes to docs/benchmarks.md (default: a temporary file).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
SMOKE = os.environ.get("POSMASK_BENCH_SMOKE") == "1"


def sized(full: int, smoke: int) -> int:
    """`full` in a real run, `smoke` in a smoke run."""
    return smoke if SMOKE else full


def doc_path() -> Path:
    """POSMASK_BENCH_DOC when set, else docs/benchmarks.md (a smoke run: a file in the temporary folder)."""
    if os.environ.get("POSMASK_BENCH_DOC"):
        return Path(os.environ["POSMASK_BENCH_DOC"])
    return Path(tempfile.gettempdir()) / "posmask-bench-smoke.md" if SMOKE else REPO / "docs" / "benchmarks.md"


def write_section(section: str) -> Path:
    """Replace (or append) the section whose title is `section`'s first line; returns the file written."""
    from toolbox.atomic import atomic_write_text

    doc = doc_path()
    title = section.splitlines()[0]
    text = doc.read_text(encoding="utf-8") if doc.is_file() else "# Benchmarks\n\n"
    start = text.find(title + "\n")
    if start < 0:
        new = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(title))
        new = text[:start] + section.rstrip("\n") + "\n" + ("" if end < 0 else "\n" + text[end + 1:])
    atomic_write_text(doc, new.rstrip("\n") + "\n")
    return doc
