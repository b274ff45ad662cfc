"""`posmask vision-init`: the tiny preset's stand-in for an ImageNet-initialised ViT.

The thesis setting starts its ViT from supervised ImageNet-21k classification and its text encoder from
scratch. No pretrained ViT exists at the tiny size, and one trained from scratch inside a short CPU
pre-training learns colour but not shape. So this job classifies the *training* scenes by the kinds of
object they contain (multi-label: one label per shape-colour pair, like ImageNet's object classes) and
saves the encoder for `posmask pretrain --vision-weights`. It teaches what shapes look like, never a
word: grounding "circle" in those features is still left to pre-training. Evaluation scenes are not read.

Output (written last, so a folder with `vision_init.json` is complete): `vision.safetensors` (the
timm encoder's state dict) and `vision_init.json` (config, labels, held-out accuracy), beside the run
engine's `checkpoint.pt` and `metrics.jsonl`. A complete output made with the same config is reused; an
interrupted one resumes. `--reuse DIR` copies a committed output (the repository carries the default one in
`scenes/vision-tiny/`) instead of training, when its record names the same config, scenes and model.
"""
from __future__ import annotations

import json
import logging
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from toolbox.atomic import atomic_path, atomic_write_json
from toolbox.errors import Interrupted, UserError
from toolbox.devices import pick_device
from toolbox.stage import check_same, differences, read_json
from trainer.config import preset_config
from trainer.engine.distributed import DistInfo
from trainer.engine.engine import Engine, OptimSettings
from trainer.data.transforms import eval_transform, train_transform
from trainer.model.vision import build_vision_encoder

log = logging.getLogger(__name__)
WEIGHTS, RECORD = "vision.safetensors", "vision_init.json"
LOG_EVERY, CKPT_EVERY = 50, 200


@dataclass(frozen=True)
class VisionInitConfig:
    """Everything that determines the saved weights."""

    scenes: str
    steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.02
    held_out: int = 200  # training scenes kept aside to report accuracy
    seed: int = 0


def scenes_identity(scenes_root: Path) -> dict[str, object]:
    """The generator version and config of a complete scenes folder (UserError when it is not one)."""
    try:
        manifest = json.loads((scenes_root / "scenes_manifest.json").read_text(encoding="utf-8"))
        return {"version": manifest["version"], "config": manifest["config"]}
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{scenes_root} is not a complete scenes folder; run `posmask make-scenes --out "
                        f"{scenes_root}` first") from None


def scene_labels(scenes_root: Path) -> tuple[list[Path], torch.Tensor, list[str]]:
    """Training images, their multi-hot object kinds [N, K] and the kind names ("red circle", ...)."""
    table_path = scenes_root / "train" / "scenes.json"
    try:
        table = json.loads(table_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"{table_path}: cannot read the scenes ground truth ({err}); run `posmask make-scenes`") from None
    ids = sorted(table, key=int)
    kinds = sorted({(o["colour"], o["shape"]) for v in table.values() for o in v["objects"]})
    index = {kind: k for k, kind in enumerate(kinds)}
    labels = torch.zeros(len(ids), len(kinds))
    for row, image_id in enumerate(ids):
        for obj in table[image_id]["objects"]:
            labels[row, index[(obj["colour"], obj["shape"])]] = 1
    images = [scenes_root / "train" / "images" / f"{int(i):012d}.jpg" for i in ids]
    missing = [p for p in images if not p.is_file()]
    if missing:
        raise UserError(f"{len(missing)} training images are missing, e.g. {missing[0]}")
    return images, labels, [f"{c} {s}" for c, s in kinds]


def _accuracy(classifier: SceneClassifier, images: list[Path], labels: torch.Tensor,
              image_size: int) -> dict[str, float]:
    """Per-label accuracy and exact-match share of the multi-label predictions."""
    from PIL import Image

    transform = eval_transform(image_size)
    device = next(classifier.parameters()).device
    classifier.eval()
    with torch.no_grad():
        pixels = torch.stack([transform(Image.open(p)) for p in images])
        predicted = (classifier(pixels.to(device)) > 0).cpu()
    correct = predicted == (labels > 0)
    return {"label_accuracy": correct.float().mean().item(), "exact_match": correct.all(1).float().mean().item()}


class SceneClassifier(nn.Module):
    """The tiny image encoder with a linear multi-label head over the object kinds."""

    def __init__(self, encoder: nn.Module, n_labels: int) -> None:
        super().__init__()
        self.encoder, self.head = encoder, nn.Linear(encoder.num_features, n_labels)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(pixels))


