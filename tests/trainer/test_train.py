"""End-to-end CPU runs of `posmask pretrain` (as `python -m posmask_cli pretrain`): outputs, zero-candidate counting,
`none`, ALBEF, two-process torchrun on uneven shards, and SIGTERM + resume matching an uninterrupted run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trainer.metrics import read_metrics
from trainer.model import load_pretrained

REPO = Path(__file__).resolve().parents[2]
FAST = ["--preset", "tiny", "--batch-size", "8", "--workers", "0", "--log-every", "1", "--shuffle-buffer", "20"]


def pretrain(*args: str, check: bool = True, **popen) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "posmask_cli", "pretrain", *args], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=240)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stderr[-3000:]}")
    return result


@pytest.mark.slow
def test_run_writes_everything(uneven_shards: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    pretrain("--pos", "DET", "--ratio", "0.7", "--shards", str(uneven_shards), "--run", str(run),
             "--max-steps", "3", *FAST)
    for name in ("run_config.json", "metrics.jsonl", "checkpoint.pt", "model.safetensors", "config.json",
                 "losses.png", "summary.json"):
        assert (run / name).is_file(), name
    records = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3]
    for key in ("lr", "mlm", "itc", "itm", "masked_share", "samples_per_s", "data_wait_share", "peak_mem_mb"):
        assert key in records[-1]
    assert 0 < records[-1]["masked_share"] < 0.5
    assert json.loads((run / "run_config.json").read_text())["mask"] == {"classes": ["DET"], "ratio": 0.7,
                                                                       "name": "DET"}
    model = load_pretrained(run)
    assert model.config.image_size == 64
    again = pretrain("--pos", "det", "--ratio", "0.70", "--shards", str(uneven_shards), "--run", str(run),
                     "--max-steps", "3", *FAST)  # the same run however typed: resumes at the end, re-exports
    assert len(read_metrics(run / "metrics.jsonl")) == 3 and "resumed" in again.stderr
    clash = pretrain("--pos", "NOUN", "--ratio", "0.7", "--shards", str(uneven_shards), "--run", str(run),
                     "--max-steps", "3", *FAST, check=False)
    assert clash.returncode == 2 and "other settings" in clash.stderr


@pytest.mark.slow
def test_zero_candidates_counted_and_none(uneven_shards: Path, tmp_path: Path) -> None:
    pretrain("--pos", "INTJ", "--ratio", "1.0", "--shards", str(uneven_shards), "--run", str(tmp_path / "intj"),
             "--max-steps", "2", *FAST)
    records = read_metrics(tmp_path / "intj" / "metrics.jsonl")
    assert all(r["mlm"] == 0.0 for r in records) and records[-1]["empty_mlm_batches"] == 2
    pretrain("--pos", "none", "--shards", str(uneven_shards), "--run", str(tmp_path / "none"),
             "--max-steps", "2", *FAST)
    records = read_metrics(tmp_path / "none" / "metrics.jsonl")
    assert all(r["mlm"] == 0.0 and r["masked_share"] == 0.0 for r in records)


@pytest.mark.slow
def test_albef_option(uneven_shards: Path, tmp_path: Path) -> None:
    pretrain("--pos", "random", "--shards", str(uneven_shards), "--run", str(tmp_path / "albef"),
             "--max-steps", "3", "--albef", "--queue-size", "20", *FAST)  # 20 is not a multiple of 8
    records = read_metrics(tmp_path / "albef" / "metrics.jsonl")
    assert len(records) == 3 and all(r["itc"] > 0 and r["mlm"] > 0 for r in records)


@pytest.mark.slow
def test_torchrun_two_ranks_uneven_shards(uneven_shards: Path, tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    result = pretrain("--pos", "NOUN", "--shards", str(uneven_shards), "--run", str(run), "--nproc", "2",
                      "--epochs", "1", *FAST)
    # 194 samples / (2 ranks x 8) = 12 steps on both ranks, although rank 0 reads 100+ and rank 1 fewer
    records = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(1, 13))
    assert result.stderr.count("done:") == 1
    assert json.loads((run / "summary.json").read_text())["steps"] == 12


@pytest.mark.slow
def test_sigterm_then_resume_matches_uninterrupted(uneven_shards: Path, tmp_path: Path) -> None:
    args = ["--pos", "DET", "--ratio", "0.7", "--shards", str(uneven_shards), "--max-steps", "8",
            "--ckpt-every", "100", *FAST]
    pretrain(*args, "--run", str(tmp_path / "straight"))
    run = tmp_path / "stopped"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "posmask_cli", "pretrain", *args, "--run", str(run)], cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while time.time() < deadline:
        if (run / "metrics.jsonl").is_file() and len(read_metrics(run / "metrics.jsonl")) >= 3:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr[-2000:]
    stopped_at = len(read_metrics(run / "metrics.jsonl"))
    assert 3 <= stopped_at < 8 and not (run / "model.safetensors").exists()
    pretrain(*args, "--run", str(run))
    straight = read_metrics(tmp_path / "straight" / "metrics.jsonl")
    resumed = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in resumed] == list(range(1, 9))
    for a, b in zip(straight, resumed):
        for key in ("mlm", "itc", "itm", "lr"):
            assert b[key] == pytest.approx(a[key], rel=1e-3, abs=1e-4), (a["step"], key)
