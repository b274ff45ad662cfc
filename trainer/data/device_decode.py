"""`--decode gpu`: the loader workers only read the tars; the GPU decodes, crops and resizes the images.

A worker reads each JPEG's header (size, mode; no decoding) and draws the sample's crop box from the sample's
own seed, exactly as the CPU path does; the device then decodes the batch's JPEGs in one call
(`torchvision.io.decode_jpeg`, batched on CUDA), crops each to its box and resizes it as the CPU path does
(`trainer.data.transforms.resize_box`: the same box and antialiased bicubic kernel, in float on the device, rounded to
uint8; pixel values may differ slightly from the CPU path's, whose JPEG decoder differs). Images the device may
not decode (not a JPEG, CMYK, bytes after or no end-of-image marker) are cropped on the CPU in the worker, as with
`--decode cpu` (a truncated one is skipped there as corrupt), and one that still fails on the device becomes a
grey crop (logged). Without CUDA,
`device_decode` falls back to the CPU path: the workers decode, which gives the same crops as `--decode cpu`.
"""
from __future__ import annotations

import io
import logging
import random

import torch
from torch import Tensor

from toolbox.errors import UserError
from trainer.data.transforms import crop_box, resize_box

log = logging.getLogger(__name__)
DECODES: tuple[str, ...] = ("cpu", "gpu")
DEVICE_MODES = ("RGB", "L")  # JPEG colour modes decoded on the device (CMYK and others: the CPU path)


def check_decode(decode: str, augment: str) -> None:
    """One line for a `--decode` the run cannot use."""
    if decode not in DECODES:
        raise UserError(f"--decode {decode!r}; valid: {', '.join(DECODES)}")
    if decode == "gpu" and augment != "crop":
        raise UserError(f"--decode gpu crops and resizes only; --augment {augment} needs --decode cpu")


def device_decode(decode: str, device: torch.device, augment: str) -> bool:
    """Whether the device decodes the images: `--decode gpu` on a CUDA device (else one log line, CPU path)."""
    check_decode(decode, augment)
    if decode == "cpu":
        return False
    if device.type != "cuda":
        log.info("--decode gpu: no CUDA device here, so the loader workers decode (the same crops)")
        return False
    return True


def jpeg_box(data: bytes, rng: random.Random, scale: tuple[float, float]) -> tuple[int, int, int, int] | None:
    """The crop box of a JPEG the device can decode, from its header alone; None for any other image (the
    worker decodes it), a JPEG that does not end with its end-of-image marker included (truncated, or a
    camera's trailer after it)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        if image.format != "JPEG" or image.mode not in DEVICE_MODES:
            return None
        width, height = image.size
    if not data.endswith(b"\xff\xd9"):
        return None
    return crop_box(width, height, rng, scale)


def decode_crops(jpegs: list[Tensor], boxes: Tensor, size: int, device: torch.device) -> Tensor:
    """uint8 [n, size, size, 3] crops of n JPEGs (1-d uint8 CPU tensors) at their boxes (int [n, 4]: left, top,
    right, bottom), decoded on `device`."""
    from torchvision.io import ImageReadMode, decode_jpeg

    try:
        images = decode_jpeg(jpegs, mode=ImageReadMode.RGB, device=device)
    except RuntimeError:  # a JPEG that passed the header checks but does not decode: find it, grey it
        images = [_decode_or_none(jpeg, device) for jpeg in jpegs]
    grey = torch.full((size, size, 3), 128, dtype=torch.uint8, device=device)
    return torch.stack([grey if image is None else resize_box(image.permute(1, 2, 0), tuple(box), size, in_float=True)
                        for image, box in zip(images, boxes.tolist())])


def _decode_or_none(jpeg: Tensor, device: torch.device) -> Tensor | None:
    """One JPEG decoded on the device, or (with a warning) None: a grey crop takes its place."""
    from torchvision.io import ImageReadMode, decode_jpeg

    try:
        return decode_jpeg(jpeg, mode=ImageReadMode.RGB, device=device)
    except RuntimeError as err:
        log.warning("a JPEG does not decode on the device; a grey image takes its place: %s", err)
        return None
