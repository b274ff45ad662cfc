"""A committed study's report is re-derivable: rebuilt from the evidence committed beside it (per-item scores and
run records), each of its tables comes out equal, byte for byte."""
from __future__ import annotations

from pathlib import Path

import pytest

from evaluation.report.build import report_tables
from evaluation.report.evidence import load_evidence
from evaluation.report.tables import to_csv, to_latex, to_markdown

DOCS = Path(__file__).resolve().parents[2] / "docs"
# each committed study with evidence: its folder, whether its report is in the thesis's full layout, the tables rebuilt
COMMITTED = [("study-demo-3seeds", False, ("headline", "table_4_1"))]


@pytest.mark.parametrize("folder,full,keys", COMMITTED)
def test_committed_tables_rebuild_from_their_evidence(folder: str, full: bool, keys: tuple[str, ...]) -> None:
    runs, _ = load_evidence(DOCS / folder / "evidence")
    tables = {t.key: t for t in report_tables(runs, full_layout=full, only=set(keys)).tables}
    report = DOCS / folder / "report"
    for key in keys:
        for suffix, text in ((".md", to_markdown), (".csv", to_csv), (".tex", to_latex)):
            assert text(tables[key]) == (report / f"{key}{suffix}").read_text(encoding="utf-8"), f"{key}{suffix}"
