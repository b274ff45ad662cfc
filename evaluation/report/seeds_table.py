"""How many seeds a difference needs: from the observed seed spread of each headline metric and the items' share
of the variance of a difference, the smallest difference that 2, 3, 5 and 10 seeds per method detect, for one
comparison and for the first mark of a corrected family (evaluation.core.stats.detectable)."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from evaluation.core.stats import ADJUSTMENT_NAMES, POWER, detectable
from evaluation.report.study_tables import Method, StudyStats, metric_value
from evaluation.report.tables import Cell, Row, Table

SEEDS: tuple[int, ...] = (2, 3, 5, 10)


def pooled_seed_sd(methods: Sequence[Method], key: str) -> float | None:
    """The seed SD of one run's metric, pooled over the methods with at least two seeds; None without any."""
    squares, dof = 0.0, 0
    for m in methods:
        values = [v for v in (metric_value(r, key) for r in m.runs) if v is not None]
        if len(values) > 1:
            squares += float(np.var(values, ddof=1)) * (len(values) - 1)
            dof += len(values) - 1
    return math.sqrt(squares / dof) if dof else None


def seeds_table(methods: Sequence[Method], stats: StudyStats, headline: Table,
                metrics: Mapping[str, str]) -> Table | None:
    """Rows per headline metric: detectable differences for one comparison and for the first mark of a family
    the size of `headline`'s; None when no method has two seeds (no seed spread to go by)."""
    family = len(headline.comparisons)
    alpha = stats.family.alpha
    rows = []
    for j, (name, key) in enumerate(metrics.items()):
        seed_sd = pooled_seed_sd(methods, key)
        found = [r.cells[j].diff for r in headline.rows if r.cells[j].diff is not None]
        if seed_sd is None or not found:
            continue
        item_var = float(np.median([d.item_variance for d in found]))
        clusters = float(np.median([d.clusters for d in found]))
        first = alpha / family if stats.family.adjust != "none" else alpha
        for label, level in ((f"one comparison (alpha {alpha:g})", alpha),
                             (f"first mark of a family of {family} (alpha / {family})", first)):
            sizes = [detectable(seed_sd, item_var, n, level, POWER, max(clusters - 1, 1)) for n in SEEDS]
            rows.append(Row(name, label, [Cell(seed_sd), Cell(math.sqrt(item_var))] + [Cell(x) for x in sizes]))
    if not rows:
        return None
    notes = [f"The smallest difference (points) that two methods of n seeds each detect with {POWER:.0%} power in a "
             "two-sided test: (t(1 - level / 2) + t(power)) x sqrt(2 seed SD^2 / n + item SE^2), the seed SD pooled "
             "over this study's methods with two or more seeds, the item SE the median over the headline family's "
             "differences of the share of their variance that the evaluation items make, degrees of freedom by "
             "Welch-Satterthwaite.",
             f"The second row of each metric is the level the first of {family} differences needs under "
             f"{ADJUSTMENT_NAMES[stats.family.adjust]}, the family of the headline table; a study that tests fewer "
             "differences needs less."]
    return Table("seeds_needed", "How many seeds a difference needs: the smallest detectable difference per metric",
                 ["seed SD", "item SE"] + [f"{n} seeds" for n in SEEDS], rows, notes)
