"""The built-in synthetic data ("scenes"): training captions and held-out evaluation sets.

`ensure_scenes(root)` generates, once, images of coloured shapes with grammar captions (COCO
format) for pre-training, and held-out retrieval, VALSE-format and VQA-format sets; see the
README.md it writes into `root` for the layout.

Modules: `world` (shapes, colours, sizes, places, relations), `grammar` (the captions), `render` (the JPEGs),
`foils` (VALSE-format foils), `vqa` (VQA v2-format questions), `formats` (COCO and retrieval files), `generate`
(the whole sample, atomically), `readme` (the README.md it writes) and `cli` (`posmask make-scenes`).
`vision-tiny/` is not code: the tiny preset's image-encoder start trained on the default sample, committed so
that `make scenes-data` can copy it instead of training it (see its README.md).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["ensure_scenes"]


def ensure_scenes(root: Path, seed: int = 0, **kwargs: Any) -> tuple[Path, Path]:
    """Generate the whole sample under `root` unless already complete; return the training
    `(captions_json, image_root)`. Keyword options: see `scenes.generate.ensure_scenes`."""
    from scenes.generate import ensure_scenes as _ensure

    return _ensure(root, seed, **kwargs)
