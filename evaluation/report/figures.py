"""Report figures: loss curves per method, the POS histogram of the training shards, a score summary.

The drawing of loss curves and of the histogram lives with their owners (`trainer.engine.plots`,
`shards.histogram`); this module gathers the report's data for them and draws the summary.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from evaluation.report.study_tables import Method
from toolbox.figures import pyplot, save_figure
from shards.histogram import plot_histogram
from trainer.engine.metrics import read_step_records
from trainer.engine.plots import LOSSES, plot_loss_curves
from trainer.run_dir import RunDir

log = logging.getLogger(__name__)


def method_curves(methods: Sequence[Method]) -> dict[str, list[dict[str, float]]]:
    """Each method's training losses, averaged over its seeds step by step (steps all seeds logged)."""
    curves = {}
    for method in methods:
        per_seed = [read_step_records(RunDir(run.path).metrics) for run in method.runs]
        steps = sorted(set.intersection(*(set(s) for s in per_seed))) if per_seed else []
        curves[method.label] = [
            {"step": step} | {key: sum(float(s[step].get(key, 0.0)) for s in per_seed) / len(per_seed)
                              for key in LOSSES}
            for step in steps]
    return curves


def plot_curves(curves: dict[str, list[dict[str, float]]], loss: str, out: Path, *also: Path) -> Path | None:
    """One loss against step, one line per method, log scale; None without data."""
    return plot_loss_curves(curves, out, "", (loss,), *also)


def plot_pos_histogram(hist_path: Path, out: Path, title: str = "", *also: Path) -> Path | None:
    """The UPOS bar chart of a shard output's pos_histogram.json; None when it is unreadable or empty."""
    try:
        hist = json.loads(hist_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        log.warning("%s: unreadable (%s)", hist_path, err)
        return None
    if not isinstance(hist, dict):
        log.warning("%s: not a POS histogram", hist_path)
        return None
    return plot_histogram(hist, out, title or "UPOS counts of the training shards", *also)


def plot_summary(labels: Sequence[str], rows: Sequence[Mapping[str, float | None]], out: Path,
                 *also: Path) -> Path | None:
    """Grouped bars, one group per run label, one bar per headline number of its row (e.g. retrieval mean
    recall, VALSE acc_r, VQA overall); numbers nobody has are left out; None when there are none."""
    series = {k: [row[k] for row in rows] for k in (rows[0] if rows else {})}
    series = {k: v for k, v in series.items() if any(x is not None for x in v)}
    if not series:
        return None
    fig, ax = pyplot().subplots(figsize=(max(6, 1.2 * len(labels) + 2), 4))
    width = 0.8 / len(series)
    for j, (name, values) in enumerate(series.items()):
        xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(labels))]
        ax.bar(xs, [v if v is not None else 0 for v in values], width=width, label=name)
    ax.set_xticks(range(len(labels)), list(labels), rotation=30, ha="right")
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, ncol=len(series), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, out, *also)
