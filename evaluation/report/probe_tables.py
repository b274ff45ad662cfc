"""The probe's part of the report: the POS-swap profile (one row per method, one column per studied class) as
pairwise accuracy and as probability drop, with its heatmap; replace the visual words / the others; the seed's
five templates; the visual-word count curve and its figure. Cells are means over seeds with their difference from
the reference row, each table one family, as every table of the report (`study_tables.StudyStats`).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from evaluation.probe.templates import COUNT_TEMPLATE, COUNTS, TEMPLATES
from evaluation.report.study_tables import Method, StudyStats, summary_keys
from evaluation.report.tables import Table
from toolbox.figures import pyplot, save_figure
from shards.upos import STUDIED_CLASSES

log = logging.getLogger(__name__)
CHANCE = 50.0  # pairwise accuracy of a model that does not read the class


def _specs() -> list[tuple[str, str, list[str], list[str]]]:
    """(file stem, title, metric keys, column names) of each probe table."""
    classes = list(STUDIED_CLASSES)
    visual = ("noun_swap", "nouns_only", "shuffle")
    return [
        ("probe_pos_swap", "POS-swap profile: ITM pairwise accuracy (%), the original caption against the foil that "
         "replaces every word of the class (chance 50)", [f"probe/swap_{c}:original_wins" for c in classes], classes),
        ("probe_pos_drop", "POS-swap profile: mean drop of the ITM match probability from the original caption to "
         "the foil (points)", [f"probe/swap_{c}:prob_drop" for c in classes], classes),
        ("probe_visual", "Replace the visual words (noun_swap) or the others (nouns_only), and shuffle: mean ITM "
         "match probability (%) and pairwise accuracy of the original (%)",
         ["probe/original"] + [f"probe/{v}" for v in visual] + [f"probe/{v}:original_wins" for v in visual],
         ["p(original)"] + [f"p({v})" for v in visual] + [f"acc vs {v}" for v in visual]),
        ("probe_templates", "The seed's templates filled with the caption's nouns: mean ITM match probability (%)",
         ["probe/original"] + [f"probe/tpl_{t}" for t in TEMPLATES], ["Original"] + list(TEMPLATES)),
        ("probe_counts", f"Visual-word count curve: k nouns of the image's reference captions in the "
         f"{COUNT_TEMPLATE} template, mean ITM match probability (%)",
         [f"probe/count_{k}" for k in COUNTS], [f"k={k}" for k in COUNTS]),
    ]


def probe_tables(methods: Sequence[Method], stats: StudyStats) -> list[Table]:
    """The probe tables whose variants at least one run was evaluated on."""
    present = {k for m in methods for r in m.runs for k in summary_keys(r) if k.startswith("probe/")}
    rows = [(m, m.group, m.label) for m in methods]
    return [stats.table(key, title, columns, rows, keys) for key, title, keys, columns in _specs()
            if any(k.split(":")[0] in present for k in keys)]


def plot_profile_heatmap(table: Table, out: Path, *also: Path) -> Path | None:
    """Methods x classes, coloured by pairwise accuracy (red: the model reads the class; white: chance; blue:
    it prefers the foil), each cell labelled; None without data."""
    values = [[c.value for c in row.cells] for row in table.rows]
    if not any(v is not None for row in values for v in row):
        return None
    import numpy as np

    grid = np.array([[np.nan if v is None else v for v in row] for row in values], dtype=float)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(table.columns), 1.2 + 0.45 * len(table.rows)))
    image = ax.imshow(grid, cmap="RdBu_r", vmin=0.0, vmax=100.0, aspect="auto")  # white at chance, blue below
    for (i, j), v in np.ndenumerate(grid):
        if v == v:
            ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=8,
                    color="white" if abs(v - CHANCE) > 35 else "black")
    ax.set_xticks(range(len(table.columns)), table.columns, fontsize=8)
    ax.set_yticks(range(len(table.rows)), [r.label for r in table.rows], fontsize=8)
    fig.colorbar(image, ax=ax, label="original beats foil (%)")
    fig.tight_layout()
    return save_figure(fig, out, *also)


def plot_count_curve(table: Table, out: Path, *also: Path) -> Path | None:
    """Mean match probability against k, one line per method; None without data."""
    rows = [(r.label, [c.value for c in r.cells]) for r in table.rows if any(c.value is not None for c in r.cells)]
    if not rows:
        return None
    fig, ax = pyplot().subplots(figsize=(5, 3.5))
    for label, values in rows:
        points = [(k, v) for k, v in zip(COUNTS, values) if v is not None]
        ax.plot([k for k, _ in points], [v for _, v in points], marker="o", label=label)
    ax.set_xlabel(f"visual words k in the {COUNT_TEMPLATE} template")
    ax.set_ylabel("mean ITM match probability (%)")
    ax.set_xticks(list(COUNTS))
    ax.set_ylim(0, 100)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out, *also)


FIGURES = {"probe_pos_swap": ("probe_profile", plot_profile_heatmap,
                              "POS-swap profile: pairwise accuracy per class (which parts of speech each model reads)"),
           "probe_counts": ("probe_counts", plot_count_curve, "Visual-word count curve (mean over seeds)")}


def probe_figures(tables: Sequence[Table], out: Path) -> list[tuple[str, str]]:
    """The heatmap and the count curve from their tables, as PNG and PDF; (caption, PNG name) pairs."""
    figures = []
    for table in tables:
        if table.key in FIGURES:
            stem, plot, caption = FIGURES[table.key]
            if plot(table, out / f"{stem}.png", out / f"{stem}.pdf"):
                figures.append((caption, f"{stem}.png"))
    return figures
