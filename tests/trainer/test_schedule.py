"""Learning-rate schedule (warm-up from 1e-5, cosine to 1e-5) and AdamW parameter groups."""
from __future__ import annotations

import pytest
import torch

from trainer.config import preset_config
from trainer.model import PosMaskModel
from trainer.train import build_optimizer, lr_at


def test_warmup_then_cosine() -> None:
    cfg = preset_config("thesis")
    total = 100_000
    assert lr_at(0, cfg, total) == pytest.approx(1e-5)
    assert lr_at(cfg.warmup_steps, cfg, total) == pytest.approx(1e-4)
    assert lr_at(cfg.warmup_steps // 2, cfg, total) == pytest.approx((1e-5 + 1e-4) / 2)
    assert lr_at(total, cfg, total) == pytest.approx(1e-5)
    values = [lr_at(s, cfg, total) for s in range(cfg.warmup_steps, total, 997)]
    assert all(a >= b for a, b in zip(values, values[1:])) and min(values) >= 1e-5


def test_no_weight_decay_on_norms_biases_temperature() -> None:
    cfg = preset_config("tiny")
    model = PosMaskModel(cfg.model, vision_weights="random")
    decay, no_decay = build_optimizer(model, cfg, torch.device("cpu")).param_groups
    assert decay["weight_decay"] == 0.02 and no_decay["weight_decay"] == 0.0
    no_decay_ids = {id(p) for p in no_decay["params"]}
    assert id(model.temp) in no_decay_ids and id(model.text_norm.weight) in no_decay_ids
    assert id(model.itm_head.bias) in no_decay_ids and id(model.vision.pos_embed) in no_decay_ids
    assert id(model.itm_head.weight) not in no_decay_ids
    n_params = sum(1 for p in model.parameters())  # the tied MLM decoder is counted once
    assert len(decay["params"]) + len(no_decay["params"]) == n_params
