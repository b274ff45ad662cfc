"""`posmask vizer`'s chain: frozen features (cached), mapping pairs and their pooled states, the grid of mappers
(width x mapping data size, per variant), a LoRA captioner per mapper, and the greedy captions of the
evaluation images of every system (Base = the CE captioner, RL = an SCST captioner, ViZer_GT, ViZer_G = the
grid's cells at the chosen width and size), and each cell's shuffled-caption control (`control`), gathered into a
JSON-ready dict for `vizer_report`."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from captioning.captioner import WEIGHTS, greedy_captions, load_captioner
from captioning.data import FrozenEncoder, ImageSet, eval_images, shard_images
from captioning.train import StageSettings
from captioning.stages import file_identity, shards_identity
from captioning.vizer.control import control, greedy_tokens, texts
from captioning.vizer.lora import LoraSettings, unlabeled_images
from captioning.vizer.mapper import NAMES, gt_pairs, generated_pairs, image_targets, load_mapper, pair_states
from captioning.vizer.stages import ensure_lora, ensure_mapper
from toolbox.atomic import sha256_file

log = logging.getLogger(__name__)
BASE, RL = "Base (CE)", "RL (SCST)"


@dataclass
class VizerConfig:
    """Everything the chain reads (see `cli_vizer` for the flags)."""

    out: Path
    captioner: Path
    shards: str
    unlabeled: str
    captions_json: Path
    image_root: Path
    variants: tuple[str, ...] = ("gt", "g")
    width: int = 256
    map_samples: dict[str, int] = field(default_factory=lambda: {"gt": 40000, "g": 10000})
    grid_widths: tuple[int, ...] = (128, 256, 512, 1024)
    grid: bool = True
    rl: Path | None = None
    eval_limit: int | None = None
    mapper: StageSettings = StageSettings(batch_size=64, lr=1e-3, min_lr=1e-5, warmup_steps=100, log_every=5)
    lora_stage: StageSettings = StageSettings(batch_size=16, lr=3e-4, min_lr=1e-5, warmup_steps=100, log_every=5)
    lora: LoraSettings = LoraSettings()


def cached_features(path: Path, names: list[str], images: list, encoder: FrozenEncoder, device: torch.device,
                    desc: str) -> Tensor:
    """The frozen features of `images`, reused from `path` when it holds those of the same names and encoder."""
    key = {"names": names, "encoder": file_identity(encoder.weights)}
    if path.is_file():
        saved = torch.load(path, map_location="cpu")
        if saved["key"] == key:
            return saved["features"]
    features = encoder.encode(images, device, desc=desc)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"key": key, "features": features}, path)
    return features


def sizes_of(cfg: VizerConfig, variant: str, available: int) -> list[int]:
    """The mapping data sizes of a variant: its main size, and a quarter of it for the grid (GT capped at the
    pairs the shards hold)."""
    main = min(cfg.map_samples[variant], available) if variant == "gt" else cfg.map_samples[variant]
    return sorted({max(1, main // 4), main}) if cfg.grid else [main]


def run_vizer(cfg: VizerConfig, encoder: FrozenEncoder, device: torch.device) -> dict[str, Any]:
    """Run (or reuse) every stage and caption the evaluation images; returns the result (see module doc)."""
    start = time.perf_counter()
    cache = cfg.out / "cache"
    base = load_captioner(cfg.captioner, device)
    evals, references = eval_images(cfg.captions_json, cfg.image_root)  # all of them are kept out of LoRA
    held_out = {Path(p).stem for p in evals.images} | set(evals.ids)
    evals = ImageSet(*(x[:cfg.eval_limit] for x in (evals.ids, evals.images, evals.captions)))
    references = references[:cfg.eval_limit]
    eval_names = [Path(p).name for p in evals.images]
    unl_names, unl_images = unlabeled_images(cfg.unlabeled, held_out)
    train = shard_images(cfg.shards)
    eval_feats = cached_features(cache / "eval.pt", eval_names, evals.images, encoder, device, "evaluation features")
    unl_feats = cached_features(cache / "unlabeled.pt", unl_names, unl_images, encoder, device, "unlabeled features")
    train_feats = cached_features(cache / "train.pt", train.ids, train.images, encoder, device, "training features")
    base_tokens = greedy_tokens(base, eval_feats)
    systems = {BASE: texts(base, base_tokens)}
    if cfg.rl is not None:
        systems[RL] = greedy_captions(load_captioner(cfg.rl, device), eval_feats)
    common = {"captioner": sha256_file(cfg.captioner / WEIGHTS), "encoder": file_identity(encoder.weights),
              "shards": shards_identity(cfg.shards)}
    widths = sorted(set(cfg.grid_widths) | {cfg.width}) if cfg.grid else [cfg.width]
    cells: list[dict[str, Any]] = []
    for variant in cfg.variants:
        available = sum(map(len, train.captions))
        sizes = sizes_of(cfg, variant, available)
        pairs = (gt_pairs(base, train.captions, sizes[-1], 0) if variant == "gt"
                 else generated_pairs(base, train_feats, sizes[-1], 0))
        states = pair_states(base, train_feats, pairs)
        targets = image_targets(train_feats[pairs.rows])
        for n in sizes:
            for width in widths:
                folder = cfg.out / "stages" / f"{variant}-n{n}-w{width}"
                mapper = ensure_mapper(folder / "mapper", {**common, "variant": variant}, states[:n], targets[:n],
                                       width, cfg.mapper, device)
                lora = ensure_lora(folder / "lora", cfg.captioner, folder / "mapper", unl_feats, unl_names, cfg.lora,
                                   cfg.lora_stage, device)
                tuned = load_captioner(folder / "lora", device)
                tokens = greedy_tokens(tuned, eval_feats)
                captions = texts(tuned, tokens)
                check = (control(base, tuned, load_mapper(folder / "mapper", device), eval_feats, base_tokens, tokens,
                                 systems[BASE], captions, seed=0) if len(eval_feats) > 1 else None)
                cells.append({"variant": variant, "pairs": n, "width": width, "captions": captions,
                              "mapper_loss": _last_loss(mapper), "lora_loss": _first_last(lora), "control": check,
                              "main": width == cfg.width and n == sizes[-1],
                              "seconds": {"mapper": mapper["seconds"], "lora": lora["seconds"]}})
                if width == cfg.width and n == sizes[-1]:
                    systems[NAMES[variant]] = captions
    return {"image_ids": evals.ids, "image_names": eval_names, "image_paths": [str(p) for p in evals.images],
            "references": references, "systems": systems, "grid": cells, "unlabeled_images": len(unl_names),
            "training_images": len(train.ids), "seconds": round(time.perf_counter() - start, 1),
            "settings": {"width": cfg.width, "map_samples": cfg.map_samples, "variants": list(cfg.variants),
                         "grid_widths": widths, "lora": vars(cfg.lora), "mapper_stage": vars(cfg.mapper),
                         "lora_stage": vars(cfg.lora_stage)}}


def add_itc(r: dict[str, Any], run_dir: Path, device: torch.device) -> None:
    """Each system's and grid cell's per-image ITC cosine under a pre-trained posmask run (the CLIPScore
    analogue), added to the result in place."""
    from evaluation.core.common import load_model
    from captioning.scst.reward import CaptionScorer

    scorer = CaptionScorer(load_model(run_dir, device), [Path(p) for p in r["image_paths"]], device)
    index = torch.arange(len(r["image_ids"]))
    r["itc"] = {name: scorer(index, captions, "itc").tolist() for name, captions in r["systems"].items()}
    for cell in r["grid"]:
        cell["itc"] = scorer(index, cell["captions"], "itc").tolist()


def _last_loss(record: dict[str, Any]) -> float | None:
    curve = [p["loss"] for p in record.get("curve", []) if "loss" in p]
    return curve[-1] if curve else None


def _first_last(record: dict[str, Any]) -> list[float] | None:
    curve = [p["loss"] for p in record.get("curve", []) if "loss" in p]
    return [curve[0], curve[-1]] if curve else None
