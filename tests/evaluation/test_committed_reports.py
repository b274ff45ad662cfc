"""The committed studies' reports are re-derivable: rebuilt from the evidence committed beside them (per-item scores
and run records), a table comes out equal, byte for byte."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from evaluation import cli_report

DOCS = Path(__file__).resolve().parents[2] / "docs"
# each committed study: its folder, the report's title and whether it is printed in the thesis's full layout
COMMITTED = [("study-tiny", "posmask study: thesis", True, "table_4_1"),
             ("study-tiny-extensions", "posmask study: extensions", False, "retrieval"),
             ("study-tiny-rates", "posmask study: rates", False, "headline"),
             ("probe-tiny", "posmask report", False, "probe_pos_swap")]


@pytest.mark.parametrize("folder,title,full,table", COMMITTED)
def test_a_committed_table_rebuilds_from_its_evidence(folder: str, title: str, full: bool, table: str,
                                                      tmp_path: Path) -> None:
    evidence, report = DOCS / folder / "evidence", DOCS / folder / "report"
    args = argparse.Namespace(runs=None, from_items=str(evidence), out=str(tmp_path), title=title, evidence=None,
                              reference="random 0.15", with_thesis=False, adjust="holm", alpha=0.05, full_layout=full)
    assert cli_report.run(args) == 0
    for suffix in (".md", ".csv", ".tex"):
        assert (tmp_path / f"{table}{suffix}").read_bytes() == (report / f"{table}{suffix}").read_bytes()
