"""The masking counters of metrics.jsonl: each step's counts from the masking op stay on the device,
are summed over a log window (trainer.engine.metrics.MetricsWindow, one host sync at log steps) and become
the record's fields here."""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from shards.upos import NOT_A_WORD, UPOS_NAMES
from trainer.masking.spec import RANDOM, MaskSpec
from trainer.masking.masker import N_UPOS, MaskedBatch

TOTALS: dict[str, int] = {  # window totals and their lengths
    "masked": 1, "words": 1, "empty_mlm": 1, "captions": 1, "mlm_captions": 1, "capped_captions": 1,
    "fallback_captions": 1, "fallback_tokens": 1, "fallback_masked": 1, "partial_words": 1, "mlm_dropped": 1, "masked_by_pos": N_UPOS,
    "candidates_by_pos": N_UPOS,
}


def step_counts(out: MaskedBatch | None, pos: Tensor) -> dict[str, Tensor]:
    """One step's TOTALS (device tensors); `out` None when the run has no MLM."""
    if out is None:
        zero = torch.zeros((), dtype=torch.long, device=pos.device)
        counts = {name: zero if size == 1 else torch.zeros(size, dtype=torch.long, device=pos.device)
                  for name, size in TOTALS.items()}
        counts.update(words=(pos != NOT_A_WORD).sum(),
                      captions=torch.full((), pos.shape[0], dtype=torch.long, device=pos.device))
        return counts
    return {"masked": out.n_masked, "words": out.n_words, "empty_mlm": (out.n_masked == 0).long(),
            "captions": out.captions, "mlm_captions": out.mlm_captions, "capped_captions": out.capped_captions,
            "fallback_captions": out.fallback_captions, "fallback_tokens": out.fallback_tokens,
            "fallback_masked": out.fallback_masked, "partial_words": out.partial_words,
            "mlm_dropped": out.dropped, "masked_by_pos": out.masked_by_pos, "candidates_by_pos": out.candidates_by_pos}


def _by_class(counts: list[int]) -> dict[str, int]:
    return {UPOS_NAMES[i]: n for i, n in enumerate(counts) if n}


def mask_fields(values: dict[str, Any], spec: MaskSpec) -> dict[str, Any]:
    """Pop the window's TOTALS (but `empty_mlm`) from `values`; the metrics.jsonl fields they make: the
    achieved masked share of word tokens, masked and candidate tokens per class (the spec's classes only: the
    fallback's tokens have fields of their own), the share of captions
    with an MLM target, masked tokens left out of the loss for want of a slot (trainer/masking/capacity.py; 0 on
    real captions), and per variant the capped (BUDGET) and fallback captions and split words."""
    masked, words, captions = values.pop("masked"), values.pop("words"), max(values.pop("captions"), 1)
    capped, fell_back = values.pop("capped_captions"), values.pop("fallback_captions")
    fallback_tokens, fallback_masked = values.pop("fallback_tokens"), values.pop("fallback_masked")
    partial = values.pop("partial_words")
    record: dict[str, Any] = {
        "masked_share": masked / max(words, 1), "masked_tokens": masked,
        "mlm_caption_share": values.pop("mlm_captions") / captions,
        "masked_by_pos": _by_class(values.pop("masked_by_pos")),
        "candidates_by_pos": _by_class(values.pop("candidates_by_pos")),
        "mlm_dropped_tokens": values.pop("mlm_dropped"),
    }
    if spec.budget is not None:
        record["budget_capped_share"] = capped / captions
    if spec.fallback == RANDOM:
        record.update(fallback_caption_share=fell_back / captions, fallback_tokens=fallback_tokens,
                      fallback_masked_tokens=fallback_masked)
    if spec.whole_word:
        record["partial_words"] = partial
    return record