def train_vision(config: VisionInitConfig, out: Path) -> dict[str, object]:
    """Train the tiny encoder + head on the run engine (resumable: a SIGTERM raises Interrupted after a
    checkpoint); write the encoder and the record into `out`."""
    from PIL import Image
    from safetensors.torch import save_file

    scenes = scenes_identity(Path(config.scenes))
    images, labels, names = scene_labels(Path(config.scenes))
    if len(images) <= config.held_out:
        raise UserError(f"{len(images)} training scenes: need more than the {config.held_out} held out")
    train_images, train_labels = images[config.held_out:], labels[config.held_out:]
    model_cfg = preset_config("tiny").model
    device = pick_device()
    settings = OptimSettings(lr=config.lr, weight_decay=config.weight_decay)  # constant lr
    engine = Engine(out, settings, DistInfo(device=device), config.steps, {"config": asdict(config), "scenes": scenes})
    torch.manual_seed(config.seed)
    encoder = build_vision_encoder(model_cfg.vision_name, model_cfg.image_size, "random",
                                   model_cfg.vision_overrides, model_cfg.vision_stem)
    net = engine.attach(SceneClassifier(encoder, len(names)))
    rng = random.Random(config.seed)
    if engine.loop_state is not None:
        rng.setstate(engine.loop_state["rng"])
    start = time.perf_counter()
    stopped = False
    try:
        while not engine.done and not stopped:
            rows = [rng.randrange(len(train_images)) for _ in range(config.batch_size)]
            pixels = torch.stack([train_transform(Image.open(train_images[r]), model_cfg.image_size, rng, (0.8, 1.0))
                                  for r in rows])
            with engine.autocast():
                logits = net(pixels.to(device))
            loss = F.binary_cross_entropy_with_logits(logits.float(), train_labels[rows].to(device))
            engine.update(loss)
            if engine.due(LOG_EVERY):
                engine.log({"step": engine.step, "loss": loss.item(), "lr": engine.lr})
            stopped = engine.stop_requested()
            if stopped or engine.due(CKPT_EVERY):
                engine.save({"rng": rng.getstate()})
    finally:
        engine.close()
    if stopped:
        raise Interrupted(f"stopped by SIGTERM at step {engine.step}; run the same command again to resume")
    metrics = _accuracy(engine.module, images[:config.held_out], labels[:config.held_out], model_cfg.image_size)
    with atomic_path(out / WEIGHTS) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}, str(tmp))
    record = {"config": asdict(config), "scenes": scenes, "model": asdict(model_cfg), "labels": names,
              "held_out": metrics, "final_loss": loss.item(), "seconds": round(time.perf_counter() - start, 1)}
    atomic_write_json(out / RECORD, record)
    return record


def ensure_vision_init(config: VisionInitConfig, out: Path, reuse: Path | None = None) -> dict[str, object]:
    """Reuse a complete output made with the same config and scenes, else copy `reuse` (a committed output)
    when it was made with the same config, scenes and model, else train. UserError if `out` holds another's:
    a stale init must not be picked up by mistake."""
    identity = {"config": asdict(config), "scenes": scenes_identity(Path(config.scenes))}
    record = _complete_record(out)
    if record is not None:
        check_same({k: record.get(k) for k in identity}, identity, lambda keys: (
            f"{out} holds a vision init made with other settings ({', '.join(keys)}); choose another --out or "
            "remove it"))
        log.info("vision init already complete in %s", out)
        return record
    if reuse is not None:
        copied = _copy_if_same(reuse, out, {**identity, "model": asdict(preset_config("tiny").model)})
        if copied is not None:
            return copied
    return train_vision(config, out)


def _copy_if_same(source: Path, out: Path, identity: dict[str, object]) -> dict[str, object] | None:
    """Copy a complete vision init from `source` into `out` (weights first, record last) when its record
    matches `identity`; None, with the reason logged, when it is absent or was made otherwise."""
    record = _complete_record(source)
    if record is None:
        log.info("no complete vision init in %s to reuse; training one", source)
        return None
    differ = differences({k: record.get(k) for k in identity}, identity)
    if differ:
        log.info("the vision init in %s was made with other %s; training one", source, ", ".join(differ))
        return None
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / WEIGHTS) as tmp:
        shutil.copyfile(source / WEIGHTS, tmp)
    record = {**record, "copied_from": str(source)}
    atomic_write_json(out / RECORD, record)
    log.info("vision init copied from %s (made with the same config, scenes and model)", source)
    return record


def _complete_record(folder: Path) -> dict[str, object] | None:
    """The record of a complete vision init in `folder` (record and weights both there), else None."""
    record = read_json(folder / RECORD)
    return record if isinstance(record, dict) and (folder / WEIGHTS).is_file() else None
