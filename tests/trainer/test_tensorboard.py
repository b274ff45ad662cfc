"""`--report-to tensorboard`: TensorBoard event files beside metrics.jsonl, read back with TensorBoard's own
EventAccumulator: the same curves, values and steps as metrics.jsonl (pre-training, and the run engine that the VQA
fine-tune and every other loop share)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trainer.engine.distributed import DistInfo
from trainer.engine.engine import Engine, OptimSettings
from trainer.engine.metrics import read_metrics
from trainer.run_dir import EVENTS_PREFIX, RunDir

REPO = Path(__file__).resolve().parents[2]
CURVES = ("loss", "mlm", "itc", "itm", "lr", "samples_per_s", "masked_share", "itm_acc", "data_wait_share")


def curves(run: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the run's event files, as (step, value)."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(RunDir(run).events))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_the_engine_writes_each_record_as_events(tmp_path: Path) -> None:
    engine = Engine(tmp_path / "run", OptimSettings(lr=0.1), DistInfo(), 3, {"task": "toy"}, report_to="tensorboard")
    net = engine.attach(torch.nn.Linear(2, 1))
    while not engine.done:
        loss = net(torch.ones(4, 2)).pow(2).mean()
        engine.update(loss)
        engine.log({"step": engine.step, "loss": loss.item(), "lr": engine.lr, "by_pos": {"DET": 0.5, "NOUN": 1},
                    "mask_stage_name": "DET", "time": 1.0})
    engine.close()
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    found = curves(tmp_path / "run")
    assert set(found) == {"loss", "lr", "by_pos/DET", "by_pos/NOUN"}  # numbers only; not the time
    for name in ("loss", "lr"):
        assert found[name] == [(r["step"], pytest.approx(r[name], rel=1e-6)) for r in records]
    assert any(p.name.startswith(EVENTS_PREFIX) for p in (tmp_path / "run").iterdir())


@pytest.mark.slow
def test_pretrain_reports_to_tensorboard(uneven_shards: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "posmask_cli", "pretrain", "--pos", "NOUN", "--preset", "tiny",
                             "--shards", str(uneven_shards), "--run", str(run), "--max-steps", "3", "--batch-size", "8",
                             "--workers", "0", "--log-every", "1", "--report-to", "tensorboard"],
                            cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    records = read_metrics(run / "metrics.jsonl")
    found = curves(run)
    for name in CURVES:
        assert found[name] == [(r["step"], pytest.approx(r[name], rel=1e-5, abs=1e-7)) for r in records], name
