"""Image transforms: RandomResizedCrop for training (seeded per sample, so resume is exact), optionally with
ALBEF's flip and RandAugment (`augment="albef"`); resize for eval (PIL's bicubic). The training loader hands over
uint8 crops (`train_crop`, [H, W, 3]: a quarter of float32's bytes, no float work in the workers); `normalize`
makes the model's float input on the device."""
from __future__ import annotations

import math
import random
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import Tensor

from trainer.data.randaugment import rand_augment

MEAN = (0.5, 0.5, 0.5)  # the augreg ViT normalisation
STD = (0.5, 0.5, 0.5)
AUGMENTS: tuple[str, ...] = ("crop", "albef")
ALBEF_CROP_SCALE = (0.2, 1.0)  # ALBEF's pre-training RandomResizedCrop


def to_uint8(image: Image.Image) -> Tensor:
    """PIL RGB -> uint8 [H, W, 3] (the pixels as PIL holds them)."""
    return torch.from_numpy(np.array(image, dtype=np.uint8))


def normalize(pixels: Tensor) -> Tensor:
    """uint8 [..., H, W, 3] -> normalised float [..., 3, H, W] (contiguous), on the tensor's device; the same
    float32 operations, in the same order, as the per-sample transform had, so the same values."""
    array = pixels.movedim(-1, -3).contiguous().float().div_(255.0)
    mean = torch.tensor(MEAN).to(pixels.device, non_blocking=True)[:, None, None]  # non-blocking: no stream sync
    std = torch.tensor(STD).to(pixels.device, non_blocking=True)[:, None, None]
    return (array - mean) / std


def to_tensor(image: Image.Image) -> Tensor:
    """PIL RGB -> normalised float [3, H, W]."""
    return normalize(to_uint8(image))


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


def resize_box(pixels: Tensor, box: tuple[int, int, int, int], size: int, in_float: bool = False) -> Tensor:
    """The box (left, top, right, bottom) of uint8 [H, W, 3] pixels resized to uint8 [size, size, 3] with
    antialiased bicubic interpolation (PIL's kernel, a = -0.5): torch's uint8 kernel (CPU; about 4x faster than
    PIL's resize), or `in_float` and rounded (the device path: CUDA has no uint8 kernel for it)."""
    left, top, right, bottom = box
    # channels-last in and out: torch's fast uint8 kernel, and the result is already [size, size, 3] in memory
    crop = pixels[top:bottom, left:right].permute(2, 0, 1)[None].contiguous(memory_format=torch.channels_last)
    out = F.interpolate(crop.float() if in_float else crop, size=(size, size), mode="bicubic", antialias=True,
                        align_corners=False)
    if in_float:
        out = out.round_().clamp_(0, 255).to(torch.uint8)
    return out[0].permute(1, 2, 0).contiguous()


def train_crop(image: Image.Image, image_size: int, rng: random.Random,
               scale: tuple[float, float] = (0.5, 1.0), augment: str = "crop") -> Tensor:
    """RandomResizedCrop to image_size (`resize_box`), as uint8 [H, W, 3]; `augment="albef"` adds, after the
    crop, ALBEF's horizontal flip (p 0.5; it does not swap "left" and "right" in the caption, nor does ALBEF) and
    RandAugment. Every draw comes from `rng`."""
    if augment not in AUGMENTS:
        raise ValueError(f"augment {augment!r}; valid: {', '.join(AUGMENTS)}")
    if image.mode != "RGB":
        image = image.convert("RGB")
    crop = resize_box(to_uint8(image), crop_box(image.width, image.height, rng, scale), image_size)
    if augment == "albef":
        image = Image.fromarray(crop.numpy())
        if rng.random() < 0.5:
            image = ImageOps.mirror(image)
        crop = to_uint8(rand_augment(image, rng))
    return crop


def train_transform(image: Image.Image, image_size: int, rng: random.Random,
                    scale: tuple[float, float] = (0.5, 1.0), augment: str = "crop") -> Tensor:
    """`train_crop`, normalised: float [3, H, W] (for loops that take one image at a time)."""
    return normalize(train_crop(image, image_size, rng, scale, augment))
