"""The one vectorised masking op of POS-conditional MLM, on the device over a whole batch (the spec it
applies is trainer/masking/spec.py):

    p = table[pos]                       256-entry float lookup: each class's probability (255: never)
    p *= budget x words / candidates     per caption, capped at 1 (frequency-matched budget)
    p = 0.15 on word tokens of captions without a candidate (FALLBACK=random)
    draw per word (word.npy): every wordpiece of a drawn word masked together (WHOLE_WORD)
    masked = draw < p; labels -100 elsewhere; BERT's 80/10/10 replacement
    slots = the masked positions first, in a buffer of a fixed size K (trainer/masking/capacity.py)

No per-sample Python and no host sync: the counts for metrics.jsonl stay on the device, and the MLM targets have
a fixed shape for the vocabulary projection.
"""
from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from toolbox.errors import UserError
from shards.upos import NOT_A_WORD, UPOS_NAMES
from trainer.masking.capacity import capacity_share, select_slots, slots
from trainer.masking.spec import FALLBACK_RATIO, RANDOM, MaskSpec, parse_mask_spec

__all__ = ["IGNORE_INDEX", "MaskSpec", "MaskedBatch", "Masker", "mask_tokens", "parse_mask_spec"]
IGNORE_INDEX = -100
N_UPOS = len(UPOS_NAMES)
MASK_REPLACEMENT: tuple[float, float] = (0.8, 0.1)  # BERT's: [MASK] 80 %, a random token 10 %, unchanged 10 %


@dataclass
class MaskedBatch:
    """Output of the masking op; every count is a tensor on the device (no host sync)."""

    input_ids: Tensor  # [B, L] ids with masked positions replaced
    labels: Tensor  # [B, L] original id at masked positions, IGNORE_INDEX elsewhere
    n_candidates: Tensor  # scalar long: tokens that could be masked (p > 0; the fallback's included)
    n_masked: Tensor  # scalar long
    n_words: Tensor  # scalar long: word tokens (pos != 255) in the batch
    masked_by_pos: Tensor  # [N_UPOS] long: masked tokens per UPOS id among the spec's candidates (no fallback)
    candidates_by_pos: Tensor  # [N_UPOS] long: the spec's candidate tokens per UPOS id, before the fallback
    captions: Tensor  # scalar long: rows of the batch
    mlm_captions: Tensor  # scalar long: captions with at least one MLM target
    capped_captions: Tensor  # scalar long: captions where the budget is capped at all their candidates
    fallback_captions: Tensor  # scalar long: captions without a candidate that took the fallback
    fallback_tokens: Tensor  # scalar long: word tokens of those captions (each drawn at the fallback's 15 %)
    fallback_masked: Tensor  # scalar long: of them, the tokens masked
    partial_words: Tensor  # scalar long: words with some but not all wordpieces masked (whole words: 0)
    positions: Tensor  # [K] long: flat indices into [B, L], the masked ones first (the MLM slots; capacity.py)
    dropped: Tensor  # scalar long: masked tokens that did not fit in the K slots (left out of the MLM loss)


def _per_pos(pos: Tensor, masked: Tensor, candidates: Tensor) -> Tensor:
    """[2, N_UPOS] masked and candidate tokens per UPOS id (255 dropped), one scatter-add on the device."""
    index = pos.clamp(max=N_UPOS).reshape(1, -1).expand(2, -1)
    flags = torch.stack([masked.reshape(-1), candidates.reshape(-1)]).long()
    return torch.zeros(2, N_UPOS + 1, dtype=torch.long, device=pos.device).scatter_add_(1, index, flags)[:, :N_UPOS]


