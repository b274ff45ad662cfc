"""The run engine: schedule, AdamW groups, exact resume (model, optimiser, RNG, loop state), refusal of
another run's folder, the SIGTERM stop."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch
from torch import nn

from toolbox.errors import UserError
from trainer.config import preset_config
from trainer.engine.distributed import DistInfo
from trainer.engine.engine import Engine, OptimSettings, build_optimizer, decays, lr_at, param_groups
from trainer.engine.metrics import read_metrics
from trainer.model.posmask import PosMaskModel
from trainer.train import optim_settings


def test_warmup_then_cosine() -> None:
    s = OptimSettings(lr=1e-4, warmup_lr=1e-5, min_lr=1e-5, warmup_steps=1000)
    total = 100_000
    assert lr_at(0, s, total) == pytest.approx(1e-5)
    assert lr_at(500, s, total) == pytest.approx((1e-5 + 1e-4) / 2)
    assert lr_at(1000, s, total) == pytest.approx(1e-4)
    assert lr_at(total, s, total) == pytest.approx(1e-5)
    values = [lr_at(k, s, total) for k in range(1000, total, 997)]
    assert all(a >= b for a, b in zip(values, values[1:])) and min(values) >= 1e-5
    constant = OptimSettings(lr=1e-3)
    assert {lr_at(k, constant, 50) for k in range(50)} == {1e-3}


def test_pretraining_warmup_readings() -> None:
    cfg = preset_config("thesis")  # ALBEF's code: "5 epochs" of warm-up are 5 x 100 iterations, capped at 10 %
    assert optim_settings(cfg, 100_000).warmup_steps == 500 and optim_settings(cfg, 400).warmup_steps == 40
    literal = preset_config("thesis", warmup_epochs=5.0)  # the thesis's words: the first 5 of 10 epochs
    assert optim_settings(literal, 100_000, steps_per_epoch_=10_000).warmup_steps == 50_000


def test_no_weight_decay_on_norms_biases_temperature_and_tokens() -> None:
    model = PosMaskModel(preset_config("tiny").model, vision_weights="random")
    decay, no_decay = build_optimizer(model, OptimSettings(lr=1e-3, weight_decay=0.02), torch.device("cpu")).param_groups
    assert decay["weight_decay"] == 0.02 and no_decay["weight_decay"] == 0.0
    no_decay_ids = {id(p) for p in no_decay["params"]}
    assert id(model.temp) in no_decay_ids and id(model.text_norm.weight) in no_decay_ids
    assert id(model.itm_head.bias) in no_decay_ids and id(model.vision.pos_embed) in no_decay_ids
    assert id(model.itm_head.weight) not in no_decay_ids
    assert len(decay["params"]) + len(no_decay["params"]) == sum(1 for _ in model.parameters())  # tied: once


def test_albef_decay_groups_decay_the_temperature_and_tokens() -> None:
    model = PosMaskModel(preset_config("tiny").model, vision_weights="random")
    names = dict(model.named_parameters())
    albef = {n for n, p in names.items() if decays(n, p, "albef")}
    posmask = {n for n, p in names.items() if decays(n, p, "posmask")}
    assert albef - posmask == {"temp", "vision.pos_embed", "vision.cls_token"}  # ALBEF: 0-d and token tensors decay
    assert posmask <= albef and "itm_head.weight" in posmask and "itm_head.bias" not in albef
    assert "text_norm.weight" not in albef
    settings = OptimSettings(lr=1e-3, weight_decay=0.02, decay_groups="albef")
    decay, no_decay = build_optimizer(model, settings, torch.device("cpu")).param_groups
    assert id(model.temp) in {id(p) for p in decay["params"]} and decay["weight_decay"] == 0.02
    assert len(decay["params"]) == len(albef) and len(no_decay["params"]) == len(names) - len(albef)
    with pytest.raises(UserError, match="valid: posmask, albef"):
        param_groups(model, 0.02, decay_groups="timm")


def test_lr_scale_groups() -> None:
    module = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 2))
    groups = param_groups(module, 0.1, lr_scale={"1.": 10.0})
    assert [(g["lr_scale"], g["weight_decay"], len(g["params"])) for g in groups] == [
        (1.0, 0.1, 1), (1.0, 0.0, 1), (10.0, 0.1, 1), (10.0, 0.0, 1)]
    optimizer = build_optimizer(module, OptimSettings(lr=1e-3), torch.device("cpu"), {"1.": 10.0})
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([1e-3, 1e-3, 1e-2, 1e-2])


SETTINGS = OptimSettings(lr=0.05, weight_decay=0.01, warmup_steps=2, warmup_lr=0.0, min_lr=0.001, grad_clip=1.0)


def run_steps(run_dir: Path, steps: int, total: int = 6, ckpt_every: int = 3) -> tuple[nn.Module, dict]:
    """A small regression trained on random data drawn inside the loop (so RNG state matters)."""
    engine = Engine(run_dir, SETTINGS, DistInfo(), total, {"task": "toy"})
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.2), nn.Linear(8, 1))
    net = engine.attach(module)
    state = engine.loop_state or {"seen": 0}
    try:
        while not engine.done and engine.step < steps:
            x = torch.randn(16, 4)
            loss = ((net(x) - x.sum(1, keepdim=True)) ** 2).mean()
            engine.update(loss)
            state["seen"] += 16
            engine.log({"step": engine.step, "loss": loss.item(), "lr": engine.lr})
            if engine.due(ckpt_every):
                engine.save(state)
    finally:
        engine.close()
    return module, state


def test_resume_is_exact(tmp_path: Path) -> None:
    straight, _ = run_steps(tmp_path / "straight", 6)
    run_steps(tmp_path / "stopped", 4)  # checkpoint at step 3; step 4 is lost, as in a crash
    resumed, state = run_steps(tmp_path / "stopped", 6)
    assert state == {"seen": 96}  # 48 restored from the checkpoint at step 3, then 3 more steps
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    lrs = [r["lr"] for r in read_metrics(tmp_path / "straight" / "metrics.jsonl")]
    assert lrs[:2] == pytest.approx([0.025, 0.05]) and lrs[-1] == pytest.approx(0.001)


def test_refuses_a_run_folder_with_other_settings(tmp_path: Path) -> None:
    run_steps(tmp_path / "run", 3)
    with pytest.raises(UserError, match="other settings.*task"):
        Engine(tmp_path / "run", SETTINGS, DistInfo(), 6, {"task": "another"})


def test_sigterm_is_seen_at_the_next_step_boundary(tmp_path: Path) -> None:
    engine = Engine(tmp_path, SETTINGS, DistInfo(), 6, {})
    engine.attach(nn.Linear(2, 1))
    try:
        assert not engine.stop_requested()
        os.kill(os.getpid(), signal.SIGTERM)
        assert engine.stop_requested()
    finally:
        engine.close()
    assert signal.getsignal(signal.SIGTERM) is not engine._stop._handle
