"""Fixtures for the evaluation tests: a tiny random model saved like a run (the tiny scenes-style eval set
`tiny_eval` is in tests/conftest.py)."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A run dir holding a randomly initialised tiny-preset model (model.safetensors + config.json)."""
    import torch

    from trainer.config import TINY_MODEL
    from trainer.model.posmask import PosMaskModel, save_pretrained

    torch.manual_seed(0)
    run = tmp_path_factory.mktemp("runs") / "tiny-NOUN-0.7"
    save_pretrained(PosMaskModel(TINY_MODEL, vision_weights="random"), run)
    return run