def mask_tokens(
    ids: Tensor,
    pos: Tensor,
    table: Tensor,
    mask_id: int,
    vocab_size: int,
    probs: tuple[float, float] = MASK_REPLACEMENT,
    generator: torch.Generator | None = None,
    *,
    word: Tensor | None = None,
    budget: float | None = None,
    fallback: float = 0.0,
    capacity: float = 1.0,
) -> MaskedBatch:
    """The one vectorised masking op (see module doc). `pos` is uint8/long with 255 for specials and padding;
    `table` the spec's float table; `word` (word index, -1 for specials) turns on whole-word draws (the
    wordpieces of a word share its UPOS, so they share p; `partial_words` checks it); `budget` the expected
    masked share of each caption's word tokens; `fallback` the probability for the word tokens of captions
    without a candidate; `capacity` the share of the batch's positions that get an MLM slot (capacity.py; 1: all,
    exact whatever is drawn)."""
    pos = pos.long()
    is_word = pos != NOT_A_WORD
    p = table.take(pos)  # = table[pos], without advanced indexing's overhead
    zero = torch.zeros((), dtype=torch.long, device=ids.device)
    capped = fell_back = partial = zero
    fallback_tokens = torch.zeros_like(is_word)
    if budget is not None or fallback:
        n_cand, n_words = (p > 0).sum(1), is_word.sum(1)
    if budget is not None:  # table holds 1.0 per candidate: spread budget x words over the candidates
        want = budget * n_words
        p = p * (want / n_cand.clamp(min=1)).clamp(max=1.0)[:, None]
        capped = ((want > n_cand) & (n_cand > 0)).sum()
    if fallback:
        empty = (n_cand == 0) & (n_words > 0)
        fallback_tokens = empty[:, None] & is_word
        p = torch.where(fallback_tokens, torch.full_like(p, fallback), p)
        fell_back = empty.sum()
    draw = torch.rand(ids.shape, device=ids.device, generator=generator)
    if word is not None:  # one draw per word, shared by its wordpieces
        index = word.long().clamp(0, ids.shape[1] - 1)
        draw = draw.gather(1, index)
    masked = draw < p
    labels = torch.where(masked, ids, torch.full_like(ids, IGNORE_INDEX))
    how = torch.rand(ids.shape, device=ids.device, generator=generator)
    p_mask, p_random = probs
    to_mask = masked & (how < p_mask)
    to_random = masked & (how >= p_mask) & (how < p_mask + p_random)
    random_ids = torch.randint(vocab_size, ids.shape, device=ids.device, generator=generator, dtype=ids.dtype)
    input_ids = torch.where(to_mask, torch.full_like(ids, mask_id), ids)
    input_ids = torch.where(to_random, random_ids, input_ids)
    if word is not None:
        size_hit = torch.zeros(2, *ids.shape, dtype=torch.long, device=ids.device).scatter_add_(
            2, index.expand(2, -1, -1), torch.stack([is_word, masked & is_word]).long())
        partial = ((size_hit[1] > 0) & (size_hit[1] < size_hit[0])).sum()
    candidates = (p > 0) & ~fallback_tokens
    by_pos = _per_pos(pos, masked & candidates, candidates)
    n_masked, n_candidates = masked.sum(), (p > 0).sum()
    positions, dropped = select_slots(masked, slots(masked.numel(), capacity))
    return MaskedBatch(
        input_ids=input_ids, labels=labels, n_candidates=n_candidates, n_masked=n_masked,
        n_words=is_word.sum(), masked_by_pos=by_pos[0], candidates_by_pos=by_pos[1],
        captions=torch.full((), ids.shape[0], dtype=torch.long, device=ids.device),
        mlm_captions=masked.any(1).sum(), capped_captions=capped, fallback_captions=fell_back,
        fallback_tokens=fallback_tokens.sum(), fallback_masked=(masked & fallback_tokens).sum(),
        partial_words=partial, positions=positions, dropped=dropped,
    )


class Masker:
    """A MaskSpec bound to a device, a tokenizer and the run's length: `masker(ids, pos, word, step)`.

    A curriculum's stage is a function of the step alone (stage k ends at round(ends[k] x total_steps)),
    so a resumed run masks exactly as the uninterrupted one. `shares`: the classes' shares of the shards'
    wordpieces (trainer.masking.capacity.class_shares), which size the MLM slots of class-ratio specs.
    """

    def __init__(self, spec: MaskSpec, mask_id: int, vocab_size: int, probs: tuple[float, float] = MASK_REPLACEMENT,
                 device: torch.device | str = "cpu", total_steps: int = 1,
                 shares: Mapping[str, float] | None = None) -> None:
        if not (0 <= probs[0] and 0 <= probs[1] and probs[0] + probs[1] <= 1):
            raise UserError(f"mask replacement probabilities {probs} must be >= 0 and sum to <= 1")
        self.spec, self.mask_id, self.vocab_size, self.probs = spec, mask_id, vocab_size, probs
        self.phases = [(s.table(device), s.budget, FALLBACK_RATIO if s.fallback == RANDOM else 0.0)
                       for s in spec.stages or (spec,)]
        self.bounds = [round(end * total_steps) for end in spec.ends]
        self.capacity = capacity_share(spec, shares)  # one K share for the whole run, curriculum stages included

    def stage_at(self, step: int) -> int:
        """The curriculum stage of a step (0 without a curriculum)."""
        return bisect.bisect_right(self.bounds, step)

    def __call__(self, ids: Tensor, pos: Tensor, word: Tensor | None = None, step: int = 0,
                 generator: torch.Generator | None = None) -> MaskedBatch:
        if self.spec.whole_word and word is None:
            raise ValueError("whole-word masking needs the batch's word index (word.npy)")
        table, budget, fallback = self.phases[self.stage_at(step)]
        return mask_tokens(ids, pos, table, self.mask_id, self.vocab_size, self.probs, generator,
                           word=word if self.spec.whole_word else None, budget=budget, fallback=fallback,
                           capacity=self.capacity)
