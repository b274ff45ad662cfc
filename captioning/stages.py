"""The captioner's trained stages, one rule for all of them (toolbox.stage): a stage folder is complete when it
holds its weights and `record.json` (written last: identity, seconds, training curve); it is reused when complete
and made with the same inputs, resumed by the run engine when interrupted, and refused, in one line naming the
stage, when it holds another's. The CE captioner (`ensure_ce`) is the stage every other one starts from."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from captioning.captioner import PRESETS, WEIGHTS, Captioner, CaptionerConfig, save_captioner
from captioning.data import FrozenEncoder, shard_dirs, shard_images
from captioning.train import StageSettings, ce_step, run_stage
from shards.manifest import MANIFEST_NAME
from toolbox.atomic import sha256_file
from toolbox.stage import StageRecord
from trainer.engine.metrics import read_metrics
from trainer.run_dir import RunDir

log = logging.getLogger(__name__)


def file_identity(spec: str) -> dict[str, str]:
    """A weights file by content (a hub name by name)."""
    path = Path(spec)
    return {"sha256": sha256_file(path)} if path.is_file() else {"name": spec}


def shards_identity(shards: str) -> list[str]:
    """The manifests' contents of the tag-shards outputs."""
    return [sha256_file(folder / MANIFEST_NAME) for folder in shard_dirs(shards)]


def stage_record(out: Path, identity: dict[str, Any], weights: str, stage: str) -> StageRecord:
    """The record of the stage `stage` (e.g. "captioner", "mapper") in `out`, complete with `weights`."""
    return StageRecord(out, identity, (weights,), lambda keys: (
        f"{out} holds a {stage} made with other settings or inputs ({', '.join(keys)}); remove it or choose "
        "another folder"))


def ensure_stage(record: StageRecord, train: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The stage's record: reused when complete, else `train()` (which saves the weights and returns what the
    record reports besides the seconds and the training curve), then the record, written last."""
    done = record.complete()
    if done is not None:
        log.info("%s already complete", record.folder)
        return done
    start = time.perf_counter()
    report = train()
    return record.write(seconds=round(time.perf_counter() - start, 1), **report,
                       curve=read_metrics(RunDir(record.folder).metrics))


def ensure_ce(out: Path, preset: str, encoder: FrozenEncoder, shards: str, s: StageSettings, max_images: int | None,
              device: torch.device) -> dict[str, Any]:
    """Train (or reuse) the CE captioner on the shards' training images and captions; returns its record."""
    identity = {"stage": "ce", "preset": preset, "encoder": file_identity(encoder.weights),
                "shards": shards_identity(shards), "max_images": max_images, "settings": asdict(s)}

    def train() -> dict[str, Any]:
        images = shard_images(shards, max_images)
        features = encoder.encode(images.images, device)
        config = CaptionerConfig(feature_dim=encoder.width, **PRESETS[preset])
        pieces = {int(i) for caps in images.captions for c in caps for i in c} - set(config.specials)
        config.wordpieces = sorted(pieces)
        torch.manual_seed(s.seed)
        model = Captioner(config).to(device)
        log.info("CE captioner: %d images, %d captions, %d wordpieces -> %s", len(images.ids),
                 sum(map(len, images.captions)), len(pieces), out)
        run_stage(model, ce_step(model, features, images.captions, s.batch_size, device), s, out, device, identity,
                  train_mode=True)
        save_captioner(model, out)
        return {"images": len(images.ids)}

    return ensure_stage(stage_record(out, identity, WEIGHTS, "captioner"), train)

