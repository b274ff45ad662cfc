"""What the captioner reads: training images and their captions straight from tagged shards (the tars' images,
`captions.parquet`'s wordpiece ids), the evaluation images with their reference captions (a COCO captions
file), and the frozen features of the one fixed image encoder shared by every probed run.

The encoder is the preset's own image encoder with a fixed start: for `tiny` the `vision-init` weights
(runs/vision-tiny), for `thesis` the ImageNet-21k ViT from timm. It is never trained here.
"""
from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from evaluation.core.common import load_json
from toolbox.errors import UserError
from toolbox.progress import progress
from trainer.engine.engine import autocast

log = logging.getLogger(__name__)
DEFAULT_ENCODERS: dict[str, str] = {"tiny": "runs/vision-tiny/vision.safetensors"}  # else the preset's own


@dataclass
class FrozenEncoder:
    """The fixed image encoder: pixels -> tokens [B,Ni,F]; token 0 is its [CLS] token (the pooled image feature)."""

    module: nn.Module
    image_size: int
    weights: str

    @property
    def width(self) -> int:
        return int(self.module.num_features)

    @torch.no_grad()
    def encode(self, images: Sequence, device: torch.device, batch_size: int = 64,
               desc: str = "frozen features") -> Tensor:
        """Tokens [N,Ni,F] (float16, on the CPU) of PIL images or image files / bytes."""
        from PIL import Image

        from trainer.data.transforms import eval_transform

        transform = eval_transform(self.image_size)
        module = self.module.to(device).eval()
        out = []
        for start in progress(range(0, len(images), batch_size), desc=desc, unit="batch"):
            pixels = []
            for image in images[start:start + batch_size]:
                image = io.BytesIO(image) if isinstance(image, bytes) else image
                with (image if isinstance(image, Image.Image) else Image.open(image)) as opened:
                    pixels.append(transform(opened.convert("RGB")))
            with autocast(device):
                out.append(module.forward_features(torch.stack(pixels).to(device)).half().cpu())
        return torch.cat(out)


def frozen_encoder(preset: str, weights: str | None = None) -> FrozenEncoder:
    """The preset's image encoder with its fixed start (`weights`, else DEFAULT_ENCODERS, else the preset's
    own pretrained weights); UserError naming what to run when they are missing."""
    from trainer.config import preset_config
    from trainer.model.vision import build_vision_encoder

    config = preset_config(preset)
    spec = weights or DEFAULT_ENCODERS.get(preset) or config.vision_weights
    if spec == "random":
        raise UserError("the captioner needs a trained image encoder, not 'random'")
    if preset in DEFAULT_ENCODERS and not weights and not Path(spec).is_file():
        raise UserError(f"the {preset} captioner's image encoder {spec} does not exist; run `make vision-init` "
                        "(or pass --vision-weights)")
    m = config.model
    module = build_vision_encoder(m.vision_name, m.image_size, spec, m.vision_overrides, m.vision_stem)
    for p in module.parameters():
        p.requires_grad_(False)
    return FrozenEncoder(module.eval(), m.image_size, spec)


@dataclass
class ImageSet:
    """Images (file paths or JPEG bytes) with their captions' BERT wordpiece ids ([CLS] ... [SEP])."""

    ids: list[str]
    images: list
    captions: list[list[np.ndarray]]


def shard_dirs(shards: str) -> list[Path]:
    """The tag-shards outputs of a comma-separated list; UserError naming the first that is not one."""
    dirs = [Path(s.strip()) for s in shards.split(",") if s.strip()]
    missing = [d for d in dirs if not (d / "captions.parquet").is_file() or not (d / "manifest.json").is_file()]
    if not dirs or missing:
        raise UserError(f"--shards {shards}: no tag-shards output (manifest.json, captions.parquet) at "
                        f"{missing[0] if missing else shards}")
    return dirs


def folder_images(folder: Path, keep: Callable[[str], bool] | None = None, limit: int | None = None,
                  seen: set[str] | None = None) -> Iterator[tuple[str, bytes]]:
    """(image id, JPEG bytes) of the first sample of each new image in a shards folder that `keep` accepts (all
    by default), up to `limit` images in `seen` (the ids met so far, updated; a new set by default). Reads no
    caption."""
    seen = set() if seen is None else seen
    from shards.reader import iter_samples

    for sample in iter_samples(folder, skip_corrupt=True):
        image_id = str(sample.meta.get("image_id", sample.key))
        if image_id in seen or sample.image_bytes is None or (keep is not None and not keep(image_id)):
            continue
        seen.add(image_id)
        yield image_id, sample.image_bytes
        if limit is not None and len(seen) >= limit:
            return


def shard_images(shards: str, limit: int | None = None, wanted: set[str] | None = None) -> ImageSet:
    """Up to `limit` distinct images of the shards (or those in `wanted`) in shard order, each with every
    caption of its image from `captions.parquet`."""
    import pyarrow.parquet as pq

    captions: dict[str, list[np.ndarray]] = {}
    for folder in shard_dirs(shards):
        table = pq.read_table(folder / "captions.parquet", columns=["image_id", "ids"])
        for image_id, ids in zip(table.column("image_id").to_pylist(), table.column("ids").to_pylist()):
            captions.setdefault(str(image_id), []).append(np.asarray(ids, dtype=np.int64))
    seen: set[str] = set()
    def keep(image_id: str) -> bool:
        return image_id in captions and (wanted is None or image_id in wanted)

    pairs = [pair for folder in shard_dirs(shards) for pair in folder_images(folder, keep, limit, seen)]
    if not pairs:
        raise UserError(f"--shards {shards}: no image with a caption (text-only shards cannot train a captioner)")
    return ImageSet([i for i, _ in pairs], [b for _, b in pairs], [captions[i] for i, _ in pairs])


def eval_images(captions_json: Path, image_root: Path, limit: int | None = None) -> tuple[ImageSet, list[list[str]]]:
    """The evaluation images of a COCO captions file that exist under `image_root`, and each one's reference
    captions (text)."""
    coco = load_json(captions_json, "COCO captions file")
    try:
        refs: dict[str, list[str]] = {}
        for a in coco["annotations"]:
            refs.setdefault(str(a["image_id"]), []).append(str(a["caption"]))
        files = [(str(im["id"]), image_root / str(im["file_name"])) for im in coco["images"]]
    except (KeyError, TypeError) as err:
        raise UserError(f"{captions_json}: not a COCO captions file ({type(err).__name__}: {err})") from None
    files = [(i, p) for i, p in files if i in refs and p.is_file()][:limit]
    if not files:
        raise UserError(f"{captions_json}: no image with captions under {image_root}")
    return ImageSet([i for i, _ in files], [p for _, p in files], [[] for _ in files]), [refs[i] for i, _ in files]


def shard_caption_texts(shards: str) -> list[str]:
    """Every caption text of the shards (`captions.parquet`), e.g. to fit a language model of them."""
    import pyarrow.parquet as pq

    return [str(c) for folder in shard_dirs(shards)
            for c in pq.read_table(folder / "captions.parquet", columns=["caption"]).column("caption").to_pylist()]
