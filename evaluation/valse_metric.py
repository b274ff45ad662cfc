"""VALSE scores for an image-text matching head (as in the VALSE authors' evaluation).

For each entry the model gives a match score to the true caption and to the foil:
- ``acc_r``: share of pairs where the caption's score beats the foil's (a tie is a loss);
- ``p_c``: share of captions judged matching (match probability > 0.5);
- ``p_f``: share of foils judged not matching (match probability < 0.5);
- ``acc = (p_c + p_f) / 2``.
All in percent.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def valse_scores(
    caption_prob: Sequence[float],
    foil_prob: Sequence[float],
    threshold: float = 0.5,
) -> dict[str, float]:
    """acc_r, p_c, p_f, acc (percent) and n from match probabilities of captions and foils."""
    cap = np.asarray(caption_prob, dtype=np.float64)
    foil = np.asarray(foil_prob, dtype=np.float64)
    if cap.shape != foil.shape:
        raise ValueError("caption and foil scores must have equal length")
    n = int(cap.shape[0])
    if n == 0:
        return {"acc_r": float("nan"), "p_c": float("nan"), "p_f": float("nan"), "acc": float("nan"), "n": 0}
    acc_r = 100.0 * float(np.mean(cap > foil))
    p_c = 100.0 * float(np.mean(cap > threshold))
    p_f = 100.0 * float(np.mean(foil < threshold))
    return {"acc_r": acc_r, "p_c": p_c, "p_f": p_f, "acc": (p_c + p_f) / 2, "n": n}
