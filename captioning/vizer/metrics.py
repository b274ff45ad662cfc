"""ViZer's Table 1 metrics with bootstrap intervals over the evaluation images.

Corpus BLEU-1..4 is pycocoevalcap's (its `closest` reference length and smoothing), computed here from each
image's n-gram counts so that a resample of the images is a sum of rows; ROUGE-L and CIDEr are pycocoevalcap's
per-image scores (their corpus value is the mean); the CLIPScore analogue is the mean ITC cosine of a
pre-trained posmask run. Every metric is a function of image indices, so one draw of indices gives each
system's value and, for the same draw, its difference from another system (paired bootstrap).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from captioning.metrics import words
from evaluation.core.stats import Interval, percentile_interval

Statistic = Callable[[np.ndarray], np.ndarray]  # image indices [R,n] -> metric per resample [R]
TINY, SMALL = 1e-15, 1e-9  # pycocoevalcap's BLEU smoothing


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def bleu_counts(references: Sequence[Sequence[str]], captions: Sequence[str]) -> np.ndarray:
    """Per image [N, 10]: clipped matches of 1..4-grams, candidate 1..4-grams, caption length, closest
    reference length (pycocoevalcap's counts)."""
    rows = []
    for refs, caption in zip(references, captions):
        hyp = words(caption) or ["empty"]
        ref_tokens = [words(r) for r in refs]
        row = []
        for n in range(1, 5):
            best: Counter = Counter()
            for ref in ref_tokens:
                best |= _ngrams(ref, n)
            row.append(sum(min(c, best[g]) for g, c in _ngrams(hyp, n).items()))
        row += [max(len(hyp) - k, 0) for k in range(4)]
        closest = min((abs(len(r) - len(hyp)), len(r)) for r in ref_tokens)[1]
        rows.append(row + [len(hyp), closest])
    return np.asarray(rows, dtype=np.float64)


def bleu_statistic(counts: np.ndarray, n: int) -> Statistic:
    """Corpus BLEU-n (x100) of resampled images."""
    def statistic(idx: np.ndarray) -> np.ndarray:
        total = counts[idx].sum(axis=1)  # [R,10]
        log_p = np.log((total[:, :n] + TINY) / (total[:, 4:4 + n] + SMALL)).sum(1) / n
        ratio = (total[:, 8] + TINY) / (total[:, 9] + SMALL)
        brevity = np.where(ratio < 1, 1 - 1 / ratio, 0.0)
        return 100.0 * np.exp(log_p + brevity)
    return statistic


def mean_statistic(values: Sequence[float]) -> Statistic:
    """The mean of per-image values (already on the table's scale)."""
    array = np.asarray(values, dtype=np.float64)
    return lambda idx: array[idx].mean(axis=1)


def ratio_statistic(numerators: Sequence[float], denominators: Sequence[float]) -> Statistic:
    """100 x sum of numerators / sum of denominators over the resampled images (a micro average)."""
    num, den = np.asarray(numerators, dtype=np.float64), np.asarray(denominators, dtype=np.float64)
    return lambda idx: 100.0 * num[idx].sum(1) / np.maximum(den[idx].sum(1), 1e-12)


def rouge_l(references: Sequence[Sequence[str]], captions: Sequence[str]) -> list[float]:
    """pycocoevalcap's ROUGE-L (x100) of each image's caption against its references."""
    from pycocoevalcap.rouge.rouge import Rouge

    refs = {i: [" ".join(words(r)) for r in rs] for i, rs in enumerate(references)}
    hyps = {i: [" ".join(words(c)) or "empty"] for i, c in enumerate(captions)}
    return [100.0 * float(s) for s in Rouge().compute_score(refs, hyps)[1]]


def draws(n: int, resamples: int, seed: int) -> np.ndarray:
    """[resamples, n] image indices drawn with replacement (seeded); the same draws serve every system."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def paired_difference(a: Statistic, b: Statistic, n: int, idx: np.ndarray) -> Interval:
    """System a's value minus b's on all n images, with the interval of the difference over the draws `idx`."""
    full = np.arange(n)[None]
    low, high = percentile_interval(a(idx) - b(idx))
    return Interval(float(a(full)[0] - b(full)[0]), low, high)
