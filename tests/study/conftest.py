"""Fixtures for the study tests: small synthetic shards and a 3-entry grid over them (5 steps each, one
entry with ALBEF)."""
from __future__ import annotations

from pathlib import Path

import pytest

from study_grids import GRID
from synthetic_shards import write_synthetic_shards

@pytest.fixture(scope="session")
def study_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_shards(tmp_path_factory.mktemp("study") / "shards", n_images=40, shard_sizes=[40, 40])


@pytest.fixture(scope="session")
def study_grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("grid") / "three.toml"
    path.write_text(GRID)
    return path
