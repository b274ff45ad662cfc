"""The study's statistics: seeds and clustered items resampled together, corrected for many comparisons, and
calibrated: a table of null differences is marked at most alpha of the time, a real one is found."""
from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation.core.items import ItemScores
from evaluation.core.stats import Design, adjust, adjusted, compare, detectable, mean_sd, paired_bootstrap


def items(values, strata=None, ids=None, clusters=None) -> ItemScores:
    values = np.asarray(values, dtype=float)
    return ItemScores(tuple(ids or map(str, range(len(values)))), values,
                      None if strata is None else np.asarray(strata),
                      None if clusters is None else np.asarray(clusters, dtype=object))


def test_paired_differences_are_tight_and_independent_ones_wide() -> None:
    rng = np.random.default_rng(0)
    ref = rng.random(1000) < 0.5
    better = ref.copy()
    better[np.flatnonzero(~ref)[:30]] = True  # 30 more items right, none lost: +3 points
    interval = paired_bootstrap(items(better), items(ref))
    assert interval.delta == pytest.approx(3.0) and 1.5 < interval.low < 3.0 < interval.high < 4.5
    assert interval.marked and interval.item_only and interval.p < 0.001
    shuffled = paired_bootstrap(items(rng.permutation(ref)), items(ref))  # same share, unrelated items
    assert shuffled.delta == 0 and shuffled.low < -3 and shuffled.high > 3 and not shuffled.marked
    assert shuffled.p > 0.5
    same = paired_bootstrap(items(ref), items(ref))
    assert (same.low, same.high, same.p) == (0.0, 0.0, 1.0)


def test_bootstrap_is_seeded_and_needs_the_same_items() -> None:
    a, b = items([1, 0, 1, 1, 0, 1]), items([0, 0, 1, 1, 1, 0])
    assert paired_bootstrap(a, b, seed=3) == paired_bootstrap(a, b, seed=3)
    assert paired_bootstrap(a, items([0, 0, 1, 1, 1, 0], ids=list("abcdef"))) is None
    assert compare([a, a], [b, items([0] * 6, ids=list("abcdef"))]) is None  # a reference seed scored other items


def test_strata_resample_within_pieces_and_average_piece_means() -> None:
    values, strata = [1, 1, 1, 1, 0, 0], ["p", "p", "p", "p", "q", "q"]
    assert items(values, strata).metric() == pytest.approx(50.0)  # mean of 100 and 0, not 66.7
    interval = paired_bootstrap(items(values, strata), items([0] * 6, strata))
    assert interval.low == interval.high == 50.0  # every resample keeps both pieces whole in size


def test_an_image_with_five_identical_captions_counts_once() -> None:
    """The cluster bootstrap resamples images: five copies of each row in one cluster give exactly the interval of
    one row per image; resampling the copies as rows would make it sqrt(5) times too narrow."""
    rng = np.random.default_rng(1)
    a, r = rng.random(200) < 0.55, rng.random(200) < 0.5
    once = paired_bootstrap(items(a), items(r), seed=7)
    images = np.repeat(np.arange(200), 5)
    five = paired_bootstrap(items(a[images], clusters=images), items(r[images], clusters=images), seed=7)
    assert (five.delta, five.low, five.high, five.p) == pytest.approx((once.delta, once.low, once.high, once.p))
    rows = paired_bootstrap(items(a[images]), items(r[images]), seed=7)
    assert (rows.high - rows.low) < 0.6 * (once.high - once.low)


