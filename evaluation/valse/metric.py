"""VALSE scores for an image-text matching head, in two conventions.

For each entry the model gives ITM logits (no match, match) to the true caption and to the foil:
- ``acc_r``: share of pairs where the caption beats the foil (a tie is a loss);
- ``p_c``: share of captions judged matching;
- ``p_f``: share of foils judged not matching;
- ``acc = (p_c + p_f) / 2``.
All in percent. The conventions differ in what is compared:

| | ``posmask`` (default) | ``valse`` (the VALSE authors' ``lxmert_valse_eval.py``) |
|---|---|---|
| acc_r | match probabilities (compared as log-odds: same order, no rounding to 1) | raw match logits |
| p_c | match probability > 0.5 | match logit > no-match logit (the same) |
| p_f | match probability < 0.5 | no-match logit >= match logit (a tie counts as detected) |
| a tie (caption and foil logits exactly equal) | kept: acc_r lost, p_c / p_f by their own rule | skipped, and counted (`ties_skipped`) |
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

VALSE_CONVENTIONS: tuple[str, ...] = ("posmask", "valse")
# What acc_r compares, from logits [..., 2] (no match, match): posmask the match log-odds (the order of the
# match probabilities, which round to 1 where log-odds do not), valse the raw match logit.
PAIRWISE_SCORE: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "posmask": lambda logits: logits[..., 1] - logits[..., 0],
    "valse": lambda logits: logits[..., 1],
}


def entry_outcomes(caption_logits: Sequence[Sequence[float]] | np.ndarray,
                   foil_logits: Sequence[Sequence[float]] | np.ndarray,
                   convention: str = "posmask") -> dict[str, np.ndarray]:
    """Per entry, from [n,2] logits: `pairwise` (the caption beats the foil), `caption_fits` (the caption is
    judged matching), `foil_detected` (the foil is judged not matching) and `tied` (caption and foil logits
    exactly equal), as bool arrays."""
    if convention not in VALSE_CONVENTIONS:
        raise ValueError(f"VALSE convention {convention!r}; valid: {', '.join(VALSE_CONVENTIONS)}")
    cap = np.asarray(caption_logits, dtype=np.float64).reshape(-1, 2)
    foil = np.asarray(foil_logits, dtype=np.float64).reshape(-1, 2)
    if cap.shape != foil.shape:
        raise ValueError("caption and foil scores must have equal length")
    cap_odds, foil_odds = cap[:, 1] - cap[:, 0], foil[:, 1] - foil[:, 0]
    score = PAIRWISE_SCORE[convention]
    return {"pairwise": score(cap) > score(foil), "caption_fits": cap_odds > 0,
            "foil_detected": foil_odds <= 0 if convention == "valse" else foil_odds < 0,
            "tied": (cap == foil).all(axis=1)}


def valse_scores(caption_logits: Sequence[Sequence[float]] | np.ndarray,
                 foil_logits: Sequence[Sequence[float]] | np.ndarray,
                 convention: str = "posmask") -> dict[str, float]:
    """acc_r, p_c, p_f, acc (percent), n (the entries scored) and ties_skipped from ITM logits [n,2] of captions
    and foils; the `valse` convention skips tied entries as the VALSE authors' script does."""
    outcome = entry_outcomes(caption_logits, foil_logits, convention)
    skipped = outcome["tied"] if convention == "valse" else np.zeros_like(outcome["tied"])
    kept = {k: v[~skipped] for k, v in outcome.items()}
    n, ties = int(kept["pairwise"].shape[0]), int(skipped.sum())
    if n == 0:
        return {"acc_r": float("nan"), "p_c": float("nan"), "p_f": float("nan"), "acc": float("nan"), "n": 0,
                "ties_skipped": ties}
    acc_r, p_c, p_f = (100.0 * float(np.mean(kept[k])) for k in ("pairwise", "caption_fits", "foil_detected"))
    return {"acc_r": acc_r, "p_c": p_c, "p_f": p_f, "acc": (p_c + p_f) / 2, "n": n, "ties_skipped": ties}


def skipped_as_tie(caption_logits: Sequence[float], foil_logits: Sequence[float], convention: str) -> bool:
    """Whether `convention` leaves this entry out (valse: caption and foil logits exactly equal)."""
    return convention == "valse" and list(map(float, caption_logits)) == list(map(float, foil_logits))
