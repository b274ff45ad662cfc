"""The committed studies' reports are re-derivable: rebuilt from the evidence committed beside them (per-item scores
and run records), a table comes out equal, byte for byte."""
from __future__ import annotations

from pathlib import Path

import pytest

from evaluation.report.build import report_tables
from evaluation.report.evidence import load_evidence
from evaluation.report.tables import to_csv, to_latex, to_markdown

DOCS = Path(__file__).resolve().parents[2] / "docs"
# each committed study: its folder, whether its report is in the thesis's full layout, and the table rebuilt
COMMITTED = [("study-tiny", True, "table_4_1"), ("study-tiny-extensions", False, "retrieval"),
             ("study-tiny-rates", False, "headline"), ("probe-tiny", False, "probe_pos_swap")]


@pytest.mark.parametrize("folder,full,key", COMMITTED)
def test_a_committed_table_rebuilds_from_its_evidence(folder: str, full: bool, key: str) -> None:
    runs, _ = load_evidence(DOCS / folder / "evidence")
    table = next(t for t in report_tables(runs, full_layout=full, only={key}).tables if t.key == key)
    report = DOCS / folder / "report"
    for suffix, text in ((".md", to_markdown), (".csv", to_csv), (".tex", to_latex)):
        assert text(table) == (report / f"{key}{suffix}").read_text(encoding="utf-8")
