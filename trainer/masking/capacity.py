"""The MLM targets in a fixed-shape buffer: the vocabulary projection runs on K positions of the batch, where K
depends on the batch's shape and the mask spec only, never on how many tokens one draw masked.

Boolean indexing (`fused[labels != -100]`) has a data-dependent output shape: on CUDA it waits for the host every
step (the count must reach the host to size the output), and under torch.compile it makes the graph's shapes dynamic.
Running the projection on every text position instead would cost 5-10 times the work (the head is ~5 % of the
thesis preset's FLOPs when it sees every token). So, as BERT's own pre-training data does (`max_predictions_per_seq`,
padded prediction slots with weight 0), every batch gets

    K = ceil(share x B x L), rounded up to a multiple of 8 and at most B x L    (static per run and batch shape)
    share = min(1, 1.25 x p_max + 0.05)                                        (p_max: the spec's largest draw)

slots: the masked positions in row-major order first, then unmasked ones whose label is -100 (so the losses, which
ignore -100, give them weight 0). p_max is the largest masking probability of any stage (a class ratio; a budget's
share; the fallback's 0.15). No spec masks more than p_max of a batch's word tokens in expectation (random masking
and budgets draw from every word, several classes at once can cover most of them), so the share is p_max with room
for the draws' spread: random 15 % gets 0.2375 of the positions, random 60 % 0.8, a class at 0.7 0.925 (its head
then costs about 3 % of the thesis preset's step more than on the masked tokens alone). On 2,048 COCO val2017
captions, batches of 8, 32 and 64 padded to their longest caption masked at most 0.19 (random 15 %), 0.25 (NOUN 0.7)
and 0.30 (NOUN 1.0) of their positions. When a batch does mask more than K tokens, the last ones in row-major order
(the batch's rows are a shuffled sample) are left out of the loss and counted (`MaskedBatch.dropped`,
`mlm_dropped_tokens` in metrics.jsonl); within K the loss and its gradient equal the boolean-indexed ones.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from trainer.masking.spec import FALLBACK_RATIO, RANDOM, MaskSpec

SHARE_PER_P, SPREAD = 1.25, 0.05
SLOT_MULTIPLE = 8


def _largest_probability(spec: MaskSpec) -> float:
    """The largest masking probability a token can be drawn with under `spec` (0 for `none`)."""
    best = 0.0
    for stage in spec.stages or (spec,):
        if not stage.mlm:
            continue
        p = stage.budget if stage.budget is not None else max(stage.ratios or (stage.ratio,))
        best = max(best, p, FALLBACK_RATIO if stage.fallback == RANDOM else 0.0)
    return min(best, 1.0)


def capacity_share(spec: MaskSpec) -> float:
    """The share of a batch's text positions that get an MLM slot (see module doc); 0 without MLM."""
    if not spec.mlm:
        return 0.0
    return min(1.0, SHARE_PER_P * _largest_probability(spec) + SPREAD)


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


__all__ = ["capacity_share", "select_slots", "slots"]
