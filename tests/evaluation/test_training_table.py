"""The report's "as trained" table: achieved masking and the ITM plateau exit, read from `metrics.jsonl`."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation.core.runs import load_run
from evaluation.report.study_tables import methods_of
from evaluation.report.training_table import training_table
from trainer.config import preset_config
from trainer.masking.masker import parse_mask_spec


def _run(root: Path, name: str, seed: int, records: list[dict], pos: str = "DET") -> Path:
    run = root / name
    run.mkdir(parents=True)
    record = preset_config("tiny", mask=parse_mask_spec(pos, 0.7), seed=seed, run=str(run))
    (run / "run_config.json").write_text(json.dumps(record.to_dict()))
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run


def _log(step: int, itm_acc: float, share: float, **extra) -> dict:
    return {"step": step, "itm_acc": itm_acc, "masked_share": share, "mlm_caption_share": 0.5} | extra


def test_achieved_masking_and_plateau_exit_over_seeds(tmp_path: Path) -> None:
    one = [_log(10, 0.5, 0.10, budget_capped_share=0.2), _log(20, 0.55, 0.12, budget_capped_share=0.4),
           _log(30, 0.7, 0.14, budget_capped_share=0.3)]
    two = [_log(10, 0.5, 0.10, budget_capped_share=0.3), _log(20, 0.55, 0.30, budget_capped_share=0.3),
           _log(20, 0.65, 0.10, budget_capped_share=0.3),  # a resumed run logs step 20 again: the last one counts
           _log(30, 0.8, 0.10, budget_capped_share=0.3)]
    runs = [load_run(_run(tmp_path, "DET-seed1", 42, one)), load_run(_run(tmp_path, "DET-seed2", 43, two))]
    table = training_table(methods_of(runs))
    assert table is not None and len(table.rows) == 1
    cells = dict(zip(table.columns, table.rows[0].cells))
    assert cells["masked share of words"].value == pytest.approx(11.0)  # (12 + 10) / 2, in percent
    assert cells["captions with an MLM target"].value == pytest.approx(50.0)
    assert cells["budget cap binds"].value == pytest.approx(30.0)
    assert "words split" not in cells  # no whole-word run in the study: no column
    exit_step = cells["ITM acc > 60% from step"]
    assert exit_step.value == pytest.approx(25.0) and exit_step.sd == pytest.approx(7.0710678)  # steps 30 and 20
    assert cells["final ITM acc"].value == pytest.approx(75.0)


def test_a_run_that_never_leaves_the_plateau_and_whole_word_counts(tmp_path: Path) -> None:
    stuck = [_log(s, 0.5, 0.15, partial_words=0) for s in (10, 20)]
    runs = [load_run(_run(tmp_path, "NOUN-w", 42, stuck, pos="NOUN"))]
    table = training_table(methods_of(runs))
    assert table is not None
    cells = dict(zip(table.columns, table.rows[0].cells))
    assert cells["ITM acc > 60% from step"].value is None and cells["words split"].value == 0.0


def test_no_table_without_training_logs(tmp_path: Path) -> None:
    runs = [load_run(_run(tmp_path, "DET-seed1", 42, [{"step": 1, "loss": 2.0}]))]
    assert training_table(methods_of(runs)) is None


def test_retrieval_by_itc_alone_beside_the_re_ranked_figures(tmp_path: Path) -> None:
    from evaluation.report.itc_table import itc_table

    runs = []
    for seed, (itc_ir, ranked_ir) in enumerate(((60.0, 10.0), (64.0, 20.0))):
        run = _run(tmp_path, f"DET-seed{seed + 1}", 42 + seed, [_log(10, 0.5, 0.1)])
        (run / "eval").mkdir()
        info = load_run(run)
        info.results["retrieval"] = {"k_rerank": 16, "itc": {"tr_r1": 50.0, "tr_r5": 80.0, "ir_r1": itc_ir,
                                                             "ir_r5": 90.0}, "metrics": {"tr_r1": 30.0, "ir_r1": ranked_ir}}
        runs.append(info)
    table = itc_table(methods_of(runs))
    assert table is not None and "top 16" in " ".join(table.notes)
    cells = dict(zip(table.columns, table.rows[0].cells))
    assert cells["ITC IR R@1"].value == pytest.approx(62.0) and cells["ITC IR R@1"].sd == pytest.approx(2.828427, 1e-5)
    assert cells["re-ranked IR R@1"].value == pytest.approx(15.0)
    assert itc_table(methods_of([load_run(_run(tmp_path, "none", 42, []))])) is None  # no retrieval: no table
