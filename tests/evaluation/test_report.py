"""The report: thesis-layout and per-method tables with seed spreads and bootstrap intervals, figures and
index from fabricated run folders."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from evaluation import cli_report
from evaluation.core.runs import load_run
from toolbox.errors import UserError
from trainer.config import preset_config
from trainer.masking.masker import parse_mask_spec


def _run(root: Path, name: str, pos: str, ratio: float, score: float, shards: Path, albef: bool = False) -> Path:
    run = root / name
    (run / "eval").mkdir(parents=True)
    mask = parse_mask_spec(pos, None if pos == "none" else ratio)
    record = preset_config("tiny", mask=mask, albef=albef, shards=str(shards), run=str(run))
    (run / "run_config.json").write_text(json.dumps(record.to_dict()))
    (run / "metrics.jsonl").write_text("".join(
        json.dumps({"step": s, "mlm": 0.0 if pos == "none" else 5 / s, "itc": 3 / s, "itm": 0.7 / s ** 0.5}) + "\n"
        for s in range(1, 30)) + '{"step": 30, "ml')  # a torn last line is ignored
    m = {k: score for k in ("tr_r1", "tr_r5", "tr_r10", "ir_r1", "ir_r5", "ir_r10", "r_mean")}
    (run / "eval" / "retrieval.json").write_text(json.dumps({"metrics": m, "data": "retrieval.json"}))
    pieces = {"existence": {"status": "ok", "acc_r": score, "n_missing": 0},
              "color": {"status": "ok", "acc_r": score + 1, "n_missing": 2},
              "foil-it": {"status": "not run", "reason": "no image root for coco2014"}}
    (run / "eval" / "valse.json").write_text(json.dumps({
        "pieces": pieces, "not_run": ["foil-it"],
        "average": {"acc_r": score + 0.5, "p_c": 50, "p_f": 50, "acc": 50, "n_pieces": 2}}))
    (run / "eval" / "vqa.json").write_text(json.dumps({"metrics": {
        "overall": score, "per_answer_type": {"yes/no": score, "number": 1.0, "other": 2.0}}}))
    return run


def report_args(runs: list[Path], out: Path, **extra) -> argparse.Namespace:
    defaults = {"reference": "random 0.15", "with_thesis": False, "from_items": None, "evidence": None,
                "adjust": "holm", "alpha": 0.05, "full_layout": False}
    return argparse.Namespace(runs=[str(r) for r in runs] or None, out=str(out), title="t", **(defaults | extra))


def test_report_tables_and_figures(tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "pos_histogram.json").write_text(json.dumps({"word": {"NOUN": 10, "DET": 7, "X": 0},
                                                           "wordpiece": {"NOUN": 12, "DET": 7, "X": 0}}))
    runs = [_run(tmp_path, "tiny-none", "none", 0.0, 10.0, shards),
            _run(tmp_path, "tiny-DET-0.7", "DET", 0.7, 30.0, shards),
            _run(tmp_path, "tiny-NOUN-1.0", "NOUN", 1.0, 25.0, shards),
            _run(tmp_path, "tiny-NOUN-0.7", "NOUN", 0.7, 20.0, shards),
            _run(tmp_path, "tiny-random-0.15", "random", 0.15, 15.0, shards),
            _run(tmp_path, "tiny-random-0.15-albef", "random", 0.15, 16.0, shards, albef=True)]
    out = tmp_path / "report"
    assert cli_report.run(report_args(runs, out, with_thesis=True, full_layout=True)) == 0
    index = (out / "index.md").read_text()
    for stem in ("figure_4_1", "figure_4_2", "figure_4_3", "figure_4_4", "summary"):
        assert (out / f"{stem}.png").stat().st_size > 1000 and (out / f"{stem}.pdf").stat().st_size > 1000
        assert f"]({stem}.png)" in index
    retrieval = (out / "retrieval.md").read_text()
    order = [ln.split("|")[1].strip() for ln in retrieval.splitlines() if ln.startswith("| ")][1:]
    assert order == ["*Non-functional*", "NOUN 0.7", "NOUN 1.0", "*Functional*", "DET 0.7",
                     "*Baselines*", "random 0.15 (ref.)", "none", "ALBEF (random 0.15)"]
    assert "| DET 0.7 | 30.00 |" in retrieval
    valse = (out / "valse.md").read_text()
    assert "| Method | existence | color | Avg. |" in valse  # paper order, then unknown pieces
    table_4_1 = (out / "table_4_1.md").read_text()
    assert "| ALBEF | 16.00 |" in table_4_1 and "| Random Masking (ref.) | 15.00 |" in table_4_1
    assert "| VERB | – |" in table_4_1  # a thesis row the study lacks
    assert "Published in the thesis" in table_4_1 and "| ALBEF | 70.40 | 89.50 |" in table_4_1
    table_4_2 = [ln.split("|")[1].strip() for ln in (out / "table_4_2.md").read_text().splitlines()
                 if ln.startswith("| ")]
    assert table_4_2[1:3] == ["Random Masking (ref.)", "*Non-functional*"] and table_4_2[13] == "No Masking"
    table_4_4 = (out / "table_4_4.md").read_text()
    assert [ln.split("|")[1].strip() for ln in table_4_4.splitlines() if ln.startswith("| ")][1:4] == [
        "No Masking (0 %)", "NOUN (70 %)", "NOUN (100 %)"]
    assert "Yes/No | Number | Other | Overall" in (out / "vqa.md").read_text()
    tex = (out / "table_4_2.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and "Existence quantifiers" in tex
    header = (out / "table_4_1.csv").read_text().splitlines()[0]
    assert header.startswith("group,method,seeds,reference,TR r@1,TR r@1 sd,TR r@1 diff")
    assert "foil-it" in index  # not-run pieces are noted
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    cli_report.run(report_args(runs, out, with_thesis=True, full_layout=True))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first  # the same report, byte for byte


def test_report_intervals_from_per_item_scores(tmp_path):
    shards = tmp_path / "shards"
    better = [1] * 150 + [0] * 50   # R@1 75 % over 200 queries
    noise = [1] * 100 + [0] * 100   # 50 %
    runs = []
    for name, pos, hits in (("random", "random", noise), ("det-s1", "DET", better), ("det-s2", "DET", better),
                            ("noun", "NOUN", noise[::-1])):
        run = _run(tmp_path, name, pos, 0.15 if pos == "random" else 0.7, 100.0 * sum(hits) / len(hits), shards)
        if name == "det-s2":
            record = json.loads((run / "run_config.json").read_text())
            (run / "run_config.json").write_text(json.dumps(record | {"seed": 7}))
        rows = [[h, 1, 1] for h in hits]
        (run / "eval" / "retrieval_items.json").write_text(json.dumps({
            "ks": [1, 5, 10], "tr": {"ids": [str(i) for i in range(200)], "hits": rows},
            "ir": {"ids": [str(i) for i in range(200)], "hits": rows}}))
        runs.append(run)
    out = tmp_path / "report"
    cli_report.run(report_args(runs, out))
    retrieval = (out / "retrieval.md").read_text()
    assert "| DET 0.7 | 75.00 ± 0.00† |" in retrieval  # far above the reference, whose one seed: items only
    assert "| NOUN 0.7 | 50.00 |" in retrieval  # same share, other items: not a difference
    det = next(ln for ln in retrieval.splitlines() if ln.startswith("| DET 0.7 | +25.00 ["))
    low, high = (float(x) for x in det.split("[")[1].split("]")[0].split(","))
    assert 10 < low < 25 < high < 40


def test_run_info_reads_the_run_record(tmp_path):
    shards = tmp_path / "shards"
    albef = load_run(_run(tmp_path, "a", "random", 0.15, 1.0, shards, albef=True))
    assert (albef.method, albef.ratio, albef.group, albef.label) == ("random", 0.15, "Baselines",
                                                                     "ALBEF (random 0.15)")
    adj = load_run(_run(tmp_path, "b", "adj", 1.0, 1.0, shards))
    assert (adj.method, adj.ratio, adj.group, adj.label, adj.shards) == ("ADJ", 1.0, "Non-functional", "ADJ 1.0",
                                                                         str(shards))
    (tmp_path / "bare").mkdir()  # no record: listed under its folder name, never parsed
    bare = load_run(tmp_path / "bare")
    assert (bare.method, bare.ratio, bare.group) == ("bare", None, "Other")


def test_legacy_run_record_with_pos_text(tmp_path):
    record = preset_config("tiny", mask=parse_mask_spec("NOUN", 0.7)).to_dict()
    del record["mask"]
    record.update(pos="noun", ratio=0.7)  # written before the mask was stored parsed
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "run_config.json").write_text(json.dumps(record))
    assert load_run(tmp_path / "old").label == "NOUN 0.7"


def test_report_refuses_runs_without_results(tmp_path):
    (tmp_path / "r").mkdir()
    with pytest.raises(UserError):
        cli_report.run(report_args([tmp_path / "r"], tmp_path / "o"))
    with pytest.raises(UserError):
        cli_report.run(report_args([tmp_path / "nope"], tmp_path / "o"))


def test_a_study_of_other_masking_choices_gets_no_empty_thesis_tables(tmp_path):
    """Only the reference row of the thesis's layouts: nothing to compare there, so no Table 4.x, but the
    per-task tables of every run."""
    shards = tmp_path / "shards"
    shards.mkdir()
    runs = [_run(tmp_path, "tiny-random-0.15", "random", 0.15, 15.0, shards),
            _run(tmp_path, "tiny-DET+NOUN-0.5", "DET+NOUN", 0.5, 20.0, shards)]
    out = tmp_path / "report"
    assert cli_report.run(report_args(runs, out)) == 0
    assert not list(out.glob("table_4_*")) and (out / "retrieval.md").is_file() and (out / "valse.md").is_file()


def _items_run(root: Path, name: str, pos: str, seed: int, hits: list[int], shards: Path) -> Path:
    """A run with retrieval summaries and per-item hits (IR: 2 captions per image, clustered by image)."""
    run = _run(root, name, pos, 0.15 if pos == "random" else 0.7, 100.0 * sum(hits) / len(hits), shards)
    record = json.loads((run / "run_config.json").read_text())
    (run / "run_config.json").write_text(json.dumps(record | {"seed": seed}))
    images = [f"img{i // 2}" for i in range(len(hits))]
    (run / "eval" / "retrieval_items.json").write_text(json.dumps({
        "ks": [1, 5, 10], "tr": {"ids": images[::2], "image_ids": images[::2], "hits": [[h, 1, 1] for h in hits[::2]]},
        "ir": {"ids": [str(i) for i in range(len(hits))], "image_ids": images, "hits": [[h, 1, 1] for h in hits]}}))
    return run


def test_one_seed_is_item_only_in_words_and_mark_and_has_no_seeds_table(tmp_path):
    shards = tmp_path / "shards"
    runs = [_items_run(tmp_path, "random", "random", 42, [1] * 100 + [0] * 100, shards),
            _items_run(tmp_path, "det", "DET", 42, [1] * 160 + [0] * 40, shards)]
    out = tmp_path / "report"
    cli_report.run(report_args(runs, out))
    retrieval = (out / "retrieval.md").read_text()
    assert "| DET 0.7 | 80.00† |" in retrieval and "80.00*" not in retrieval
    assert "cover the evaluation items only, not run-to-run variation" in retrieval
    assert "over seeds and items" not in retrieval  # no run-to-run claim anywhere in the notes
    assert "Holm's step-down correction at alpha = 0.05" in retrieval and "the 6 differences" in retrieval
    assert not (out / "seeds_needed.md").exists()  # no seed spread to go by


def test_seeds_give_run_to_run_marks_and_a_seeds_table(tmp_path):
    shards = tmp_path / "shards"
    runs = [_items_run(tmp_path, f"random-{k}", "random", 42 + k, [1] * (100 + 4 * k) + [0] * (100 - 4 * k), shards)
            for k in range(3)]
    runs += [_items_run(tmp_path, f"det-{k}", "DET", 42 + k, [1] * (160 + 4 * k) + [0] * (40 - 4 * k), shards)
             for k in range(3)]
    out = tmp_path / "report"
    cli_report.run(report_args(runs, out, adjust="bh", alpha=0.01))
    retrieval = (out / "retrieval.md").read_text()
    assert "* |" in retrieval and "†" not in retrieval.split("Difference from")[0]
    assert "the Benjamini-Hochberg false discovery rate at alpha = 0.01" in retrieval
    assert "99 % interval" in retrieval and " / " in retrieval.split("raw / adjusted")[1]
    seeds = (out / "seeds_needed.md").read_text()
    assert "| 2 seeds | 3 seeds | 5 seeds | 10 seeds |" in seeds and "first mark of a family" in seeds
    assert (out / "forest.png").stat().st_size > 1000 and (out / "forest.pdf").is_file()


def test_the_thesis_layout_prints_the_rows_a_study_holds_unless_full(tmp_path):
    shards = tmp_path / "shards"
    runs = [_run(tmp_path, "random", "random", 0.15, 15.0, shards), _run(tmp_path, "noun", "NOUN", 0.7, 20.0, shards),
            _run(tmp_path, "none", "none", 0.0, 10.0, shards)]
    out = tmp_path / "report"
    cli_report.run(report_args(runs, out))
    table = (out / "table_4_2.md").read_text()
    assert "| Random Masking (ref.) |" in table and "| NOUN |" in table and "| VERB |" not in table
    assert "on `retrieval.json` (the thesis: Flickr30K)" in (out / "table_4_1.md").read_text()
    cli_report.run(report_args(runs, out, full_layout=True))
    assert "| VERB | – |" in (out / "table_4_2.md").read_text()


def test_a_report_rebuilds_from_its_evidence_byte_for_byte(tmp_path):
    shards = tmp_path / "shards"
    runs = [_items_run(tmp_path, f"{pos}-{k}", pos, 42 + k, [1] * (100 + 30 * (pos == "DET") + k) + [0] * 60, shards)
            for pos in ("random", "DET") for k in range(2)]
    first, second = tmp_path / "first", tmp_path / "second"
    cli_report.run(report_args(runs, first, evidence=str(tmp_path / "evidence")))
    cli_report.run(report_args([], second, from_items=str(tmp_path / "evidence")))
    tables = sorted(p.name for p in first.iterdir() if p.suffix in (".md", ".csv", ".tex"))
    assert tables and all((first / n).read_bytes() == (second / n).read_bytes() for n in tables)
    with pytest.raises(UserError, match="not a study's evidence"):
        cli_report.run(report_args([], second, from_items=str(tmp_path)))
