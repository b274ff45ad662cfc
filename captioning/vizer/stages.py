"""ViZer's two trained stages, each on the run engine (AdamW with weight decay 0.01, checkpoints with exact
resume, metrics.jsonl), reused when complete and made with the same inputs, refused when the folder holds
another's (captioning.stages):

- `ensure_mapper`: the mapper on cached pooled states of (image, caption) pairs, one epoch's worth of draws;
- `ensure_lora`: the captioner's LoRA adapters on unlabeled images' features, one epoch's worth of draws,
  saved merged as a plain captioner (`captioner.safetensors`). Its identity holds the adapter placement
  (`LoraSettings.targets`) and the state mode (eval), so a stage of another placement or of the old
  dropout-on recompute is never reused.
"""
from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from captioning.captioner import WEIGHTS, load_captioner, save_captioner
from captioning.train import StageSettings, run_stage
from captioning.stages import ensure_stage, stage_record
from captioning.vizer.lora import LoraSettings, lora_step, merged, with_lora
from captioning.vizer.mapper import MAPPER_WEIGHTS, Mapper, load_mapper, mapper_step, save_mapper
from toolbox.atomic import sha256_file

log = logging.getLogger(__name__)


def epoch_settings(s: StageSettings, items: int) -> StageSettings:
    """`s` with as many steps as one epoch of `items` at its batch size (warm-up: a tenth of them)."""
    steps = max(1, math.ceil(items / s.batch_size))
    return replace(s, steps=steps, warmup_steps=min(s.warmup_steps, steps // 10))


def names_digest(names: list[str]) -> str:
    """A short digest of a list of image names (the unlabeled set's identity)."""
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


def ensure_mapper(out: Path, identity: dict[str, Any], states: Tensor, targets: Tensor, width: int,
                  s: StageSettings, device: torch.device) -> dict[str, Any]:
    """Train (or reuse) a mapper of `width` on pooled states [N,D] -> image features [N,F]."""
    s = epoch_settings(s, len(states))
    identity = {**identity, "stage": "mapper", "pairs": len(states), "width": width, "settings": asdict(s)}

    def train() -> dict[str, Any]:
        torch.manual_seed(s.seed)
        mapper = Mapper(states.shape[1], width, targets.shape[1]).to(device)
        log.info("mapper: width %d on %d pairs, %d steps -> %s", width, len(states), s.steps, out)
        run_stage(mapper, mapper_step(states, targets, s.batch_size, device), s, out, device, identity,
                  train_mode=True)
        save_mapper(mapper, out)
        return {}

    return ensure_stage(stage_record(out, identity, MAPPER_WEIGHTS, "mapper"), train)


def ensure_lora(out: Path, ce_dir: Path, mapper_dir: Path, features: Tensor, unlabeled: list[str],
                lora: LoraSettings, s: StageSettings, device: torch.device) -> dict[str, Any]:
    """Fine-tune (or reuse) the CE captioner with LoRA on the unlabeled images' frozen features [M,Ni,F]
    (`unlabeled`: their names, for the identity); no caption is read."""
    s = epoch_settings(s, len(features))
    identity = {"stage": "lora", "captioner": sha256_file(ce_dir / WEIGHTS),
                "mapper": sha256_file(mapper_dir / MAPPER_WEIGHTS), "unlabeled": names_digest(unlabeled),
                "images": len(unlabeled), "lora": asdict(lora), "states": "eval", "settings": asdict(s)}

    def train() -> dict[str, Any]:
        peft_model = with_lora(load_captioner(ce_dir, device), lora, s.seed)
        mapper = load_mapper(mapper_dir, device)
        log.info("LoRA: %d unlabeled images, %d steps -> %s", len(features), s.steps, out)
        run_stage(peft_model, lora_step(peft_model, mapper, features, s.batch_size), s, out, device, identity,
                  train_mode=False)  # dropout off, as the mapper's states (lora module doc)
        save_captioner(merged(peft_model), out)
        return {}

    return ensure_stage(stage_record(out, identity, WEIGHTS, "LoRA captioner"), train)
