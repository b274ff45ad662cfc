"""A committed study's report is re-derivable: rebuilt from the evidence committed beside it (per-item scores and
run records), each of its tables comes out equal, byte for byte."""
from __future__ import annotations

from pathlib import Path

import pytest

from evaluation.report.build import report_tables
from evaluation.report.evidence import export_evidence, load_evidence, merge_evidence
from evaluation.report.tables import to_csv, to_latex, to_markdown
from toolbox.errors import UserError

DOCS = Path(__file__).resolve().parents[2] / "docs"
# each committed study with evidence: its folder, whether its report is in the thesis's full layout, the tables rebuilt
# (the two small ones stay in `make test-fast`; the bigger studies' rebuilds take several seconds each, so they run in
# `make test`)
COMMITTED = [("study-demo-3seeds", False, ("headline", "table_4_1")),
             pytest.param("study-rates-tiny", False, ("headline", "retrieval_itc"), marks=pytest.mark.slow),
             pytest.param("study-tiny-extensions", False, ("headline", "seeds_needed"), marks=pytest.mark.slow),
             pytest.param("study-tiny", True, ("table_4_1", "valse", "probe_pos_swap"), marks=pytest.mark.slow),
             ("probe-tiny", False, ("probe_pos_swap", "probe_visual"))]


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


def test_a_study_in_parts_merges_into_the_whole_studys_tables(tmp_path: Path) -> None:
    """`posmask study --seed-from` runs a study in parts (say, one seed per session); `report --from-items A,B`
    merges their evidence. Split by seed, the committed 3-seed study rebuilds its tables byte for byte."""
    runs, histograms = load_evidence(DOCS / "study-demo-3seeds" / "evidence")
    first = [r for r in runs if r.name.endswith("-seed1")]
    assert 0 < len(first) < len(runs)
    parts = [export_evidence([r for r in runs if r not in first], histograms, tmp_path / "seeds2-3"),
             export_evidence(first, histograms, tmp_path / "seed1")]
    merged, merged_histograms = merge_evidence(parts)
    assert sorted(r.name for r in merged) == sorted(r.name for r in runs) and merged_histograms == histograms
    keys = {"headline", "table_4_1"}
    tables = {t.key: t for t in report_tables(merged, only=keys).tables}
    for key in keys:
        assert to_markdown(tables[key]) == (DOCS / "study-demo-3seeds" / "report" / f"{key}.md").read_text(
            encoding="utf-8"), key


def test_merging_refuses_a_run_in_two_parts(tmp_path: Path) -> None:
    runs, histograms = load_evidence(DOCS / "study-demo-3seeds" / "evidence")
    a = export_evidence(runs[:2], histograms, tmp_path / "a")
    b = export_evidence(runs[1:3], histograms, tmp_path / "b")
    with pytest.raises(UserError, match=f"run {runs[1].name!r} is in both"):
        merge_evidence([a, b])
