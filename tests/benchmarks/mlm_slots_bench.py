"""The MLM slots sized from the shards' UPOS histogram against the slots sized from the ratio alone
(trainer/masking/capacity.py), in a tiny-preset CPU training step (masking, forward with the MLM slots, backward,
AdamW) on one batch of real tagged captions: both sizings of each spec timed in alternation in one process, and the
tokens a batch masked beyond its slots counted over many draws. Used by test_bench_mlm_slots.py."""
from __future__ import annotations

import statistics
import time
from collections import Counter
from typing import Any

import torch

from shards.upos import NOT_A_WORD, UPOS_NAMES
from trainer.masking.capacity import class_shares, slots
from trainer.masking.masker import Masker
from trainer.masking.spec import parse_mask_spec

SECTION = "## MLM slots from the shards' histogram"
SPECS: tuple[dict[str, Any], ...] = ({"pos": "NOUN", "ratio": 0.7}, {"pos": "DET", "ratio": 0.7},
                                     {"pos": "NOUN:0.5,DET:0.3"}, {"pos": "random"})


def histogram_of(pos: torch.Tensor) -> dict[str, Any]:
    """The wordpiece level of a pos_histogram.json for the captions of `pos` [B, L]."""
    counts = Counter(int(p) for p in pos.reshape(-1).tolist() if p != NOT_A_WORD)
    return {"wordpiece": {UPOS_NAMES[i]: n for i, n in counts.items()}}


def bench_slots(tensors: tuple[torch.Tensor, ...], batch: int = 32, repeat: int = 12, draws: int = 500,
                preset: str = "tiny") -> list[dict[str, Any]]:
    """Per spec: K from the ratio and from the captions' histogram, the median step time with each (alternated) on
    the first `batch` captions, and the tokens left out of the loss over `draws` maskings with the histogram's K,
    each of `batch` captions drawn from all of them."""
    from trainer.config import preset_config
    from trainer.engine.engine import build_optimizer
    from trainer.model.objective import Pretrainer
    from trainer.model.posmask import PosMaskModel
    from trainer.train import optim_settings

    cfg = preset_config(preset)
    torch.manual_seed(0)
    module = Pretrainer(PosMaskModel(cfg.model, vision_weights="random"), mlm=True).train()
    optimizer = build_optimizer(module, optim_settings(cfg, 1000), torch.device("cpu"))
    ids, pos = tensors[0][:batch], tensors[1][:batch]
    shares = class_shares([histogram_of(tensors[1])])
    pixels = torch.randn(batch, 3, cfg.model.image_size, cfg.model.image_size)
    mask, image_ids = (ids != 0).long(), torch.arange(batch)

    def step(masker: Masker) -> float:
        start = time.perf_counter()
        masked = masker(ids, pos)
        out = module(pixels, ids, mask, image_ids, masked.input_ids, masked.labels, mlm_positions=masked.positions)
        optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        optimizer.step()
        return time.perf_counter() - start

    rows = []
    for kwargs in SPECS:
        spec = parse_mask_spec(**kwargs)
        by_ratio = Masker(spec, 103, cfg.model.vocab_size)
        by_histogram = Masker(spec, 103, cfg.model.vocab_size, shares=shares)
        for masker in (by_ratio, by_histogram, by_ratio, by_histogram):  # warm-up
            step(masker)
        times: dict[str, list[float]] = {"ratio": [], "histogram": []}
        for _ in range(repeat):
            times["ratio"].append(step(by_ratio))
            times["histogram"].append(step(by_histogram))
        generator, dropped = torch.Generator().manual_seed(0), 0
        for _ in range(draws):  # another batch of the captions each time
            rows_drawn = torch.randperm(len(tensors[0]), generator=generator)[:batch]
            dropped += int(by_histogram(tensors[0][rows_drawn], tensors[1][rows_drawn], generator=generator).dropped)
        ratio_s, histogram_s = statistics.median(times["ratio"]), statistics.median(times["histogram"])
        rows.append({"spec": spec.label, "positions": ids.numel(), "k_ratio": slots(ids.numel(), by_ratio.capacity),
                     "k_histogram": slots(ids.numel(), by_histogram.capacity), "ratio_ms": ratio_s * 1e3,
                     "histogram_ms": histogram_s * 1e3, "speedup": ratio_s / histogram_s, "dropped": dropped,
                     "draws": draws})
    return rows


def markdown(rows: list[dict[str, Any]], captions: str, threads: int, when: str) -> str:
    """The section of docs/benchmarks.md."""
    lines = [SECTION, "",
             f"`tests/benchmarks/test_bench_mlm_slots.py` ({when}, {threads} CPU threads, torch {torch.__version__}): "
             f"one tiny-preset training step (masking, forward with the MLM slots, backward, AdamW) on a batch of "
             f"{rows[0]['positions']} text positions of {captions}, with the slots sized from the ratio alone and "
             "from the captions' UPOS histogram (what `pos_histogram.json` holds), timed in alternation in one "
             "process (medians). Tokens left out: masked beyond the histogram's K, summed over "
             f"{rows[0]['draws']} batches drawn from the captions.", "",
             "| spec | K by ratio | K by histogram | step by ratio (ms) | step by histogram (ms) | speed-up | "
             "tokens left out |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['spec']} | {r['k_ratio']} | {r['k_histogram']} | {r['ratio_ms']:.1f} | "
                     f"{r['histogram_ms']:.1f} | {r['speedup']:.2f} | {r['dropped']} |")
    return "\n".join(lines) + "\n"
