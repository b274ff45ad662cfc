"""The defaults the evaluation, report, study and captioner commands share (cheap to import: no torch)."""
from __future__ import annotations

SCENES_EVAL = "data/scenes/eval"  # the built-in scenes' evaluation sets (`make scenes-data`)
SCENES_EVAL_TAGS: tuple[str, ...] = ("data/shards/scenes-eval", "data/shards/eval")  # their tagged captions (probe)
DEFAULT_REFERENCE = "random 0.15"  # the row every other is compared with
