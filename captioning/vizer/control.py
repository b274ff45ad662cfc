"""ViZer's control (issue 22): does the LoRA stage lower its loss through the captions, or through the image path
alone? On the evaluation images, with the frozen mapper of one cell, before LoRA (Base) and after (the merged
LoRA captioner):

- the loss with **own** captions: each captioner's greedy caption of each image (the LoRA objective);
- the loss with **shuffled** captions: image i's states computed on the same captioner's caption of image
  `perm[i]`, `perm` a fixed seeded derangement (no image keeps its own caption), so the caption says nothing
  about the image and any drop in this loss comes through the caption-independent path;
- the loss after LoRA with **Base's** captions held fixed (what LoRA gains without changing any caption);
- the **surviving share** of the gain: (gain_own - gain_shuffled) / gain_own, gain = loss before - loss after;
  1 = none of the own-caption drop is also had with captions that do not match the image, 0 = all of it is
  (the caption did not matter); undefined (None) when gain_own <= 0;
- the share of captions that changed versus Base: exact-string share, and the mean token edit rate (word-level
  Levenshtein distance / the Base caption's words).
"""
from __future__ import annotations

import logging
import random
from typing import Any

import torch
from torch import Tensor, nn

from captioning.captioner import PAD, Captioner, decode
from captioning.vizer.mapper import Mapper, Pairs, cosine_loss, image_targets, pair_states

log = logging.getLogger(__name__)


def derangement(n: int, seed: int = 0) -> list[int]:
    """A seeded random permutation of range(n) with no fixed point (Sattolo: one cycle through all n); n >= 2."""
    if n < 2:
        raise ValueError(f"a derangement needs at least 2 items (got {n})")
    perm = list(range(n))
    rng = random.Random(seed)
    for i in range(n - 1, 0, -1):
        j = rng.randrange(i)
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def edit_distance(a: list[str], b: list[str]) -> int:
    """Levenshtein distance between two token lists (insertions, deletions, substitutions cost 1)."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def edit_rate(reference: str, caption: str) -> float:
    """Word-level edit distance of `caption` from `reference` over the reference's words (lower-cased,
    whitespace-split; an empty reference counts as one word)."""
    ref, hyp = reference.lower().split(), caption.lower().split()
    return edit_distance(ref, hyp) / max(len(ref), 1)


def changed_captions(base: list[str], after: list[str]) -> dict[str, float]:
    """The share of captions that differ from Base's (exact string) and the mean word edit rate."""
    n = max(len(base), 1)
    return {"changed": sum(a != b for a, b in zip(base, after)) / n,
            "edit_rate": sum(edit_rate(a, b) for a, b in zip(base, after)) / n}


def surviving_share(own: list[float], shuffled: list[float]) -> float | None:
    """(gain_own - gain_shuffled) / gain_own of [before, after] losses; None when gain_own <= 0."""
    gain_own, gain_shuffled = own[0] - own[1], shuffled[0] - shuffled[1]
    return (gain_own - gain_shuffled) / gain_own if gain_own > 0 else None


@torch.no_grad()
def greedy_tokens(model: nn.Module, features: Tensor, batch_size: int = 64) -> list[Tensor]:
    """Each image's greedy caption (local tokens, CPU, trailing padding kept) under `model` in eval mode."""
    device = next(model.parameters()).device
    model.eval()
    return [row for start in range(0, len(features), batch_size)
            for row in model.generate(features[start:start + batch_size].to(device).float()).cpu()]


def texts(model: Captioner, tokens: list[Tensor]) -> list[str]:
    """The captions of `greedy_tokens` as text (as `greedy_captions` gives them)."""
    return decode(model, nn.utils.rnn.pad_sequence(tokens, batch_first=True, padding_value=PAD))


@torch.no_grad()
def caption_loss(model: nn.Module, mapper: Mapper, features: Tensor, tokens: list[Tensor],
                 order: list[int] | None = None) -> float:
    """Mean 1 - cos of the mapped pooled states of image i on caption `tokens[order[i]]` (default: its own)
    against image i's feature, states in eval mode as the mapper's (`pair_states`)."""
    order = list(range(len(features))) if order is None else order
    states = pair_states(model, features, Pairs(list(range(len(features))), [tokens[j] for j in order]))
    device = next(mapper.parameters()).device
    return float(cosine_loss(mapper(states.to(device)), image_targets(features).to(device)))


def control(base: nn.Module, after: nn.Module, mapper: Mapper, features: Tensor, base_tokens: list[Tensor],
            after_tokens: list[Tensor], base_texts: list[str], after_texts: list[str],
            seed: int = 0) -> dict[str, Any]:
    """The control of one cell (module doc): losses [before, after] with own and shuffled captions, the loss
    after LoRA on Base's captions, the surviving share, the changed-caption shares."""
    perm = derangement(len(features), seed)
    own = [caption_loss(base, mapper, features, base_tokens), caption_loss(after, mapper, features, after_tokens)]
    shuffled = [caption_loss(base, mapper, features, base_tokens, perm),
                caption_loss(after, mapper, features, after_tokens, perm)]
    out = {"loss_own": own, "loss_shuffled": shuffled,
           "loss_base_captions": caption_loss(after, mapper, features, base_tokens),
           "surviving_share": surviving_share(own, shuffled), **changed_captions(base_texts, after_texts)}
    log.info("control: own %.4f -> %.4f, shuffled %.4f -> %.4f, %.0f %% of captions changed", *own, *shuffled,
             100 * out["changed"])
    return out
