"""CPU end-to-end runs of every task on a tiny random model and a tiny scenes-style set."""
from __future__ import annotations

import json

import pytest

from evaluation.valse.metric import entry_outcomes, valse_scores
from posmask_cli import main


def _eval(run, *extra: str) -> int:
    return main(["eval", "--run", str(run), "--workers", "0", "--device", "cpu", *extra])


def test_retrieval_end_to_end(tiny_run, tiny_eval, capsys):
    assert _eval(tiny_run, "--tasks", "retrieval", "--scenes", str(tiny_eval), "--k", "4") == 0
    r = json.loads((tiny_run / "eval" / "retrieval.json").read_text())
    assert r["n_images"] == 8 and r["n_texts"] == 16 and r["k_rerank"] == 4
    for key in ("tr_r1", "tr_r5", "tr_r10", "ir_r1", "ir_r5", "ir_r10", "r_mean"):
        assert 0.0 <= r["metrics"][key] <= 100.0
    assert r["metrics"]["ir_r10"] == 100.0  # only 8 images: the true one is always within 10
    assert "retrieval  TR R@1/5/10" in capsys.readouterr().out


def test_valse_end_to_end(tiny_run, tiny_eval):
    assert _eval(tiny_run, "--tasks", "valse", "--data", str(tiny_eval / "valse"),
                 "--images", str(tiny_eval / "images")) == 0
    r = json.loads((tiny_run / "eval" / "valse.json").read_text())
    color = r["pieces"]["color"]
    assert color["status"] == "ok" and color["n"] == 8 and color["invalid_skipped"] == 1
    assert color["n_missing"] == 1 and color["missing"] == ["nope.png"]
    assert r["average"]["n_pieces"] == 2
    assert set(color) >= {"acc_r", "p_c", "p_f", "acc"}
    entries = json.loads((tiny_run / "eval" / "valse_entries.json").read_text())
    assert len(entries) == 16


def test_vqa_end_to_end(tiny_run, tiny_eval):
    assert _eval(tiny_run, "--tasks", "vqa", "--scenes", str(tiny_eval), "--vqa-epochs", "1",
                 "--vqa-batch-size", "8", "--vqa-lr", "1e-3", "--vqa-train-limit", "20") == 0
    r = json.loads((tiny_run / "eval" / "vqa.json").read_text())
    assert r["n_answers"] == 6 and r["n_train"] == 20 and r["n_eval"] == 12
    assert r["settings"]["epochs"] == 1 and len(r["train_curve"]) == 1  # 3 steps, logged at the last
    assert set(r["metrics"]["per_answer_type"]) == {"number", "other", "yes/no"}
    preds = json.loads((tiny_run / "eval" / r["predictions"]).read_text())
    assert len(preds) == 12 and set(preds[0]) == {"question_id", "answer"}


def test_vqa_is_reproducible_whatever_the_process_rng(tiny_run, tiny_eval, tmp_path):
    """The fine-tune's head is initialised from --seed, not from the process's RNG (random at start-up in
    this torch): two fine-tunes after different global seeds give the same losses and answers."""
    import torch

    outcomes = []
    for process_seed in (1, 2):
        torch.manual_seed(process_seed)
        out = tmp_path / f"after-{process_seed}"
        assert _eval(tiny_run, "--tasks", "vqa", "--scenes", str(tiny_eval), "--vqa-epochs", "1",
                     "--vqa-batch-size", "8", "--vqa-lr", "1e-3", "--vqa-train-limit", "20", "--out", str(out)) == 0
        r = json.loads((out / "vqa.json").read_text())
        outcomes.append(([c["loss"] for c in r["train_curve"]], (out / r["predictions"]).read_text()))
    assert outcomes[0] == outcomes[1]


