"""Fixtures for trainer tests: small synthetic shard directories (schema-valid, no spaCy)."""
from __future__ import annotations

from pathlib import Path

import pytest

from synthetic_shards import write_synthetic_shards


@pytest.fixture(scope="session")
def uneven_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """96 images x 2 captions in three uneven shards (100, 60, 32) plus 2 corrupt samples."""
    return write_synthetic_shards(tmp_path_factory.mktemp("shards") / "uneven", n_images=96,
                                  shard_sizes=[100, 60, 32], corrupt=2)
