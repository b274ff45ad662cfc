"""The SCST probe's two trained stages, each reused when complete and made with the same inputs, resumed when
interrupted, and refused when its folder holds another's:

- `ensure_ce`: the CE captioner of a preset, shared by every probed run (default `runs/captioner-PRESET`);
- `ensure_scst`: the captioner fine-tuned with SCST on one probed run's reward (`RUN/eval/scst_REWARD`).

A folder is complete when it holds the captioner and `record.json` (written last: identity, sizes, seconds).
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from captioning.captioner import PRESETS, WEIGHTS, Captioner, CaptionerConfig, decode, load_captioner, save_captioner
from captioning.data import FrozenEncoder, ImageSet, shard_dirs, shard_images
from captioning.train import StageSettings, ce_step, run_stage, scst_step
from captioning.scst.reward import CaptionScorer
from toolbox.atomic import atomic_write_json, sha256_file
from toolbox.errors import UserError
from trainer.engine.metrics import read_metrics

log = logging.getLogger(__name__)
RECORD = "record.json"


def file_identity(spec: str) -> dict[str, str]:
    """A weights file by content (a hub name by name)."""
    path = Path(spec)
    return {"sha256": sha256_file(path)} if path.is_file() else {"name": spec}


def shards_identity(shards: str) -> list[str]:
    """The manifests' contents of the tag-shards outputs."""
    return [sha256_file(folder / "manifest.json") for folder in shard_dirs(shards)]


def complete_stage(out: Path, identity: dict[str, Any], weights: str = WEIGHTS) -> dict[str, Any] | None:
    """The record of a finished stage made with `identity` (its `weights` file present); None when there is
    none; UserError for another's."""
    try:
        record = json.loads((out / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (out / weights).is_file():
        return None
    if record.get("identity") != json.loads(json.dumps(identity)):
        raise UserError(f"{out} holds a captioner made with other settings or inputs; remove it or choose another "
                        "folder")
    log.info("captioner already complete in %s", out)
    return record


def _ensure(out: Path, identity: dict[str, Any], shards: str, limit: int | None, encoder: FrozenEncoder,
            device: torch.device, train: Callable[[ImageSet, torch.Tensor], Captioner]) -> dict[str, Any]:
    """The record of the stage in `out`: reused when complete, else `train(images, their frozen features)` on
    the first `limit` training images of the shards, saved with its record."""
    record = complete_stage(out, identity)
    if record is not None:
        return record
    start = time.perf_counter()
    images = shard_images(shards, limit)
    model = train(images, encoder.encode(images.images, device))
    save_captioner(model, out)
    record = {"identity": identity, "seconds": round(time.perf_counter() - start, 1), "images": len(images.ids),
              "curve": read_metrics(out / "metrics.jsonl")}
    atomic_write_json(out / RECORD, record)
    return record


def ensure_ce(out: Path, preset: str, encoder: FrozenEncoder, shards: str, s: StageSettings, max_images: int | None,
              device: torch.device) -> dict[str, Any]:
    """Train (or reuse) the CE captioner on the shards' training images and captions; returns its record."""
    identity = {"stage": "ce", "preset": preset, "encoder": file_identity(encoder.weights),
                "shards": shards_identity(shards), "max_images": max_images, "settings": asdict(s)}

    def train(images: ImageSet, features: torch.Tensor) -> Captioner:
        config = CaptionerConfig(feature_dim=encoder.width, **PRESETS[preset])
        pieces = {int(i) for caps in images.captions for c in caps for i in c} - set(config.specials)
        config.wordpieces = sorted(pieces)
        torch.manual_seed(s.seed)
        model = Captioner(config).to(device)
        log.info("CE captioner: %d images, %d captions, %d wordpieces -> %s", len(images.ids),
                 sum(map(len, images.captions)), len(pieces), out)
        run_stage(model, ce_step(model, features, images.captions, s.batch_size, device), s, out, device, identity,
                  train_mode=True)
        return model

    return _ensure(out, identity, shards, max_images, encoder, device, train)


def ensure_scst(out: Path, ce_dir: Path, run_dir: Path, reward: str, encoder: FrozenEncoder, shards: str,
                s: StageSettings, n_images: int, device: torch.device) -> dict[str, Any]:
    """Fine-tune (or reuse) a copy of the CE captioner with SCST, rewarded by `run_dir`'s model, on the first
    `n_images` training images; returns its record."""
    from evaluation.core.common import load_model

    identity = {"stage": "scst", "captioner": sha256_file(ce_dir / WEIGHTS),
                "run": sha256_file(run_dir / "model.safetensors"), "reward": reward, "images": n_images,
                "shards": shards_identity(shards), "settings": asdict(s)}

    def train(images: ImageSet, features: torch.Tensor) -> Captioner:
        scorer = CaptionScorer(load_model(run_dir, device), images.images, device)
        model = load_captioner(ce_dir, device)

        def reward_of(rows: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
            return scorer(rows, decode(model, tokens), reward)

        log.info("SCST: %s reward of %s on %d images -> %s", reward, run_dir, len(images.ids), out)
        run_stage(model, scst_step(model, features, reward_of, s.batch_size, s.samples), s, out, device, identity,
                  train_mode=False)
        return model

    return _ensure(out, identity, shards, n_images, encoder, device, train)
