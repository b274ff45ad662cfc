"""The POS histogram chart: reproducible bytes, nothing drawn without classes."""
from __future__ import annotations

from shards.histogram import plot_histogram

HIST = {"word": {"NOUN": 10, "DET": 7, "ADJ": 7, "X": 0}, "wordpiece": {"NOUN": 12, "DET": 7, "ADJ": 9, "X": 0}}


def test_same_counts_same_png(tmp_path):
    first = plot_histogram(HIST, tmp_path / "a" / "pos_histogram.png", title="t")
    second = plot_histogram(dict(HIST), tmp_path / "b.png", title="t")
    assert first is not None and second is not None
    assert first.read_bytes() == second.read_bytes() and first.stat().st_size > 1000
    assert not list(tmp_path.glob("**/.*.tmp-*"))  # written through a temporary name


def test_no_classes_no_chart(tmp_path):
    assert plot_histogram({}, tmp_path / "h.png") is None
    assert plot_histogram({"word": {}, "wordpiece": {}}, tmp_path / "h.png") is None
    assert not (tmp_path / "h.png").exists()
