"""Statistics for the study's tables: the spread over seeds, the bootstrap of a difference between two methods,
the correction for many comparisons, and the difference a number of seeds could detect.

A difference between a method A and the reference R is resampled the way it was produced (DESIGN.md, "Study
principles"). Each resample draws A's seeds with replacement, R's seeds with replacement, and the evaluation
clusters (an image with all its captions or questions; a VALSE entry, within its piece) with replacement, the same
clusters for A and R, so that the comparison stays paired by item. Its statistic is the mean over the drawn seeds
and clusters. A study affords 2 to 5 seeds, too few for a plain bootstrap (2 seeds give half the variance and no
tails), so the resamples are calibrated before they are read:
- their spread is set to the unbiased variance of the difference: the seeds' spread (each method's per-seed metrics,
  their item noise included) plus the items' share that the seeds cannot show (the clusters' variance of the
  seeds' mean difference, less the seeds' own item noise);
- their normal scores are mapped onto a t distribution whose degrees of freedom combine the seeds' and the
  clusters' (Welch-Satterthwaite): 2 seeds must not pass for 20. With many seeds or item-dominated noise the map
  does nothing.
The interval is the central LEVEL percentile interval of the calibrated resamples; the p-value is the two-sided share
of them on the other side of 0 (with the usual +1, so that it is never 0). Simulated null tables (tests/evaluation/
test_stats.py) keep the family-wise rate within alpha with 2 and 3 seeds. With one seed on either side the seeds
cannot be resampled: the interval covers items only (`Comparison.item_only`), and reports say so.

A table of many cells is one family: `adjust` corrects its p-values (Holm by default, Benjamini-Hochberg, or none),
and a cell is marked when its adjusted p-value is at most alpha and its interval excludes 0.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from evaluation.core.defaults import ADJUSTMENTS, ALPHA
from evaluation.core.items import ItemScores

RESAMPLES = 10_000  # at least; a family of m cells gets max(RESAMPLES, 4 m / alpha) (see `resamples_for`)
LEVEL = 1 - ALPHA
POWER = 0.8
ADJUSTMENT_NAMES = {"holm": "Holm's step-down correction", "bh": "the Benjamini-Hochberg false discovery rate",
                    "none": "no correction"}
CELLS_PER_CHUNK = 4_000_000  # resamples x clusters drawn at once


def level_text(level: float = LEVEL) -> str:
    """An interval's level as the reports print it, `95 %`."""
    return f"{100 * level:g} %"


def resamples_text(resamples: int = RESAMPLES) -> str:
    """`10,000 resamples`."""
    return f"{resamples:,} resamples"


def resamples_for(family: int, alpha: float = ALPHA) -> int:
    """Resamples enough for a family of `family` tests: the smallest p-value they can give, 2 / (B + 1), stays
    below half the first Holm threshold alpha / family."""
    return max(RESAMPLES, math.ceil(4 * max(family, 1) / alpha))


