"""No pickle in resumption: checkpoints are loaded with `torch.load(weights_only=True)`. A planted `checkpoint.pt`
whose unpickling would create a file is refused in one line and creates nothing (through the engine and through
`posmask pretrain`); what the engine writes, and what an earlier version wrote (a NumPy array in its RNG state),
loads and resumes exactly."""
from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from toolbox.errors import UserError
from trainer.engine.checkpoint import load_checkpoint, set_rng_state
from trainer.engine.distributed import DistInfo
from trainer.engine.engine import Engine, OptimSettings

REPO = Path(__file__).resolve().parents[2]


class Planted:
    """What an attacker puts in a checkpoint: unpickling it opens (so creates) a file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def plant(run: Path, marker: Path) -> None:
    run.mkdir(parents=True, exist_ok=True)
    torch.save({"module": {}, "step": 1, "identity": {"task": "toy"}, "world_size": 1, "loop": [{}],
                "rng": [Planted(marker)]}, run / "checkpoint.pt")


def test_a_planted_checkpoint_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "created-by-the-checkpoint"
    plant(tmp_path / "run", marker)
    with pytest.raises(UserError) as caught:
        Engine(tmp_path / "run", OptimSettings(lr=1e-3), DistInfo(), 10, {"task": "toy"})
    message = str(caught.value)
    assert "\n" not in message and "checkpoint.pt is refused" in message and "would call io.open" in message
    assert not marker.exists()


def test_checkpoints_of_this_and_the_earlier_version_load(tmp_path: Path) -> None:
    engine = Engine(tmp_path / "run", OptimSettings(lr=1e-3), DistInfo(), 4, {"task": "toy"})
    engine.attach(torch.nn.Linear(2, 1))
    engine.save({"drawn": {0: 16}, "stats": {"epochs": [{"epoch": 0, "samples_read": 3}]}})
    engine.close()
    state = load_checkpoint(tmp_path / "run")
    assert isinstance(state["rng"][0]["numpy"]["keys"], torch.Tensor) and state["loop"] == [
        {"drawn": {0: 16}, "stats": {"epochs": [{"epoch": 0, "samples_read": 3}]}}]
    set_rng_state(state["rng"][0])
    np_draw = np.random.rand()
    set_rng_state(state["rng"][0])
    assert np.random.rand() == np_draw

    random.seed(3)
    np.random.seed(3)
    earlier = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
               "cuda": None}  # the RNG state as posmask wrote it before weights_only
    expected = np.random.rand()
    torch.save({**state, "rng": [earlier]}, tmp_path / "run" / "checkpoint.pt")
    set_rng_state(load_checkpoint(tmp_path / "run")["rng"][0])
    assert np.random.rand() == expected


@pytest.mark.slow
def test_pretrain_refuses_to_resume_from_a_planted_checkpoint(uneven_shards: Path, tmp_path: Path) -> None:
    marker = tmp_path / "created-by-the-checkpoint"
    plant(tmp_path / "run", marker)
    result = subprocess.run([sys.executable, "-m", "posmask_cli", "pretrain", "--pos", "DET", "--preset", "tiny",
                             "--shards", str(uneven_shards), "--run", str(tmp_path / "run"), "--max-steps", "2"],
                            cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 2, result.stderr[-2000:]
    line, = result.stderr.strip().splitlines()
    assert line.startswith("posmask pretrain: error: ") and "checkpoint.pt is refused" in line
    assert not marker.exists() and sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoint.pt"]
