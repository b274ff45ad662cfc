"""Statistics for the study's tables: the spread over seeds, and a paired bootstrap over evaluation items.

A table row is a claim. For each metric the paired bootstrap resamples the evaluation items (Flickr30K
queries, VALSE entries, VQA questions) with replacement, the same resample for a row and for the
reference row, and takes the 2.5 and 97.5 percentiles of the difference over 1,000 resamples (seeded).
A difference whose interval spans 0 is not called a difference.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from evaluation.core.items import ItemScores, stratified_mean

RESAMPLES = 1000
LEVEL = 0.95
CELLS_PER_CHUNK = 4_000_000  # resamples x items drawn at once


def level_text(level: float = LEVEL) -> str:
    """An interval's level as the reports print it, `95 %`."""
    return f"{100 * level:g} %"


def resamples_text(resamples: int = RESAMPLES) -> str:
    """`1,000 resamples`."""
    return f"{resamples:,} resamples"


@dataclass(frozen=True)
class Interval:
    """A row's difference from the reference row and its bootstrap interval (percentage points)."""

    delta: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def mean_sd(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation over seeds (None for a single seed)."""
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), (float(array.std(ddof=1)) if len(array) > 1 else None)


def average_over_seeds(runs: Sequence[ItemScores]) -> ItemScores | None:
    """The per-item mean over seeds (None when the seeds scored different items)."""
    if not runs or any(r.ids != runs[0].ids for r in runs):
        return None
    return ItemScores(runs[0].ids, np.mean([r.values for r in runs], axis=0), runs[0].strata)


def percentile_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The central `level` percentile interval of bootstrap values."""
    low, high = np.percentile(values, [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)


def _resample_indices(rng: np.random.Generator, n: int, strata: np.ndarray | None, count: int
                      ) -> tuple[np.ndarray, np.ndarray | None]:
    """[count, n] item indices drawn with replacement (within each stratum), and the columns' strata."""
    if strata is None:
        return rng.integers(0, n, size=(count, n)), None
    parts, labels = [], []
    for s in np.unique(strata):
        members = np.flatnonzero(strata == s)
        parts.append(members[rng.integers(0, len(members), size=(count, len(members)))])
        labels.append(np.full(len(members), s))
    return np.concatenate(parts, axis=1), np.concatenate(labels)


def _resampled(rng: np.random.Generator, n: int, strata: np.ndarray | None, resamples: int,
               statistic: Callable[[np.ndarray, np.ndarray | None], np.ndarray]) -> np.ndarray:
    """`statistic(indices, strata)` of `resamples` resamples of n items, drawn in chunks of bounded size."""
    per_chunk = max(1, CELLS_PER_CHUNK // n)
    out = []
    for start in range(0, resamples, per_chunk):
        out.append(statistic(*_resample_indices(rng, n, strata, min(per_chunk, resamples - start))))
    return np.concatenate(out)


def paired_bootstrap(run: ItemScores, reference: ItemScores, resamples: int = RESAMPLES, seed: int = 0,
                     level: float = LEVEL) -> Interval | None:
    """The interval of `run`'s metric minus `reference`'s, resampling the same items for both;
    None when the two were scored on different items."""
    if run.ids != reference.ids or len(run.ids) == 0:
        return None
    diffs = _resampled(np.random.default_rng(seed), len(run.ids), run.strata, resamples,
                       lambda idx, s: stratified_mean(run.values[idx], s) - stratified_mean(reference.values[idx], s))
    return Interval(run.metric() - reference.metric(), *percentile_interval(diffs, level))


# --- one run's own interval (the probe reports each figure with it) ---
def bootstrap_interval(items: ItemScores, resamples: int = RESAMPLES, seed: int = 0,
                       level: float = LEVEL) -> tuple[float, float] | None:
    """The percentile interval of one run's metric (in percent, as `ItemScores.metric`), resampling its items
    with replacement; None without items."""
    if not items.ids:
        return None
    draws = _resampled(np.random.default_rng(seed), len(items.ids), items.strata, resamples,
                       lambda idx, s: stratified_mean(items.values[idx], s))
    return percentile_interval(draws, level)
