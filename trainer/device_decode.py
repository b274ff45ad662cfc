"""`--decode gpu`: the loader workers only read the tars; the GPU decodes, crops and resizes the images.

A worker reads each JPEG's header (size, mode; no decoding) and draws the sample's crop box from the sample's
own seed, exactly as the CPU path does; the device then decodes the batch's JPEGs in one call
(`torchvision.io.decode_jpeg`, batched on CUDA), crops each to its box and resizes it as the CPU path does
(`trainer.transforms.resize_box`: antialiased bicubic, in float on the device, rounded to uint8). Images the
device cannot decode (not a JPEG, CMYK) are cropped on the CPU in the worker, as before; a truncated JPEG is
skipped there as corrupt, and one that still fails on the device becomes a grey image (logged). Without CUDA,
`device_decode` falls back to the CPU path: the workers decode, which gives the same crops as `--decode cpu`.
"""
from __future__ import annotations

import io
import logging
import random

import torch
from torch import Tensor

from shards.errors import UserError
from trainer.transforms import crop_box, resize_box

log = logging.getLogger(__name__)
DECODES: tuple[str, ...] = ("cpu", "gpu")
DEVICE_MODES = ("RGB", "L")  # JPEG colour modes decoded on the device (CMYK and others: the CPU path)


def device_decode(decode: str, device: torch.device, augment: str) -> bool:
    """Whether the device decodes the images: `--decode gpu` on a CUDA device (else one log line, CPU path)."""
    if decode not in DECODES:
        raise UserError(f"--decode {decode!r}; valid: {', '.join(DECODES)}")
    if decode == "cpu":
        return False
    if augment != "crop":
        raise UserError(f"--decode gpu crops and resizes only; --augment {augment} needs --decode cpu")
    if device.type != "cuda":
        log.info("--decode gpu: no CUDA device here, so the loader workers decode (the same crops)")
        return False
    return True


def jpeg_box(data: bytes, rng: random.Random, scale: tuple[float, float]) -> tuple[int, int, int, int] | None:
    """The crop box of a JPEG the device can decode, from its header alone; None for any other image.
    Raises ValueError for a JPEG without its end marker (truncated), which the device could not decode."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        if image.format != "JPEG" or image.mode not in DEVICE_MODES:
            return None
        width, height = image.size
    if not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        raise ValueError("truncated JPEG (no end-of-image marker)")
    return crop_box(width, height, rng, scale)


def decode_crops(jpegs: list[Tensor], boxes: Tensor, size: int, device: torch.device) -> Tensor:
    """uint8 [n, size, size, 3] crops of n JPEGs (1-d uint8 CPU tensors) at their boxes (int [n, 4]: left, top,
    right, bottom), decoded on `device`."""
    from torchvision.io import ImageReadMode, decode_jpeg

    try:
        images = decode_jpeg(jpegs, mode=ImageReadMode.RGB, device=device)
    except RuntimeError:  # a JPEG that passed the header checks but does not decode: find it, grey it
        images = [_decode_or_grey(jpeg, device) for jpeg in jpegs]
    return torch.stack([resize_box(image.permute(1, 2, 0), tuple(box), size, in_float=True)
                        for image, box in zip(images, boxes.tolist())])


def _decode_or_grey(jpeg: Tensor, device: torch.device) -> Tensor:
    """One JPEG decoded on the device, or (with a warning) a grey image in its place."""
    from torchvision.io import ImageReadMode, decode_jpeg

    try:
        return decode_jpeg(jpeg, mode=ImageReadMode.RGB, device=device)
    except RuntimeError as err:
        log.warning("a JPEG does not decode on the device; a grey image takes its place: %s", err)
        return torch.full((3, 1, 1), 128, dtype=torch.uint8, device=device)
