"""Report figures: loss curves per method, the POS histogram of the training shards, the forest plot of the
differences from the reference, and a score summary.

The drawing of loss curves and of the histogram lives with their owners (`trainer.engine.plots`,
`shards.histogram`); this module gathers the report's data for them and draws the summary.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from evaluation.report.study_tables import Method
from evaluation.report.tables import Table
from toolbox.figures import pyplot, save_figure
from shards.histogram import plot_histogram
from trainer.engine.plots import LOSSES, plot_loss_curves

log = logging.getLogger(__name__)


def method_curves(methods: Sequence[Method]) -> dict[str, list[dict[str, float]]]:
    """Each method's training losses, averaged over its seeds step by step (steps all seeds logged)."""
    curves = {}
    for method in methods:
        per_seed = [run.step_records() for run in method.runs]
        steps = sorted(set.intersection(*(set(s) for s in per_seed))) if per_seed else []
        curves[method.label] = [
            {"step": step} | {key: sum(float(s[step].get(key, 0.0)) for s in per_seed) / len(per_seed)
                              for key in LOSSES}
            for step in steps]
    return curves


def plot_curves(curves: dict[str, list[dict[str, float]]], loss: str, out: Path, *also: Path) -> Path | None:
    """One loss against step, one line per method, log scale; None without data."""
    return plot_loss_curves(curves, out, "", (loss,), *also)


def plot_pos_histogram(hist: object, out: Path, title: str = "", *also: Path) -> Path | None:
    """The UPOS bar chart of a shard output's POS histogram (its pos_histogram.json, read); None when it is not
    one."""
    if not isinstance(hist, dict):
        log.warning("%s: not a POS histogram", title or out)
        return None
    return plot_histogram(hist, out, title or "UPOS counts of the training shards", *also)


def plot_summary(labels: Sequence[str], rows: Sequence[Mapping[str, tuple[float, float | None] | None]], out: Path,
                 *also: Path) -> Path | None:
    """Grouped bars, one group per method, one bar per headline number of its row (mean over seeds, the seed
    spread as an error bar: ± one standard deviation); numbers nobody has are left out; None when there are none."""
    series = {k: [row[k] for row in rows] for k in (rows[0] if rows else {})}
    series = {k: v for k, v in series.items() if any(x is not None for x in v)}
    if not series:
        return None
    fig, ax = pyplot().subplots(figsize=(max(6, 1.2 * len(labels) + 2), 4))
    width = 0.8 / len(series)
    for j, (name, values) in enumerate(series.items()):
        xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(labels))]
        means = [v[0] if v is not None else 0 for v in values]
        spreads = [v[1] if v is not None and v[1] is not None else 0 for v in values]
        ax.bar(xs, means, width=width, label=name, yerr=spreads, capsize=2, error_kw={"elinewidth": 0.8})
    ax.set_xticks(range(len(labels)), list(labels), rotation=30, ha="right")
    ax.set_ylabel("%  (error bars: ± 1 SD over seeds)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, ncol=len(series), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, out, *also)


def plot_forest(table: Table, out: Path, *also: Path) -> Path | None:
    """The figure people look at first: per metric (a panel), each method's difference from the reference with
    its interval, in table order; a filled dot where the family calls it a difference, a hollow one where it
    does not, a square for an item-only comparison (a side with one seed). None without differences."""
    panels = [(j, column) for j, column in enumerate(table.columns)
              if any(r.cells[j].diff is not None for r in table.rows)]
    rows = [r for r in table.rows if not r.reference]
    if not panels or not rows:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels) + 1.8, 0.32 * len(rows) + 1.4),
                             sharey=True, squeeze=False)
    ys = list(range(len(rows)))[::-1]
    for ax, (j, column) in zip(axes[0], panels):
        for y, row in zip(ys, rows):
            d = row.cells[j].diff
            if d is None:
                continue
            colour = "black" if d.marked else "grey"
            ax.plot([d.low, d.high], [y, y], color=colour, linewidth=1.2)
            ax.plot(d.delta, y, marker="s" if d.item_only else "o", color=colour,
                    markerfacecolor=colour if d.marked else "white", markersize=5)
        ax.axvline(0.0, color="tab:red", linewidth=0.8)
        ax.set_title(column, fontsize=9)
        ax.grid(True, axis="x", alpha=0.3)
        ax.tick_params(labelsize=8)
    axes[0][0].set_yticks(ys, [r.label for r in rows], fontsize=8)
    fig.supxlabel("difference from the reference (points)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out, *also)
