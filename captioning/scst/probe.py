"""The SCST probe's own stage: the CE captioner (captioning.stages.ensure_ce) fine-tuned with SCST on one probed
run's reward (`RUN/eval/scst_REWARD`), reused when complete and made with the same inputs, resumed when
interrupted, and refused when its folder holds another's (captioning.stages)."""
from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from captioning.captioner import WEIGHTS, decode, load_captioner, save_captioner
from captioning.data import FrozenEncoder, shard_images
from captioning.scst.reward import CaptionScorer
from captioning.stages import ensure_stage, shards_identity, stage_record
from captioning.train import StageSettings, run_stage, scst_step
from toolbox.atomic import sha256_file
from trainer.run_dir import RunDir

log = logging.getLogger(__name__)


def ensure_scst(out: Path, ce_dir: Path, run_dir: Path, reward: str, encoder: FrozenEncoder, shards: str,
                s: StageSettings, n_images: int, device: torch.device) -> dict[str, Any]:
    """Fine-tune (or reuse) a copy of the CE captioner with SCST, rewarded by `run_dir`'s model, on the first
    `n_images` training images; returns its record."""
    from evaluation.core.common import load_model

    identity = {"stage": "scst", "captioner": sha256_file(ce_dir / WEIGHTS),
                "run": sha256_file(RunDir(run_dir).model), "reward": reward, "images": n_images,
                "shards": shards_identity(shards), "settings": asdict(s)}

    def train() -> dict[str, Any]:
        images = shard_images(shards, n_images)
        features = encoder.encode(images.images, device)
        scorer = CaptionScorer(load_model(run_dir, device), images.images, device)
        model = load_captioner(ce_dir, device)

        def reward_of(rows: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
            return scorer(rows, decode(model, tokens), reward)

        log.info("SCST: %s reward of %s on %d images -> %s", reward, run_dir, len(images.ids), out)
        run_stage(model, scst_step(model, features, reward_of, s.batch_size, s.samples), s, out, device, identity,
                  train_mode=False)
        save_captioner(model, out)
        return {"images": len(images.ids)}

    return ensure_stage(stage_record(out, identity, WEIGHTS, "SCST captioner"), train)
