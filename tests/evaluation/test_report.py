"""The report: grouped tables, ratio comparison, figures and index from fabricated run folders."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from evaluation import cli_report
from evaluation.runs import load_run
from shards.errors import UserError
from trainer.config import preset_config
from trainer.masking import parse_mask_spec


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


def test_report_tables_and_figures(tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "pos_histogram.json").write_text(json.dumps({"word": {"NOUN": 10, "DET": 7, "X": 0},
                                                           "wordpiece": {"NOUN": 12, "DET": 7, "X": 0}}))
    runs = [_run(tmp_path, "tiny-none", "none", 0.0, 10.0, shards),
            _run(tmp_path, "tiny-DET-0.7", "DET", 0.7, 30.0, shards),
            _run(tmp_path, "tiny-NOUN-1.0", "NOUN", 1.0, 25.0, shards),
            _run(tmp_path, "tiny-NOUN-0.7", "NOUN", 0.7, 20.0, shards),
            _run(tmp_path, "tiny-random-0.15", "random", 0.15, 15.0, shards)]
    out = tmp_path / "report"
    rc = cli_report.run(argparse.Namespace(runs=[str(r) for r in runs], out=str(out), title="t"))
    assert rc == 0
    index = (out / "index.md").read_text()
    for png in ("losses.png", "pos_histogram.png", "summary.png"):
        assert (out / png).stat().st_size > 1000 and f"]({png})" in index
    retrieval = (out / "retrieval.md").read_text()
    lines = [ln for ln in retrieval.splitlines() if ln.startswith("| ")]
    order = [ln.split("|")[1].strip() for ln in lines[1:]]
    assert order == ["*Non-functional*", "NOUN 0.7", "NOUN 1.0", "*Functional*", "DET 0.7",
                     "*Baselines*", "random 0.15", "none"]
    assert "**30.0**" in retrieval  # best bold
    valse = (out / "valse.md").read_text()
    assert "| Masking | existence | color | Avg. |" in valse  # paper order, then unknown pieces
    ratio = (out / "ratio.md").read_text()
    assert "| NOUN | 20.0 | 25.0 | +5.0 |" in ratio
    vqa = (out / "vqa.md").read_text()
    assert "Yes/No | Number | Other | Overall" in vqa
    assert "foil-it" in index  # not-run pieces are noted


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
        cli_report.run(argparse.Namespace(runs=[str(tmp_path / "r")], out=str(tmp_path / "o"), title="t"))
    with pytest.raises(UserError):
        cli_report.run(argparse.Namespace(runs=[str(tmp_path / "nope")], out=str(tmp_path / "o"), title="t"))
