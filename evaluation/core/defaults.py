"""The defaults the evaluation, report, study and captioner commands share (cheap to import: no torch)."""
from __future__ import annotations

from pathlib import Path

SCENES_EVAL = "data/scenes/eval"  # the built-in scenes' evaluation sets (`make scenes-data`)
SCENES_EVAL_TAGS: tuple[str, ...] = ("data/shards/scenes-eval", "data/shards/eval")  # their tagged captions (probe)
DEFAULT_REFERENCE = "random 0.15"  # the row every other is compared with
ALPHA = 0.05  # the level of the report's tests; its intervals are at 1 - ALPHA
ADJUSTMENTS: tuple[str, ...] = ("holm", "bh", "none")  # a table's correction for its many comparisons
SCENES_MANIFEST = "scenes_manifest.json"  # at the root of a folder made by `posmask make-scenes`


def is_scenes_sample(data: str | Path) -> bool:
    """True when an evaluation file or folder belongs to the built-in scenes sample (a folder above it holds the
    scenes' manifest)."""
    path = Path(data).resolve()
    return any((parent / SCENES_MANIFEST).is_file() for parent in [path, *list(path.parents)[:4]])
