"""The train path's import closure: what the lent CUDA machine lacks (spaCy, Ray; and pyarrow, which it has but
training must not need) is never imported by `posmask pretrain` (trainer.train, the loader, the model) or by
tests/benchmarks/gpu_thesis_step.py; each runs one CPU step with those imports blocked in every process."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from synthetic_shards import write_synthetic_shards

pytestmark = pytest.mark.slow  # starts processes
REPO = Path(__file__).resolve().parents[2]
BLOCK = "spacy,ray,pyarrow"


def blocked_env() -> dict[str, str]:
    path = os.pathsep.join([str(REPO / "tests" / "benchmarks" / "import_block"), str(REPO)])
    return {**os.environ, "PYTHONPATH": path, "POSMASK_BLOCK_IMPORTS": BLOCK, "OMP_NUM_THREADS": "1"}


def run(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, env=blocked_env(), capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_shards(tmp_path_factory.mktemp("closure") / "shards", n_images=16, image_px=64)


def test_the_block_is_in_force() -> None:  # the control: a blocked import really fails, in one line
    result = run(["-c", "import spacy"])
    assert result.returncode != 0 and "import of 'spacy' blocked" in result.stderr
    assert run(["-c", "import pyarrow.parquet"]).returncode != 0


def test_pretrain_runs_a_step_without_spacy_ray_or_pyarrow(shards: Path, tmp_path: Path) -> None:
    result = run(["-m", "posmask_cli", "pretrain", "--pos", "DET", "--preset", "tiny", "--cpu", "--shards",
                  str(shards), "--run", str(tmp_path / "run"), "--max-steps", "1", "--batch-size", "4",
                  "--workers", "1", "--log-every", "1"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "model.safetensors").is_file() and (tmp_path / "run" / "metrics.jsonl").is_file()


def test_gpu_thesis_step_runs_a_cpu_step_without_them(shards: Path) -> None:
    result = run([str(REPO / "tests" / "benchmarks" / "gpu_thesis_step.py"), "--device", "cpu", "--preset", "tiny",
                  "--configs", "fp32,bf16", "--steps", "1", "--batch", "4", "--shards", str(shards),
                  "--workers", "1"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| bf16 autocast + fused AdamW, --decode cpu |" in result.stdout and "host syncs/step" in result.stdout