def test_the_readers_cluster_ir_vqa_and_the_probe_by_image() -> None:
    from evaluation.core.items import probe_items, retrieval_items, vqa_items

    images = [f"img{i}.jpg" for i in range(4)]
    retrieval = {"ks": [1], "tr": {"ids": images, "image_ids": images, "hits": [[1]] * 4},
                 "ir": {"ids": [f"c{i}" for i in range(12)], "image_ids": [images[i // 3] for i in range(12)],
                        "hits": [[i % 2] for i in range(12)]}}
    ir, tr = retrieval_items(retrieval)["retrieval/ir_r1"], retrieval_items(retrieval)["retrieval/tr_r1"]
    assert Design.of(ir).sizes.tolist() == [3, 3, 3, 3] and Design.of(tr).sizes.tolist() == [1, 1, 1, 1]
    rows = [{"question_id": q, "image_id": str(q // 10), "answer_type": "yes/no" if q % 2 else "other",
             "accuracy": 1.0} for q in range(60)]
    vqa = vqa_items(rows)
    assert Design.of(vqa["vqa/overall"]).sizes.tolist() == [10] * 6
    assert Design.of(vqa["vqa/yes/no"]).sizes.tolist() == [5] * 6  # one answer type: its questions, by image
    probe = probe_items({"variants": {"swap_NOUN": {"ids": [f"k{i}" for i in range(10)],
                                                    "image_ids": [f"i{i // 5}" for i in range(10)],
                                                    "foil": [0.2] * 10, "original": [0.9] * 10}}})
    assert Design.of(probe["probe/swap_NOUN:original_wins"]).sizes.tolist() == [5, 5]
    old = vqa_items([{k: v for k, v in row.items() if k != "image_id"} for row in rows])  # files without image ids
    assert old["vqa/overall"].clusters is None and len(Design.of(old["vqa/overall"]).sizes) == 60


def test_seed_variance_widens_the_interval_and_one_seed_covers_items_only() -> None:
    rng = np.random.default_rng(2)
    base = rng.random(500) < 0.5
    noisy = [items(base | (rng.random(500) < 0.15 * k)) for k in range(3)]  # each seed ~6 points above the last
    steady = [items(base)] * 3
    wide, narrow = compare(noisy, steady), compare(noisy[:1], steady[:1])
    assert not wide.item_only and narrow.item_only and wide.seeds == (3, 3)
    assert (wide.high - wide.low) > 2 * (narrow.high - narrow.low)
    assert wide.df < 10 < narrow.df  # few seeds: the t map has few degrees of freedom


def test_holm_and_benjamini_hochberg() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    assert adjust(p, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert adjust(p, "bh") == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert adjust(p, "none") == p
    with pytest.raises(ValueError, match="valid: holm, bh, none"):
        adjust(p, "bonferroni")


def test_detectable_difference_falls_with_seeds() -> None:
    sizes = [detectable(2.0, 1.0, n) for n in (2, 3, 5, 10)]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > 2 * sizes[-1]
    assert detectable(0.0, 1.0, 2) == pytest.approx((1.959964 + 0.841621), rel=1e-3)  # items alone: normal


IMAGES, CAPTIONS, NOISE = 60, 4, 0.15  # per image; the per-seed noise of an item's score


def run_sd(offset_sd: float) -> float:
    """The seed SD of one run's metric (points): its per-seed offset and its items' per-seed noise."""
    return math.sqrt(offset_sd ** 2 + (100 * NOISE) ** 2 / (IMAGES * CAPTIONS))


def _table(rng: np.random.Generator, seeds: int, seed_sd: float, effect_sd: float, metrics: int,
           shift: float) -> list[tuple[list[ItemScores], list[ItemScores]]]:
    """One simulated table: `metrics` metrics of two methods, each on 60 images x 4 captions with an image-level
    effect, a per-seed offset of `seed_sd` points, and method A shifted by `shift` points on the first metric."""
    images = np.repeat(np.arange(IMAGES), CAPTIONS)
    out = []
    for j in range(metrics):
        image_level = rng.normal(0.0, effect_sd, 60)[images]
        runs = []
        for offset in ((shift if j == 0 else 0.0), 0.0):
            runs.append([items(np.clip(0.5 + offset / 100 + rng.normal(0, seed_sd / 100) + image_level
                                       + rng.normal(0, NOISE, len(images)), 0, 1), clusters=images)
                         for _ in range(seeds)])
        out.append((runs[0], runs[1]))
    return out


def _marked_first(rng: np.random.Generator, seeds: int, seed_sd: float, shift: float, tables: int) -> list[list[bool]]:
    marks = []
    for _ in range(tables):
        family = [compare(a, r, resamples=2000, seed=int(rng.integers(1 << 30)))
                  for a, r in _table(rng, seeds, seed_sd, 0.1, 4, shift)]
        marks.append([c.marked for c in adjusted(family, "holm", 0.05)])
    return marks


@pytest.mark.slow
@pytest.mark.parametrize("seeds", [2, 3])
def test_null_tables_are_marked_at_most_alpha_of_the_time(seeds: int) -> None:
    """Two identical methods, a seed SD as large as the items' noise, clustered items, 4 metrics a table: the
    family-wise rate of any adjusted mark stays within alpha plus a binomial 3-sigma bound."""
    tables, alpha = 300, 0.05
    marks = _marked_first(np.random.default_rng(seeds), seeds, seed_sd=3.0, shift=0.0, tables=tables)
    family_wise = np.mean([any(m) for m in marks])
    assert family_wise <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / tables)


@pytest.mark.slow
def test_a_true_difference_of_three_seed_sds_is_found_with_five_seeds() -> None:
    marks = _marked_first(np.random.default_rng(9), 5, seed_sd=3.0, shift=3 * run_sd(3.0), tables=200)
    assert np.mean([m[0] for m in marks]) >= 0.8
    assert np.mean([any(m[1:]) for m in marks]) <= 0.1  # the other metrics stay unmarked


def test_seeds() -> None:
    assert mean_sd([70.0]) == (70.0, None)
    mean, sd = mean_sd([70.0, 72.0])
    assert mean == 71.0 and sd == pytest.approx(np.sqrt(2))
