"""Checkpoint files: written to a temporary name and renamed (a kill mid-write never leaves a broken
`checkpoint.pt`), with every rank's RNG states so that a resume continues the same random streams.

A checkpoint holds tensors and plain containers only (the NumPy RNG state as a tensor), and is loaded with
`torch.load(weights_only=True)`: in a study folder on a shared filesystem, anyone who can write the file
could otherwise run code on every node that resumes from it. A file that needs more than that allow-list to
load is refused in one line, and nothing in it runs. Checkpoints of earlier versions, whose NumPy state is
an array, still load (NumPy arrays are on the allow-list).
"""
from __future__ import annotations

import logging
import pickle
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from toolbox.atomic import atomic_path
from toolbox.errors import UserError
from trainer.engine.distributed import gather_objects
from trainer.run_dir import RunDir

log = logging.getLogger(__name__)


def rng_state() -> dict[str, Any]:
    """This process's Python, NumPy, torch CPU and CUDA RNG states, as tensors and plain values."""
    name, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    return {"python": random.getstate(),
            "numpy": {"name": str(name), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(gauss)},
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what rng_state() returned (or an earlier version's tuple NumPy state)."""
    random.setstate(state["python"])
    numpy_state = state["numpy"]
    if isinstance(numpy_state, dict):
        keys = numpy_state["keys"].numpy().astype(np.uint32)
        numpy_state = (numpy_state["name"], keys, numpy_state["pos"], numpy_state["has_gauss"],
                       numpy_state["cached_gaussian"])
    np.random.set_state(numpy_state)
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


def numpy_globals() -> list[Any]:
    """What an earlier version's NumPy RNG state (an array) needs besides the default allow-list."""
    multiarray = getattr(np, "_core", None) or np.core  # NumPy 2 renamed np.core
    return [multiarray.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def load_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    """The checkpoint of a run dir, or None when it has none; a file that holds anything but tensors and plain
    containers is refused in one line, without running what it holds."""
    path = RunDir(run_dir).checkpoint
    if not path.is_file():
        return None
    try:
        with torch.serialization.safe_globals(numpy_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        named = re.search(r"GLOBAL (\S+)", str(err))
        what = f"would call {named.group(1)}" if named else "holds more than tensors and plain data"
        raise UserError(f"{path} is refused: loading it {what}, and posmask loads checkpoints as tensors and plain "
                        "data only (torch.load weights_only); it was not written by posmask: remove it (the run "
                        "restarts) or restore the run folder") from None
    except (RuntimeError, EOFError, OSError) as err:
        raise UserError(f"{path} is unreadable ({str(err).splitlines()[0][:160]}); remove it to start the run "
                        "over") from None
