"""Training augmentation: `crop` (the default) and `albef` (crop 0.2-1, flip, RandAugment) follow from the sample's
seed alone (exact resume), differ from each other, and bad names fail in one line."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from PIL import Image

from toolbox.errors import UserError
from trainer.config import preset_config
from trainer.data.randaugment import OPS, rand_augment
from trainer.data.transforms import (ALBEF_CROP_SCALE, crop_box, normalize, resize_box, to_tensor, to_uint8,
                                train_transform)


def picture() -> Image.Image:
    """A 96x80 low-contrast image with left/right structure (every operation but Identity changes it)."""
    rng = np.random.default_rng(0)
    array = rng.integers(40, 160, (80, 96, 3), dtype=np.uint8)
    array[:, :30] = (150, 50, 50)
    return Image.fromarray(array)


def augmented(seed: str, augment: str, scale: tuple[float, float] = ALBEF_CROP_SCALE) -> torch.Tensor:
    return train_transform(picture(), 32, random.Random(seed), scale, augment)


def test_albef_augmentation_is_deterministic_given_the_seed_and_differs_from_crop() -> None:
    seeds = [f"0-0-0-0-{i}" for i in range(20)]
    albef = [augmented(seed, "albef") for seed in seeds]
    assert all(a.shape == (3, 32, 32) and torch.equal(a, augmented(seed, "albef")) for a, seed in zip(albef, seeds))
    assert len({a.numpy().tobytes() for a in albef}) == len(seeds)
    # Same seed, same crop box; then a flip with p 0.5 and two RandAugment ops with p 0.5 each: about 85 %
    # of the images differ from the default's.
    differ = sum(not torch.equal(a, augmented(seed, "crop")) for a, seed in zip(albef, seeds))
    assert differ >= 12  # 14 of these 20


def test_crop_is_the_random_resized_crop_alone() -> None:
    # The default: the crop box from the seed, resized (antialiased bicubic, PIL's kernel); nothing else drawn.
    image = picture()
    box = crop_box(image.width, image.height, random.Random("x"), (0.5, 1.0))
    expected = normalize(resize_box(to_uint8(image), box, 32))
    assert torch.equal(augmented("x", "crop", (0.5, 1.0)), expected)
    pil = to_tensor(image.resize((32, 32), Image.BICUBIC, box=box))
    assert (expected - pil).abs().mean() < 2 / 255  # what PIL's resize gives, up to rounding


def test_every_randaugment_op_keeps_size_and_is_deterministic() -> None:
    image = picture()
    changed = 0
    for name, op in OPS.items():
        out = op(image, random.Random(name))
        assert out.size == image.size and out.mode == "RGB", name
        assert np.array_equal(np.asarray(out), np.asarray(op(image, random.Random(name)))), name
        changed += not np.array_equal(np.asarray(out), np.asarray(image))
    assert changed == len(OPS) - 1  # all but Identity
    assert rand_augment(image, random.Random(3)).size == image.size


def test_bad_augment_and_albef_crop_scale() -> None:
    with pytest.raises(ValueError, match="valid: crop, albef"):
        augmented("0", "randaugment")
    with pytest.raises(UserError, match="augment 'flip'; valid: crop, albef"):
        preset_config("tiny", augment="flip")
    assert preset_config("thesis", augment="albef").crop_scale == ALBEF_CROP_SCALE
    assert preset_config("thesis").crop_scale == (0.5, 1.0) and preset_config("thesis").augment == "crop"
    assert preset_config("tiny", augment="albef", crop_scale=(0.8, 1.0)).crop_scale == (0.8, 1.0)
