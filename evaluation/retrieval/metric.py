"""Recall@k for image-text retrieval from a score matrix, with explicit tie handling.

Ties matter: a collapsed model that gives every pair the same score must not get R@1 = 100% because
a sort happened to put the true item first. The rank of a query's best positive is counted against
the negatives only (other positives never push a positive down), and ties with negatives are
resolved by `ties`:

- ``"pessimistic"`` (default): every tied negative ranks above the positive;
- ``"optimistic"``: every tied negative ranks below it;
- ``"expected"``: ties broken uniformly at random, the expected recall is reported.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TIE_MODES: tuple[str, ...] = ("pessimistic", "optimistic", "expected")


def _hit_probability(greater: int, tied_neg: int, tied_pos: int, k: int, ties: str) -> float:
    """P(a positive is within the top k) given negatives strictly above / tied with the best positive."""
    slots = k - greater  # positions left for the tied group before the cut-off
    if slots <= 0:
        return 0.0
    if ties == "optimistic" or tied_neg == 0:
        return 1.0
    if ties == "pessimistic":
        return 1.0 if tied_neg < slots else 0.0
    # expected: the first `slots` members of a random order of the tied group are all negatives
    if slots > tied_neg:
        return 1.0
    p_all_negative = 1.0
    for i in range(slots):
        p_all_negative *= (tied_neg - i) / (tied_neg + tied_pos - i)
    return 1.0 - p_all_negative


def query_hits(
    scores: np.ndarray,
    positives: Sequence[Sequence[int]],
    ks: Sequence[int] = (1, 5, 10),
    ties: str = "pessimistic",
) -> np.ndarray:
    """[queries, len(ks)]: the probability that each query (row of `scores`) has a positive in its top k
    (0 or 1, fractional only for `expected` ties). Recall@k is the column mean.

    `scores` is [queries, candidates] (higher is better); `positives[q]` lists the candidate
    indices that are correct for query q (at least one each).
    """
    if ties not in TIE_MODES:
        raise ValueError(f"ties must be one of {TIE_MODES}, got {ties!r}")
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] != len(positives):
        raise ValueError(f"scores {scores.shape} does not match {len(positives)} queries")
    hits = np.zeros((len(positives), len(ks)))
    for q, pos in enumerate(positives):
        if len(pos) == 0:
            raise ValueError(f"query {q} has no positive")
        row = scores[q]
        pos_idx = np.asarray(pos, dtype=np.int64)
        best = row[pos_idx].max()
        negative = np.ones(row.shape[0], dtype=bool)
        negative[pos_idx] = False
        greater = int(np.count_nonzero(row[negative] > best))
        tied_neg = int(np.count_nonzero(row[negative] == best))
        tied_pos = int(np.count_nonzero(row[pos_idx] == best))
        hits[q] = [_hit_probability(greater, tied_neg, tied_pos, k, ties) for k in ks]
    return hits


def recall_at_k(
    scores: np.ndarray,
    positives: Sequence[Sequence[int]],
    ks: Sequence[int] = (1, 5, 10),
    ties: str = "pessimistic",
) -> dict[int, float]:
    """Recall@k in percent: share of queries with a positive in their top k (see `query_hits`)."""
    hits = query_hits(scores, positives, ks, ties)
    means = hits.mean(axis=0) if len(hits) else np.zeros(len(ks))
    return {k: 100.0 * float(m) for k, m in zip(ks, means)}


KS: tuple[int, ...] = (1, 5, 10)


def retrieval_hits(
    i2t: np.ndarray,
    t2i: np.ndarray,
    txt2img: Sequence[int],
    img2txt: Sequence[Sequence[int]],
    ties: str = "pessimistic",
) -> tuple[np.ndarray, np.ndarray]:
    """Per-query hits at k = 1, 5, 10: TR (one row per image) and IR (one row per text).

    `i2t` is [images, texts], `t2i` is [texts, images]; `txt2img[t]` is the image of text t and
    `img2txt[i]` the texts of image i.
    """
    return query_hits(i2t, img2txt, KS, ties), query_hits(t2i, [[i] for i in txt2img], KS, ties)


def metrics_from_hits(tr: np.ndarray, ir: np.ndarray) -> dict[str, float]:
    """TR and IR R@1/5/10, their means and the overall mean (percent) from per-query hits."""
    out = {f"tr_r{k}": 100.0 * float(tr[:, j].mean()) for j, k in enumerate(KS)}
    out |= {f"ir_r{k}": 100.0 * float(ir[:, j].mean()) for j, k in enumerate(KS)}
    out["tr_mean"] = float(np.mean([out[f"tr_r{k}"] for k in KS]))
    out["ir_mean"] = float(np.mean([out[f"ir_r{k}"] for k in KS]))
    out["r_mean"] = (out["tr_mean"] + out["ir_mean"]) / 2
    return out

