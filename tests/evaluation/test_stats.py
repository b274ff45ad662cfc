"""Seed spreads and the paired bootstrap over evaluation items."""
from __future__ import annotations

import numpy as np
import pytest

from evaluation.core.items import ItemScores
from evaluation.core.stats import average_over_seeds, mean_sd, paired_bootstrap


def items(values, strata=None, ids=None) -> ItemScores:
    values = np.asarray(values, dtype=float)
    return ItemScores(tuple(ids or map(str, range(len(values)))), values,
                      None if strata is None else np.asarray(strata))


def test_paired_differences_are_tight_and_independent_ones_wide() -> None:
    rng = np.random.default_rng(0)
    ref = rng.random(1000) < 0.5
    better = ref.copy()
    better[np.flatnonzero(~ref)[:30]] = True  # 30 more items right, none lost: +3 points
    interval = paired_bootstrap(items(better), items(ref))
    assert interval.delta == pytest.approx(3.0) and 1.5 < interval.low < 3.0 < interval.high < 4.5
    assert interval.excludes_zero
    shuffled = paired_bootstrap(items(rng.permutation(ref)), items(ref))  # same share, unrelated items
    assert shuffled.delta == 0 and shuffled.low < -3 and shuffled.high > 3 and not shuffled.excludes_zero
    same = paired_bootstrap(items(ref), items(ref))
    assert (same.low, same.high) == (0.0, 0.0)


def test_bootstrap_is_seeded_and_needs_the_same_items() -> None:
    a, b = items([1, 0, 1, 1, 0, 1]), items([0, 0, 1, 1, 1, 0])
    assert paired_bootstrap(a, b, seed=3) == paired_bootstrap(a, b, seed=3)
    assert paired_bootstrap(a, items([0, 0, 1, 1, 1, 0], ids=list("abcdef"))) is None


def test_strata_resample_within_pieces_and_average_piece_means() -> None:
    values, strata = [1, 1, 1, 1, 0, 0], ["p", "p", "p", "p", "q", "q"]
    assert items(values, strata).metric() == pytest.approx(50.0)  # mean of 100 and 0, not 66.7
    interval = paired_bootstrap(items(values, strata), items([0] * 6, strata))
    assert interval.low == interval.high == 50.0  # every resample keeps both pieces whole in size


def test_seeds() -> None:
    assert mean_sd([70.0]) == (70.0, None)
    mean, sd = mean_sd([70.0, 72.0])
    assert mean == 71.0 and sd == pytest.approx(np.sqrt(2))
    avg = average_over_seeds([items([1, 0]), items([1, 1])])
    assert avg.values.tolist() == [1.0, 0.5]
    assert average_over_seeds([items([1, 0]), items([1, 0], ids=["x", "y"])]) is None
