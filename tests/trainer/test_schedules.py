"""Schedules that scale with the run: the hard-negative ramp of the tiny preset and the VQA warm-up readings."""
from __future__ import annotations

import argparse

import pytest

from toolbox.errors import UserError
from trainer.cli import add_arguments, build_config
from trainer.config import preset_config


def _config(*flags: str):
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_arguments(parser)
    return build_config(parser.parse_args(["--pos", "DET", "--preset", "tiny", "--shards", "x", *flags]))


def test_hard_negatives_ramp_over_a_share_of_the_run_at_the_tiny_preset() -> None:
    cfg = preset_config("tiny")
    assert cfg.hard_negative_steps(400) == 200  # a 400-step study run is fully hard from step 200
    assert cfg.hard_negative_steps(1875) == 938  # the 3-epoch default: about the 1,000 steps it had before
    assert preset_config("thesis").hard_negative_steps(10_000) == 0  # ALBEF: hard from step 0


def test_hard_negative_steps_replace_the_share_and_both_at_once_is_refused() -> None:
    cfg = _config("--hard-negative-warmup", "1000")
    assert cfg.hard_negative_share is None and cfg.hard_negative_steps(400) == 1000
    assert _config("--hard-negative-share", "0.25").hard_negative_steps(400) == 100
    with pytest.raises(UserError, match="give one of them"):
        _config("--hard-negative-warmup", "10", "--hard-negative-share", "0.5")
    with pytest.raises(UserError, match="share of the run"):
        _config("--hard-negative-share", "1.5")


def test_vqa_warmup_reads_epochs_as_albef_iterations_by_default() -> None:
    from evaluation.vqa.finetune import VQASettings, warmup_steps

    # VQA v2 at batch 32: about 13.8k steps per epoch, 8 epochs
    assert warmup_steps(VQASettings(), 13_800, 8 * 13_800) == 100  # 1 x 100 iterations, as ALBEF's VQA.py
    assert warmup_steps(VQASettings(warmup_reading="epochs"), 13_800, 8 * 13_800) == 13_800  # the literal epoch
    assert warmup_steps(VQASettings(), 47, 94) == 9  # a short fine-tune: capped at a tenth, as pre-training
    with pytest.raises(ValueError, match="valid: iterations, epochs"):
        warmup_steps(VQASettings(warmup_reading="weeks"), 10, 10)
