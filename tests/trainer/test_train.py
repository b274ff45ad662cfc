"""End-to-end CPU runs of `posmask pretrain` (as `python -m posmask_cli pretrain`): outputs, zero-candidate counting,
`none`, ALBEF, two-process torchrun on uneven shards, SIGTERM + resume matching an uninterrupted run (with a
curriculum, whole words and a loss-weight ramp), and the masking variants' records and refusals."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from trainer.engine.metrics import read_metrics
from trainer.model.posmask import load_pretrained
from waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
FAST = ["--preset", "tiny", "--batch-size", "8", "--workers", "0", "--log-every", "1", "--shuffle-buffer", "20"]


def pretrain(*args: str, check: bool = True, **popen) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "posmask_cli", "pretrain", *args], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=240)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stderr[-3000:]}")
    return result


@pytest.mark.slow
def test_run_writes_everything(uneven_shards: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    pretrain("--pos", "DET", "--ratio", "0.7", "--shards", str(uneven_shards), "--run", str(run),
             "--max-steps", "3", *FAST)
    for name in ("run_config.json", "metrics.jsonl", "checkpoint.pt", "model.safetensors", "config.json",
                 "losses.png", "summary.json"):
        assert (run / name).is_file(), name
    records = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3]
    for key in ("lr", "mlm", "itc", "itm", "masked_share", "samples_per_s", "data_wait_share", "peak_mem_mb"):
        assert key in records[-1]
    assert 0 < records[-1]["masked_share"] < 0.5
    assert json.loads((run / "run_config.json").read_text())["mask"] == {"classes": ["DET"], "ratio": 0.7,
                                                                       "name": "DET"}
    model = load_pretrained(run)
    assert model.config.image_size == 64
    again = pretrain("--pos", "det", "--ratio", "0.70", "--shards", str(uneven_shards), "--run", str(run),
                     "--max-steps", "3", *FAST)  # the same run however typed: resumes at the end, re-exports
    assert len(read_metrics(run / "metrics.jsonl")) == 3 and "resumed" in again.stderr
    clash = pretrain("--pos", "NOUN", "--ratio", "0.7", "--shards", str(uneven_shards), "--run", str(run),
                     "--max-steps", "3", *FAST, check=False)
    assert clash.returncode == 2 and "other settings" in clash.stderr


@pytest.mark.slow
def test_mlm_slots_follow_the_shards_histogram(tmp_path: Path) -> None:
    from synthetic_shards import write_synthetic_shards
    from trainer.masking.capacity import capacity_share, class_shares
    from trainer.masking.spec import parse_mask_spec

    shards = write_synthetic_shards(tmp_path / "shards", n_images=48, histogram=True)
    run = tmp_path / "run"
    pretrain("--pos", "NOUN", "--ratio", "0.7", "--shards", str(shards), "--run", str(run), "--max-steps", "3", *FAST)
    share = json.loads((run / "run_config.json").read_text())["resolved"]["mlm_slot_share"]
    hist = json.loads((shards / "pos_histogram.json").read_text())
    assert share == pytest.approx(capacity_share(parse_mask_spec("NOUN"), class_shares([hist])))
    assert share < capacity_share(parse_mask_spec("NOUN")) - 0.4  # 0.925 without the histogram
    records = read_metrics(run / "metrics.jsonl")
    assert all(r["mlm_dropped_tokens"] == 0 for r in records) and records[-1]["masked_share"] > 0


@pytest.mark.slow
def test_zero_candidates_counted_and_none(uneven_shards: Path, tmp_path: Path) -> None:
    pretrain("--pos", "INTJ", "--ratio", "1.0", "--shards", str(uneven_shards), "--run", str(tmp_path / "intj"),
             "--max-steps", "2", *FAST)
    records = read_metrics(tmp_path / "intj" / "metrics.jsonl")
    assert all(r["mlm"] == 0.0 for r in records) and records[-1]["empty_mlm_batches"] == 2
    pretrain("--pos", "none", "--shards", str(uneven_shards), "--run", str(tmp_path / "none"),
             "--max-steps", "2", *FAST)
    records = read_metrics(tmp_path / "none" / "metrics.jsonl")
    assert all(r["mlm"] == 0.0 and r["masked_share"] == 0.0 for r in records)


@pytest.mark.slow
def test_albef_option(uneven_shards: Path, tmp_path: Path) -> None:
    pretrain("--pos", "random", "--shards", str(uneven_shards), "--run", str(tmp_path / "albef"),
             "--max-steps", "3", "--albef", "--queue-size", "20", *FAST)  # 20 is not a multiple of 8
    records = read_metrics(tmp_path / "albef" / "metrics.jsonl")
    assert len(records) == 3 and all(r["itc"] > 0 and r["mlm"] > 0 for r in records)


@pytest.mark.slow
def test_torchrun_two_ranks_uneven_shards(uneven_shards: Path, tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    result = pretrain("--pos", "NOUN", "--shards", str(uneven_shards), "--run", str(run), "--nproc", "2",
                      "--epochs", "1", *FAST)
    # 194 samples / (2 ranks x 8) = 12 steps on both ranks, although rank 0 reads 100+ and rank 1 fewer
    records = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(1, 13))
    assert result.stderr.count("done:") == 1
    assert json.loads((run / "summary.json").read_text())["steps"] == 12


@pytest.mark.slow
def test_sigterm_then_resume_matches_uninterrupted(uneven_shards: Path, tmp_path: Path) -> None:
    # masking variants whose draws and weights depend on the step: a curriculum (stage 2 from step 4),
    # whole words and an MLM-weight ramp
    args = ["--curriculum", "DET>DET+NOUN", "--ratio", "0.7", "--whole-word", "--loss-weights", "mlm=0.2~1.0",
            "--shards", str(uneven_shards), "--max-steps", "8", "--ckpt-every", "100", *FAST]
    pretrain(*args, "--run", str(tmp_path / "straight"))
    run = tmp_path / "stopped"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "posmask_cli", "pretrain", *args, "--run", str(run)], cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: len(read_metrics(run / "metrics.jsonl")) >= 3, 180, "3 logged steps", process=process)
    finally:  # also when the wait fails: the run must not go on without the test
        process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr[-2000:]
    stopped_at = len(read_metrics(run / "metrics.jsonl"))
    assert 3 <= stopped_at < 8 and not (run / "model.safetensors").exists()
    pretrain(*args, "--run", str(run))
    straight = read_metrics(tmp_path / "straight" / "metrics.jsonl")
    resumed = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in resumed] == list(range(1, 9))
    for a, b in zip(straight, resumed):
        for key in ("mlm", "itc", "itm", "lr"):
            assert b[key] == pytest.approx(a[key], rel=1e-3, abs=1e-4), (a["step"], key)
        for key in ("mask_stage", "masked_by_pos", "loss_weights"):
            assert b[key] == a[key], (a["step"], key)


@pytest.mark.slow
def test_masking_variants_end_to_end(uneven_shards: Path, tmp_path: Path) -> None:
    from trainer.masking.spec import parse_mask_spec

    run = tmp_path / "variants"
    args = ["--curriculum", "DET>DET+NOUN", "--whole-word", "--budget", "0.15", "--fallback", "random",
            "--loss-weights", "mlm=0.2~1.0", "--shards", str(uneven_shards), "--run", str(run), "--max-steps", "4",
            *FAST]
    pretrain(*args)
    records = read_metrics(run / "metrics.jsonl")
    assert [r["mask_stage"] for r in records] == [0, 0, 1, 1]
    assert [r["loss_weights"]["mlm"] for r in records] == pytest.approx([0.2 + 0.8 * k / 3 for k in range(4)])
    for r in records:
        allowed = {"DET"} if r["mask_stage"] == 0 else {"DET", "NOUN"}  # every synthetic caption has a DET
        assert set(r["masked_by_pos"]) <= allowed and set(r["candidates_by_pos"]) == allowed
        assert r["partial_words"] == 0 and r["fallback_caption_share"] == 0.0
        assert 0 < r["masked_share"] < 0.5 and 0 < r["mlm_caption_share"] <= 1
        assert 0 <= r["budget_capped_share"] <= 1
    spec = parse_mask_spec(None, curriculum="DET>DET+NOUN", whole_word=True, budget=0.15, fallback="random")
    assert json.loads((run / "run_config.json").read_text())["mask"] == spec.to_dict()
    clash = pretrain(*[a for a in args if a != "--whole-word"], check=False)  # another spec: refused
    assert clash.returncode == 2 and "other settings (mask)" in clash.stderr
    bad = pretrain("--pos", "DET", "--budget", "0.15", "--ratio", "0.7", "--shards", str(uneven_shards), *FAST,
                   check=False)
    assert bad.returncode == 2 and "drop RATIO" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_reference_options_and_the_temperature_clamp(uneven_shards: Path, tmp_path: Path) -> None:
    # lr 0.5: Adam's first full step moves the temperature by about 0.5 from 0.07, past a bound either way.
    run = tmp_path / "reference"
    pretrain("--pos", "DET", "--shards", str(uneven_shards), "--run", str(run), "--max-steps", "3", "--lr", "0.5",
             "--augment", "albef", "--decay-groups", "albef", "--mlm-mean", "rank", *FAST)
    record = json.loads((run / "run_config.json").read_text())
    assert (record["augment"], record["crop_scale"]) == ("albef", [0.2, 1.0])
    assert (record["decay_groups"], record["mlm_mean"]) == ("albef", "rank")
    temp = load_pretrained(run).temp.item()
    assert 0.001 <= temp <= 0.5 and temp != pytest.approx(0.07, abs=0.01)
    bad = pretrain("--pos", "DET", "--shards", str(uneven_shards), "--mlm-mean", "token", *FAST, check=False)
    assert bad.returncode == 2 and "--mlm-mean: invalid choice: 'token'" in bad.stderr
