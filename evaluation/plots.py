"""Report figures (matplotlib Agg): loss curves overlaid per run, the POS histogram, a score summary."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from evaluation.runs import RunInfo, read_losses
from shards.atomic import atomic_path

log = logging.getLogger(__name__)
LOSS_KEYS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("MLM", ("mlm", "loss_mlm")), ("ITC", ("itc", "loss_itc")), ("ITM", ("itm", "loss_itm")))


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: Path) -> Path:
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    _plt().close(fig)
    log.info("wrote %s", out)
    return out


def _value(record: dict[str, Any], keys: tuple[str, ...]) -> float | None:
    for k in keys:
        if isinstance(record.get(k), (int, float)):
            return float(record[k])
    return None


def plot_losses(runs: list[RunInfo], out: Path) -> Path | None:
    """MLM / ITC / ITM training losses against step, one line per run, log scale; None without data."""
    curves = {r.label if sum(x.label == r.label for x in runs) == 1 else r.name: read_losses(r.path) for r in runs}
    curves = {k: v for k, v in curves.items() if v}
    if not curves:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, (title, keys) in zip(axes, LOSS_KEYS):
        for label, records in curves.items():
            pts = [(r.get("step", i), _value(r, keys)) for i, r in enumerate(records)]
            pts = [(s, v) for s, v in pts if v is not None and v > 0]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], label=label, linewidth=1.2)
        ax.set_yscale("log")
        ax.set_title(f"{title} loss")
        ax.set_xlabel("step")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("loss (log scale)")
    handles, labels = axes[1].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="center right", fontsize=8)
        fig.tight_layout(rect=(0, 0, 0.88, 1))
    return _save(fig, out)


def plot_pos_histogram(hist_path: Path, out: Path, title: str = "") -> Path | None:
    """Bar chart of UPOS counts (words and wordpieces) from a shard output's pos_histogram.json."""
    try:
        hist = json.loads(hist_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        log.warning("%s: unreadable (%s)", hist_path, err)
        return None
    word = hist.get("word") or {}
    piece = hist.get("wordpiece") or {}
    names = [n for n, c in sorted(word.items(), key=lambda kv: (-kv[1], kv[0])) if c or piece.get(n)]
    if not names:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 4.5))
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], [word.get(n, 0) for n in names], width=0.4, label="words")
    ax.bar([i + 0.2 for i in x], [piece.get(n, 0) for n in names], width=0.4, label="wordpieces")
    ax.set_xticks(list(x), names, rotation=45, ha="right")
    ax.set_ylabel("count")
    ax.set_title(title or "UPOS counts of the training shards")
    ax.legend()
    fig.tight_layout()
    return _save(fig, out)


def plot_summary(runs: list[RunInfo], out: Path) -> Path | None:
    """Grouped bars per run: retrieval mean recall, VALSE average acc_r, VQA overall accuracy."""
    from evaluation.report import headline

    rows = [headline(r) for r in runs]
    series = {k: [row[k] for row in rows] for k in (rows[0] if rows else {})}
    series = {k: v for k, v in series.items() if any(x is not None for x in v)}
    if not series:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(runs) + 2), 4))
    width = 0.8 / len(series)
    for j, (name, values) in enumerate(series.items()):
        xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(runs))]
        ax.bar(xs, [v if v is not None else 0 for v in values], width=width, label=name)
    ax.set_xticks(range(len(runs)), [r.label for r in runs], rotation=30, ha="right")
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, ncol=len(series), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, out)