def test_probe_end_to_end(tiny_run, tiny_eval):
    from evaluation.core.items import metric_items

    assert _eval(tiny_run, "--tasks", "probe", "--scenes", str(tiny_eval), "--seed", "3") == 0
    r = json.loads((tiny_run / "eval" / "probe.json").read_text())
    assert r["n_images"] == 8 and r["n_captions"] == 8
    v = r["variants"]
    assert {"original", "swap_NOUN", "swap_ADP", "noun_swap", "nouns_only", "shuffle", "tpl_LXMERT", "count_3"} <= set(v)
    assert v["swap_ADJ"]["n"] == 8 and v["swap_VERB"]["skipped"] == 8  # "sits" is the only verb: no alternative
    assert v["count_3"]["skipped"] == 8  # two nouns per image: no image has 3
    low, high = v["swap_NOUN"]["original_wins_ci"]
    assert low <= v["swap_NOUN"]["original_wins"] <= high
    assert v["tpl_UNITER"]["n"] == 8 and "prob_drop" in v["tpl_UNITER"]
    items = metric_items(tiny_run / "eval")  # the per-item scores behind the report's intervals
    assert len(items["probe/swap_ADJ:original_wins"].ids) == 8
    assert abs(items["probe/swap_NOUN:prob_drop"].metric() - v["swap_NOUN"]["prob_drop"]) < 1e-9
    first = json.loads((tiny_run / "eval" / "probe.json").read_text())["examples"]
    assert first[0]["tpl_LXMERT"].startswith("a ") and " of a " in first[0]["tpl_LXMERT"]
    assert _eval(tiny_run, "--tasks", "probe", "--scenes", str(tiny_eval), "--seed", "3") == 0
    assert json.loads((tiny_run / "eval" / "probe.json").read_text())["examples"] == first  # seeded


@pytest.mark.shared_data
def test_real_valse_with_partial_images(tiny_run, shared_data, tmp_path):
    from PIL import Image

    (tmp_path / "v7w").mkdir()
    Image.new("RGB", (32, 32), (10, 20, 30)).save(tmp_path / "v7w" / "v7w_2371044.jpg")
    assert _eval(tiny_run, "--tasks", "valse", "--data", str(shared_data / "valse"),
                 "--images", f"visual7w={tmp_path / 'v7w'}", "--out", str(tmp_path / "out")) == 0
    r = json.loads((tmp_path / "out" / "valse.json").read_text())
    ex = r["pieces"]["existence"]
    assert ex["status"] == "ok" and ex["n"] == 1 and ex["n_missing"] == 504
    assert r["pieces"]["counting-hard"]["status"] == "not run"  # no v7w image of that piece present
    assert r["pieces"]["plurals"]["status"] == "not run" and "coco2017" in r["pieces"]["plurals"]["reason"]
    assert r["pieces"]["counting-small-quant"]["n"] == 1  # the same Visual7W image appears there too
    assert r["average"]["n_pieces"] == 2


def test_bad_usage_is_one_line_error(tiny_run, tmp_path, capsys):
    assert _eval(tiny_run, "--tasks", "nope") == 2
    assert "unknown" in capsys.readouterr().err
    assert main(["eval", "--run", str(tmp_path / "missing"), "--tasks", "valse"]) == 2
    assert _eval(tiny_run, "--tasks", "retrieval", "--data", str(tmp_path / "x.json"),
                 "--images", str(tmp_path)) == 2
    assert "not found" in capsys.readouterr().err


