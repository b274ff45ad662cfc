"""The MLM targets in a fixed-shape buffer: the vocabulary projection runs on K positions of the batch, where K
depends on the batch's shape, the mask spec and the shards' UPOS histogram only, never on how many tokens one draw
masked.

Boolean indexing (`fused[labels != -100]`) has a data-dependent output shape: on CUDA it waits for the host every
step (the count must reach the host to size the output), and under torch.compile it makes the graph's shapes dynamic.
Running the projection on every text position instead would cost 5-10 times the work (the head is ~5 % of the
thesis preset's FLOPs when it sees every token, and most of the tiny preset's). So, as BERT's own pre-training data
does (`max_predictions_per_seq`, padded prediction slots with weight 0), every batch gets

    K = ceil(share x B x L), rounded up to a multiple of 8 and at most B x L    (static per run and batch shape)
    share = min(1, 1.25 x p + 0.05)                                            (p: the largest expected share)

slots: the masked positions in row-major order first, then unmasked ones whose label is -100 (so the losses, which
ignore -100, give them weight 0). p is the largest over the spec's stages of the share of a batch's wordpieces that
the stage masks in expectation:
- random masking and budgets: their probability (they draw from every word); random 15 % gets 0.2375 of the
  positions, random 60 % 0.8;
- classes with ratios: sum over the classes of ratio x the class's share of the shards' wordpieces (from their
  `pos_histogram.json`), plus the fallback's 0.15 when there is one, at most the largest ratio. NOUN at 0.7 on the
  scenes sample (NOUN 18.5 % of its wordpieces) gets 0.2125 of the positions instead of 0.925. Without a histogram
  (shards of another producer), the ratio itself stands in for p, which holds for any data.
The share of positions is below the share of wordpieces (padding and special tokens count as positions), and
1.25 p + 0.05 leaves room for one batch's draws and captions to exceed the mean. On 2,048 COCO val2017 captions,
batches of 8, 32 and 64 padded to their longest caption masked at most 0.19 (random 15 %), 0.25 (NOUN 0.7) and 0.30
(NOUN 1.0) of their positions. When a batch does mask more than K tokens, the last ones in row-major order (the
batch's rows are a shuffled sample) are left out of the loss and counted (`MaskedBatch.dropped`,
`mlm_dropped_tokens` in metrics.jsonl); within K the loss and its gradient equal the boolean-indexed ones.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from trainer.masking.spec import FALLBACK_RATIO, RANDOM, MaskSpec

SHARE_PER_P, SPREAD = 1.25, 0.05
SLOT_MULTIPLE = 8


def class_shares(histograms: Sequence[Mapping[str, Any]]) -> dict[str, float] | None:
    """Each UPOS class's share of the wordpieces of one or several tag-shards outputs (their `pos_histogram.json`,
    counts summed); None when any output has none or counts no wordpiece."""
    if not histograms or any(not isinstance(h, Mapping) or not isinstance(h.get("wordpiece"), Mapping)
                             for h in histograms):
        return None
    counts: dict[str, float] = {}
    for h in histograms:
        for name, n in h["wordpiece"].items():
            counts[name] = counts.get(name, 0.0) + float(n)
    total = sum(counts.values())
    return {name: n / total for name, n in counts.items()} if total > 0 else None


def _stage_probability(stage: MaskSpec, shares: Mapping[str, float] | None) -> float:
    """The share of a batch's wordpieces one stage masks in expectation, or a bound on it (see module doc)."""
    if not stage.mlm:
        return 0.0
    fallback = FALLBACK_RATIO if stage.fallback == RANDOM else 0.0
    if stage.budget is not None:
        return max(stage.budget, fallback)
    rates = stage.ratios or (stage.ratio,) * len(stage.classes)
    if shares is None or stage.name == RANDOM:
        return max(*rates, fallback)
    expected = sum(r * shares.get(c, 0.0) for c, r in zip(stage.classes, rates)) + fallback
    return min(max(*rates, fallback), expected)


def capacity_share(spec: MaskSpec, shares: Mapping[str, float] | None = None) -> float:
    """The share of a batch's text positions that get an MLM slot (see module doc); 0 without MLM. `shares`:
    `class_shares` of the shards trained on (None: the ratios stand in for the classes' expected shares)."""
    if not spec.mlm:
        return 0.0
    p = min(1.0, max(_stage_probability(s, shares) for s in spec.stages or (spec,)))
    return min(1.0, SHARE_PER_P * p + SPREAD)


def slots(positions: int, share: float) -> int:
    """K for a batch of `positions` text positions: ceil(share x positions) up to a multiple of 8, at most all."""
    k = math.ceil(share * positions - 1e-9)
    return min(positions, -(-k // SLOT_MULTIPLE) * SLOT_MULTIPLE)


def select_slots(masked: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """(positions [k] long, dropped 0-d long): flat indices into the [B, L] batch with the `masked` positions first,
    each group in row-major order; and how many masked positions did not fit. No host sync."""
    masked = masked.reshape(-1)
    order = torch.argsort((~masked).to(torch.uint8), stable=True)  # masked first, each group in row-major order
    dropped = (masked.sum() - k).clamp(min=0)
    return order[:k], dropped


__all__ = ["capacity_share", "class_shares", "select_slots", "slots"]