def mean_sd(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation over seeds (None for a single seed)."""
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), (float(array.std(ddof=1)) if len(array) > 1 else None)


def percentile_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The central `level` percentile interval of bootstrap values."""
    low, high = np.percentile(values, [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)


@dataclass(frozen=True)
class Interval:
    """A difference (percentage points) and its bootstrap interval."""

    delta: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    @property
    def marked(self) -> bool:
        """A single comparison is called a difference when its interval excludes 0."""
        return self.excludes_zero

    @property
    def item_only(self) -> bool:
        return False


@dataclass(frozen=True)
class Comparison(Interval):
    """A method's difference from the reference with its interval and p-values (see the module doc)."""

    p: float = 1.0  # two-sided, from the resamples
    seeds: tuple[int, int] = (1, 1)  # the method's and the reference's
    df: float = math.inf  # degrees of freedom of the t map (inf: none)
    item_variance: float = 0.0  # the variance of the difference that the items make (the seeds-needed table)
    clusters: int = 0  # evaluation clusters resampled
    p_adjusted: float | None = None  # after the family's correction (None: not corrected)
    alpha: float = ALPHA

    @property
    def item_only(self) -> bool:
        """True when one side has a single seed: the interval covers the evaluation items only."""
        return min(self.seeds) < 2

    @property
    def marked(self) -> bool:
        """A difference the table calls one: its (adjusted) p-value at most alpha and its interval off 0."""
        p = self.p if self.p_adjusted is None else self.p_adjusted
        return self.excludes_zero and p <= self.alpha


@dataclass(frozen=True)
class Design:
    """How the items of a metric are resampled: clusters (an image and its items), each within its stratum."""

    cluster: np.ndarray  # [items] cluster index
    sizes: np.ndarray  # [clusters] items per cluster
    strata: tuple[np.ndarray, ...]  # the cluster indices of each stratum

    @classmethod
    def of(cls, items: ItemScores) -> "Design":
        n = len(items.ids)
        strata = items.strata if items.strata is not None else np.zeros(n, dtype=np.int64)
        keys = items.clusters if items.clusters is not None else np.arange(n)
        pairs = list(zip(np.asarray(strata).tolist(), np.asarray(keys).tolist()))
        index: dict[tuple, int] = {}
        cluster = np.fromiter((index.setdefault(p, len(index)) for p in pairs), dtype=np.int64, count=n)
        stratum_of = np.empty(len(index), dtype=object)
        for (s, _), k in index.items():
            stratum_of[k] = s
        groups = tuple(np.flatnonzero(stratum_of == s) for s in dict.fromkeys(stratum_of.tolist()))
        return cls(cluster, np.bincount(cluster, minlength=len(index)).astype(np.float64), groups)

    def sums(self, runs: Sequence[ItemScores]) -> np.ndarray:
        """[runs, clusters] each run's sum of item values per cluster."""
        return np.stack([np.bincount(self.cluster, weights=r.values, minlength=len(self.sizes)) for r in runs])

    def metric(self, sums: np.ndarray) -> np.ndarray:
        """100 x the mean over strata of each stratum's item mean, for each row of cluster sums."""
        return 100.0 * np.mean([sums[..., g].sum(-1) / self.sizes[g].sum() for g in self.strata], axis=0)

    def linear_variance(self, sums: np.ndarray) -> float:
        """The variance of the metric of per-cluster sums under cluster resampling within strata, to first order
        (the stratified, clustered variance of a mean)."""
        total = 0.0
        for group in self.strata:
            n = self.sizes[group].sum()
            residual = sums[group] - self.sizes[group] * sums[group].sum() / n
            total += float((residual ** 2).sum()) / (n * n)
        return (100.0 / len(self.strata)) ** 2 * total

    def noise_variance(self, runs: np.ndarray) -> float:
        """The item noise of a method's seed mean: each seed's deviation from the method's mean, per item, as its
        clusters' variance (unbiased over seeds), divided by the seeds' count squared; 0 for one seed."""
        n = len(runs)
        if n < 2:
            return 0.0
        mean = runs.mean(0)
        return sum(self.linear_variance(row - mean) for row in runs) * n / (n - 1) / (n * n)

    def resampled(self, a: np.ndarray, r: np.ndarray, rng: np.random.Generator, count: int) -> np.ndarray:
        """`count` resampled differences: seeds of each side drawn with replacement (rows of `a` and `r`),
        clusters drawn with replacement within each stratum, shared by both sides."""
        out = []
        per_chunk = max(1, CELLS_PER_CHUNK // len(self.sizes))
        for start in range(0, count, per_chunk):
            b = min(per_chunk, count - start)
            wa = rng.multinomial(len(a), np.full(len(a), 1 / len(a)), size=b) / len(a)
            wr = rng.multinomial(len(r), np.full(len(r), 1 / len(r)), size=b) / len(r)
            diff = wa @ a - wr @ r  # [b, clusters]: the drawn seeds' mean cluster sums, method minus reference
            ratios = []
            for group in self.strata:
                drawn = group[rng.integers(0, len(group), size=(b, len(group)))]
                ratios.append(np.take_along_axis(diff, drawn, axis=1).sum(1) / self.sizes[drawn].sum(1))
            out.append(100.0 * np.mean(ratios, axis=0))
        return np.concatenate(out)


def _inflated(sums: np.ndarray) -> np.ndarray:
    """Seed deviations scaled by sqrt(n / (n - 1)): the resampled mean of n seeds then has the unbiased variance."""
    n = len(sums)
    if n < 2:
        return sums
    mean = sums.mean(0)
    return mean + (sums - mean) * math.sqrt(n / (n - 1))


def _seed_variance(metrics: np.ndarray) -> tuple[float, float]:
    """(variance of the seed mean, its degrees of freedom) of one side's per-seed metrics; (0, inf) for one seed."""
    n = len(metrics)
    if n < 2:
        return 0.0, math.inf
    return float(metrics.var(ddof=1)) / n, float(n - 1)


def satterthwaite(parts: Sequence[tuple[float, float]]) -> float:
    """Degrees of freedom of a sum of independent variance estimates given as (variance, df)."""
    total = sum(v for v, _ in parts)
    denominator = sum(v * v / df for v, df in parts if v > 0 and math.isfinite(df))
    return total * total / denominator if denominator > 0 else math.inf


def _t_mapped(values: np.ndarray, centre: float, df: float, sd: float | None = None) -> np.ndarray:
    """Resamples mapped onto a t distribution of `df` degrees of freedom around `centre`, with the resamples' own
    spread or `sd` (their normal scores keep the resamples' order)."""
    from scipy import stats

    spread = float(values.std())
    if spread == 0:
        return centre + (values - values.mean())
    z = (values - values.mean()) / spread
    scale = spread if sd is None else sd
    if not math.isfinite(df):
        return centre + scale * z
    u = np.clip(stats.norm.cdf(z), 1e-15, 1 - 1e-15)
    return centre + scale * stats.t.ppf(u, df)


def _two_sided_p(values: np.ndarray) -> float:
    below, above = int((values <= 0).sum()), int((values >= 0).sum())
    return min(1.0, 2 * (min(below, above) + 1) / (len(values) + 1))


def compare(runs: Sequence[ItemScores], reference: Sequence[ItemScores], resamples: int = RESAMPLES,
            seed: int = 0, level: float = LEVEL) -> Comparison | None:
    """The method's mean over its seeds minus the reference's, with the bootstrap of the module doc; None when
    the runs were not all scored on the same items."""
    every = [*runs, *reference]
    if not runs or not reference or not every[0].ids or any(r.ids != every[0].ids for r in every):
        return None
    design = Design.of(every[0])
    a, r = design.sums(runs), design.sums(reference)
    per_seed_a, per_seed_r = design.metric(a), design.metric(r)
    delta = float(per_seed_a.mean() - per_seed_r.mean())
    diffs = design.resampled(_inflated(a), _inflated(r), np.random.default_rng(seed), resamples)
    seed_parts = [_seed_variance(per_seed_a), _seed_variance(per_seed_r)]
    # the items' share: the clusters' variance of the seeds' mean difference, less the seeds' own item noise (already
    # in their spread), so that it adds degrees of freedom only for what the seeds cannot show
    noise = design.noise_variance(a) + design.noise_variance(r)
    item_var = max(design.linear_variance(a.mean(0) - r.mean(0)) - noise, 0.0)
    df = satterthwaite([*seed_parts, (item_var, float(max(len(design.sizes) - len(design.strata), 1)))])
    total = sum(v for v, _ in seed_parts) + item_var  # the seeds' spread already holds their own item noise
    mapped = _t_mapped(diffs, delta, df, math.sqrt(total) if total > 0 else None)
    low, high = percentile_interval(mapped, level)
    return Comparison(delta, low, high, p=_two_sided_p(mapped), seeds=(len(runs), len(reference)), df=df,
                      item_variance=item_var, clusters=len(design.sizes), alpha=round(1 - level, 12))


def paired_bootstrap(run: ItemScores, reference: ItemScores, resamples: int = RESAMPLES, seed: int = 0,
                     level: float = LEVEL) -> Comparison | None:
    """One model against another on the same items (clusters resampled; no seeds): `compare` of one run each."""
    return compare([run], [reference], resamples, seed, level)


def adjust(p_values: Sequence[float], method: str = "holm") -> list[float]:
    """The family's adjusted p-values: Holm's step-down (family-wise error), Benjamini-Hochberg (false
    discovery rate) or none; in the order given."""
    if method not in ADJUSTMENTS:
        raise ValueError(f"adjustment {method!r}; valid: {', '.join(ADJUSTMENTS)}")
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    if m == 0 or method == "none":
        return p.tolist()
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    if method == "holm":
        steps = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * ranked))
    else:
        steps = np.minimum.accumulate(np.minimum(1.0, m / np.arange(1, m + 1) * ranked)[::-1])[::-1]
    out = np.empty(m)
    out[order] = steps
    return out.tolist()


def adjusted(comparisons: Sequence[Comparison], method: str = "holm", alpha: float = ALPHA) -> list[Comparison]:
    """The comparisons of one family with their adjusted p-values and the family's alpha."""
    corrected = adjust([c.p for c in comparisons], method)
    return [replace(c, p_adjusted=q, alpha=alpha) for c, q in zip(comparisons, corrected)]


def detectable(seed_sd: float, item_var: float, seeds: int, alpha: float = ALPHA, power: float = POWER,
               item_df: float = math.inf) -> float:
    """The smallest difference two methods of `seeds` seeds each detect with probability `power` in a two-sided
    test at `alpha`, given the seed SD of one run's metric and the items' variance of the difference: a t
    approximation with Welch-Satterthwaite degrees of freedom (seeds: 2 (n - 1); items: `item_df`)."""
    from scipy import stats

    seed_var = 2 * seed_sd * seed_sd / seeds
    df = satterthwaite([(seed_var, 2.0 * (seeds - 1)), (item_var, item_df)])
    df = df if math.isfinite(df) else 1e9
    return float((stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)) * math.sqrt(seed_var + item_var))


def bootstrap_interval(items: ItemScores, resamples: int = RESAMPLES, seed: int = 0,
                       level: float = LEVEL) -> tuple[float, float] | None:
    """The percentile interval of one run's metric (in percent, as `ItemScores.metric`), resampling its clusters
    with replacement (within strata); None without items."""
    if not items.ids:
        return None
    design = Design.of(items)
    sums = design.sums([items])
    zero = np.zeros_like(sums)
    return percentile_interval(design.resampled(sums, zero, np.random.default_rng(seed), resamples), level)