def test_through_posmask_cli(tiny_run, tiny_eval, tmp_path, capsys):
    """Without --device (`--run` must not clobber the dispatcher's args.run)."""
    assert main(["eval", "--run", str(tiny_run), "--tasks", "valse", "--scenes", str(tiny_eval),
                 "--workers", "0", "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "valse.json").is_file()
    assert main(["eval", "--run", str(tiny_run), "--tasks", "vqa,nope"]) == 2


@pytest.mark.slow
def test_on_generated_scenes(tiny_run, tmp_path):
    """retrieval, VALSE and VQA read the scenes generator's real output (formats stay in step)."""
    generate = pytest.importorskip("scenes.generate")
    generate.ensure_scenes(tmp_path / "scenes", 0, train_images=1, eval_images=6, vqa_train_images=4,
                           overwrite=True, strict_seed=True)
    out = tmp_path / "out"
    assert _eval(tiny_run, "--tasks", "retrieval,valse,vqa", "--scenes", str(tmp_path / "scenes" / "eval"),
                 "--out", str(out), "--vqa-epochs", "1", "--k", "8") == 0
    ret = json.loads((out / "retrieval.json").read_text())
    assert ret["n_images"] == 6 and not ret["missing_images"]
    valse = json.loads((out / "valse.json").read_text())
    assert valse["average"]["n_pieces"] >= 3 and not valse["not_run"]
    assert all(p["n_missing"] == 0 for p in valse["pieces"].values())
    vqa = json.loads((out / "vqa.json").read_text())
    assert vqa["n_eval"] > 0 and vqa["missing_images"] == {"train": 0, "val": 0}


@pytest.mark.slow
def test_vqa_two_processes(tiny_run, tiny_eval, tmp_path):
    """`--gpus 2` fine-tunes with DDP (Gloo on CPU) and gathers the predictions on rank 0."""
    import subprocess
    import sys

    out = tmp_path / "ddp"
    proc = subprocess.run([sys.executable, "-m", "posmask_cli", "eval", "--run", str(tiny_run), "--tasks", "vqa",
                           "--scenes", str(tiny_eval), "--gpus", "2", "--device", "cpu", "--workers", "0",
                           "--vqa-epochs", "1", "--vqa-batch-size", "4", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    preds = json.loads((out / "vqa_predictions_val.json").read_text())
    assert len(preds) == 12  # both ranks' shares gathered
    assert json.loads((out / "vqa.json").read_text())["n_train"] == 24


def test_probe_without_tags_fails_before_any_work(tiny_run, tiny_eval, tmp_path, capsys, monkeypatch):
    import shutil

    bare = tmp_path / "eval"
    shutil.copytree(tiny_eval, bare, ignore=shutil.ignore_patterns("tags"))
    monkeypatch.chdir(tmp_path)
    assert _eval(tiny_run, "--tasks", "retrieval,probe", "--scenes", str(bare), "--out", str(tmp_path / "o")) == 2
    assert "no UPOS tags" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_reference_conventions_are_recorded_and_recomputable(tiny_run, tiny_eval, tmp_path):
    out = tmp_path / "eval"
    assert _eval(tiny_run, "--tasks", "retrieval,valse", "--scenes", str(tiny_eval), "--k", "4", "--out", str(out),
                 "--rerank-score", "logit", "--valse-convention", "valse") == 0
    assert json.loads((out / "retrieval.json").read_text())["rerank_score"] == "logit"
    valse = json.loads((out / "valse.json").read_text())
    assert valse["convention"] == "valse"
    entries = json.loads((out / "valse_entries.json").read_text())
    for piece, result in valse["pieces"].items():
        rows = [e for e in entries if e["piece"] == piece]
        cap, foil = [e["caption_logits"] for e in rows], [e["foil_logits"] for e in rows]
        assert valse_scores(cap, foil, "valse") == {k: result[k] for k in ("acc_r", "p_c", "p_f", "acc", "n", "ties_skipped")}
        assert [e["caption"] > e["foil"] for e in rows] == list(entry_outcomes(cap, foil, "valse")["pairwise"])
        assert all(e["caption"] == e["caption_logits"][1] for e in rows)  # valse: the raw match logit
    assert _eval(tiny_run, "--tasks", "valse", "--scenes", str(tiny_eval), "--out", str(out)) == 0
    posmask = json.loads((out / "valse.json").read_text())
    assert posmask["convention"] == "posmask"
    for piece, result in posmask["pieces"].items():  # the same entries, scored in the other convention
        rows = [e for e in entries if e["piece"] == piece]
        again = valse_scores([e["caption_logits"] for e in rows], [e["foil_logits"] for e in rows], "posmask")
        assert again["acc_r"] == pytest.approx(result["acc_r"]) and again["p_f"] == pytest.approx(result["p_f"])
