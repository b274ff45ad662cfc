"""Checkpoint files: written to a temporary name and renamed (a kill mid-write never leaves a broken
`checkpoint.pt`), with every rank's RNG states so that a resume continues the same random streams."""
from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from toolbox.atomic import atomic_path
from trainer.engine.distributed import gather_objects
from trainer.run_dir import RunDir

log = logging.getLogger(__name__)


def rng_state() -> dict[str, Any]:
    """This process's Python, NumPy, torch CPU and CUDA RNG states."""
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what rng_state() returned."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: Path, state: dict[str, Any], is_main: bool) -> None:
    """Gather every rank's RNG states (a collective: call on every rank), then write on the main rank."""
    state = {**state, "rng": gather_objects(rng_state())}
    if is_main:
        path = RunDir(run_dir).checkpoint
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
        log.info("checkpoint at step %d -> %s", state["step"], path)


def load_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    """The checkpoint of a run dir, or None when it has none."""
    path = RunDir(run_dir).checkpoint
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)
