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
COMMITTED = [("study-demo-3seeds", False, ("headline", "table_4_1")),
             ("study-rates-tiny", False, ("headline", "retrieval_itc"))]


@pytest.mark.parametrize("folder,full,keys", COMMITTED)
def test_committed_tables_rebuild_from_their_evidence(folder: str, full: bool, keys: tuple[str, ...]) -> None:
    runs, _ = load_evidence(DOCS / folder / "evidence")
    tables = {t.key: t for t in report_tables(runs, full_layout=full, only=set(keys)).tables}
    report = DOCS / folder / "report"
    for key in keys:
        for suffix, text in ((".md", to_markdown), (".csv", to_csv), (".tex", to_latex)):
            assert text(tables[key]) == (report / f"{key}{suffix}").read_text(encoding="utf-8"), f"{key}{suffix}"


def test_the_retrieval_table_names_its_zero_shot_protocol_and_the_published_ones() -> None:
    """Issue 22: the retrieval table says it scores the pre-trained model directly; with the thesis's numbers, their
    block says which protocol they follow; other tables carry no protocol note."""
    runs, _ = load_evidence(DOCS / "study-demo-3seeds" / "evidence")
    tables = {t.key: t for t in report_tables(runs, with_thesis=True, only={"table_4_1", "table_4_2"}).tables}
    retrieval, valse = to_markdown(tables["table_4_1"]), to_markdown(tables["table_4_2"])
    assert "Protocol: the pre-trained model scored directly" in retrieval
    assert "COCO-fine-tuned checkpoint (ALBEF issues #29, #74, #89)" in retrieval
    assert "Protocol: the thesis's own pre-trained models scored directly" in tables["table_4_1"].reference_block.title
    assert "Protocol" not in valse
