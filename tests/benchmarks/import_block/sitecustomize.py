"""With this folder on PYTHONPATH, every Python process (DataLoader workers and subprocesses included) refuses to
import the top-level packages named in POSMASK_BLOCK_IMPORTS (comma-separated, e.g. `spacy,ray,pyarrow`): the
check that the train path needs none of what the lent CUDA machine lacks (tests/benchmarks/gpu_check.sh).
An import of one fails with ModuleNotFoundError naming it; nothing else changes."""
from __future__ import annotations

import importlib.abc
import os
import sys

BLOCKED = frozenset(n.strip() for n in os.environ.get("POSMASK_BLOCK_IMPORTS", "").split(",") if n.strip())


class _Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):  # noqa: ANN001, ANN201 (the finder protocol)
        top = name.partition(".")[0]
        if top in BLOCKED:
            raise ModuleNotFoundError(f"import of {top!r} blocked: the train path must not need it "
                                      f"(POSMASK_BLOCK_IMPORTS={','.join(sorted(BLOCKED))})", name=top)
        return None


if BLOCKED:
    sys.meta_path.insert(0, _Blocked())
