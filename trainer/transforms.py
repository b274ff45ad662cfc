"""Image transforms: RandomResizedCrop for training (seeded per sample, so resume is exact), optionally with
ALBEF's flip and RandAugment (`augment="albef"`); resize for eval."""
from __future__ import annotations

import math
import random
from collections.abc import Callable

import torch
from PIL import Image, ImageOps
from torch import Tensor

from trainer.randaugment import rand_augment

MEAN = (0.5, 0.5, 0.5)  # the augreg ViT normalisation
STD = (0.5, 0.5, 0.5)
AUGMENTS: tuple[str, ...] = ("crop", "albef")
ALBEF_CROP_SCALE = (0.2, 1.0)  # ALBEF's pre-training RandomResizedCrop


def to_tensor(image: Image.Image) -> Tensor:
    """PIL RGB -> normalised float [3, H, W]."""
    import numpy as np

    array = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).float().div_(255.0)
    mean, std = torch.tensor(MEAN)[:, None, None], torch.tensor(STD)[:, None, None]
    return (array - mean) / std


def eval_transform(image_size: int) -> Callable[[Image.Image], Tensor]:
    """Resize to image_size x image_size (bicubic) and normalise, as used for validation."""

    def transform(image: Image.Image) -> Tensor:
        return to_tensor(image.convert("RGB").resize((image_size, image_size), Image.BICUBIC))

    return transform


def crop_box(width: int, height: int, rng: random.Random, scale: tuple[float, float],
             ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """RandomResizedCrop's box (left, top, right, bottom), drawn from `rng` (torchvision's algorithm)."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w, h = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            left, top = rng.randint(0, width - w), rng.randint(0, height - h)
            return left, top, left + w, top + h
    side = min(width, height)  # fallback: central square
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def train_transform(image: Image.Image, image_size: int, rng: random.Random,
                    scale: tuple[float, float] = (0.5, 1.0), augment: str = "crop") -> Tensor:
    """RandomResizedCrop to image_size (bicubic) and normalise; `augment="albef"` adds, after the crop, ALBEF's
    horizontal flip (p 0.5; it does not swap "left" and "right" in the caption, nor does ALBEF) and RandAugment.
    Every draw comes from `rng`."""
    if augment not in AUGMENTS:
        raise ValueError(f"augment {augment!r}; valid: {', '.join(AUGMENTS)}")
    image = image.convert("RGB")
    box = crop_box(image.width, image.height, rng, scale)
    image = image.resize((image_size, image_size), Image.BICUBIC, box=box)
    if augment == "albef":
        if rng.random() < 0.5:
            image = ImageOps.mirror(image)
        image = rand_augment(image, rng)
    return to_tensor(image)
