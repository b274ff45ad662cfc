"""A small scenes folder generated once per test session."""
from __future__ import annotations

from pathlib import Path

import pytest

SMALL = {"train_images": 80, "eval_images": 60, "vqa_train_images": 20}


@pytest.fixture(scope="session")
def scenes_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`data/scenes`-like folder with few images (seed 0)."""
    from scenes import ensure_scenes

    root = tmp_path_factory.mktemp("scenes") / "scenes"
    ensure_scenes(root, 0, **SMALL)
    return root
