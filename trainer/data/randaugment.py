"""ALBEF's pre-training RandAugment, written with PIL and drawn from a given `random.Random` (so an image's
augmentation follows from its seed and resume stays exact).

As ALBEF's `RandomAugment(2, 7, augs=[...])`: two operations drawn with replacement from ten, each applied with
probability 0.5, at magnitude 7 of 10: brightness and sharpness factor 1.36, shear 0.21, rotation 21 degrees,
translation 7 px at ALBEF's 256 px (here 7/256 of the image side); geometric operations have a random sign
and fill with grey (128).
"""
from __future__ import annotations

import random
from collections.abc import Callable

from PIL import Image, ImageEnhance, ImageOps

N_OPS, MAGNITUDE, MAX_LEVEL, APPLY_P = 2, 7, 10, 0.5
LEVEL = MAGNITUDE / MAX_LEVEL
FILL = (128, 128, 128)
TRANSLATE_AT_256 = 10.0  # ALBEF's translate_const, in pixels of its 256 px images


def _signed(value: float, rng: random.Random) -> float:
    return -value if rng.random() < 0.5 else value


def _affine(image: Image.Image, data: tuple[float, ...]) -> Image.Image:
    return image.transform(image.size, Image.AFFINE, data, Image.BILINEAR, fillcolor=FILL)


def _shear_x(image: Image.Image, rng: random.Random) -> Image.Image:
    return _affine(image, (1, _signed(0.3 * LEVEL, rng), 0, 0, 1, 0))


def _shear_y(image: Image.Image, rng: random.Random) -> Image.Image:
    return _affine(image, (1, 0, 0, _signed(0.3 * LEVEL, rng), 1, 0))


def _translate_x(image: Image.Image, rng: random.Random) -> Image.Image:
    return _affine(image, (1, 0, _signed(TRANSLATE_AT_256 * LEVEL * image.width / 256, rng), 0, 1, 0))


def _translate_y(image: Image.Image, rng: random.Random) -> Image.Image:
    return _affine(image, (1, 0, 0, 0, 1, _signed(TRANSLATE_AT_256 * LEVEL * image.height / 256, rng)))


def _rotate(image: Image.Image, rng: random.Random) -> Image.Image:
    return image.rotate(_signed(30 * LEVEL, rng), Image.BILINEAR, fillcolor=FILL)


def _enhance(kind: type) -> Callable[[Image.Image, random.Random], Image.Image]:
    return lambda image, rng: kind(image).enhance(1.8 * LEVEL + 0.1)


OPS: dict[str, Callable[[Image.Image, random.Random], Image.Image]] = {
    "Identity": lambda image, rng: image,
    "AutoContrast": lambda image, rng: ImageOps.autocontrast(image),
    "Equalize": lambda image, rng: ImageOps.equalize(image),
    "Brightness": _enhance(ImageEnhance.Brightness),
    "Sharpness": _enhance(ImageEnhance.Sharpness),
    "ShearX": _shear_x,
    "ShearY": _shear_y,
    "TranslateX": _translate_x,
    "TranslateY": _translate_y,
    "Rotate": _rotate,
}


def rand_augment(image: Image.Image, rng: random.Random) -> Image.Image:
    """Two operations drawn from OPS, each applied with probability 0.5 (ALBEF's order of draws)."""
    names = [rng.choice(tuple(OPS)) for _ in range(N_OPS)]
    for name in names:
        if rng.random() <= APPLY_P:
            image = OPS[name](image, rng)
    return image
