"""Loss curves: MLM, ITC and ITM loss against step on a log scale, one line per run (the project's one loss plot)."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from toolbox.figures import pyplot, save_figure
from trainer.engine.metrics import read_metrics

LOSSES: tuple[str, ...] = ("mlm", "itc", "itm")  # metrics.jsonl keys


def loss_points(records: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of one loss; records without a positive value (e.g. MLM off) are left out."""
    points = [(float(r.get("step", i)), float(r[key])) for i, r in enumerate(records)
              if isinstance(r.get(key), (int, float)) and r[key] > 0]
    return [s for s, _ in points], [v for _, v in points]


def plot_loss_curves(curves: Mapping[str, Sequence[Mapping[str, Any]]], out_path: str | os.PathLike[str],
                     title: str = "", losses: Sequence[str] = LOSSES, *also: str | os.PathLike[str]) -> Path | None:
    """One panel per loss in `losses`, one line per `{label: metrics records}` entry, written atomically to
    `out_path` (and to the `also` paths, e.g. a PDF); None when no curve has records."""
    curves = {label: records for label, records in curves.items() if records}
    if not curves:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(losses), figsize=(5 * len(losses) + (1.5 if len(curves) > 1 else 0), 4.2),
                             squeeze=False)
    axes = axes[0]
    for ax, key in zip(axes, losses):
        for label, records in curves.items():
            steps, values = loss_points(records, key)
            if steps:
                ax.plot(steps, values, label=label, linewidth=1.2)
        ax.set_yscale("log")
        ax.set_title(f"{key.upper()} loss")
        ax.set_xlabel("step")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("loss (log scale)")
    if title:
        fig.suptitle(title)
    if len(curves) > 1:
        handles, labels = axes[-1].get_legend_handles_labels()
        fig.legend(handles, labels, loc="center right", fontsize=8)
        fig.tight_layout(rect=(0, 0, 1 - 1.5 / (5 * len(losses) + 1.5), 1))
    else:
        fig.tight_layout()
    return save_figure(fig, out_path, *also)


def plot_losses(metrics_path: str | os.PathLike[str], out_path: str | os.PathLike[str],
                title: str = "") -> Path | None:
    """The loss plot of one run from its metrics.jsonl; None if there are no records yet."""
    return plot_loss_curves({title: read_metrics(metrics_path)}, out_path, title)
