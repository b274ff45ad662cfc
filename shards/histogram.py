"""The POS histogram bar chart (`pos_histogram.png`): UPOS counts at word and wordpiece level."""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from toolbox.figures import pyplot, save_figure


def plot_histogram(hist: Mapping[str, Any], path: str | os.PathLike[str],
                   title: str = "UPOS counts (spaCy tagger)", *also: str | os.PathLike[str]) -> Path | None:
    """Bars of word and wordpiece counts per UPOS class, most frequent words first, written atomically to
    `path` (and to the `also` paths, e.g. a PDF); None when `hist` (the content of pos_histogram.json) has
    no classes."""
    word: Mapping[str, int] = hist.get("word") or {}
    piece: Mapping[str, int] = hist.get("wordpiece") or {}
    names = [name for name, _ in sorted(word.items(), key=lambda kv: -kv[1])]  # stable: ties keep file order
    if not names:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=100)
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], [word[n] for n in names], width=0.4, label="words")
    ax.bar([i + 0.2 for i in x], [piece.get(n, 0) for n in names], width=0.4, label="wordpieces")
    ax.set_xticks(list(x), names, rotation=45, ha="right")
    ax.set_ylabel("count")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path, *also)
