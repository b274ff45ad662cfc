"""Shared plumbing for the evaluation tasks: device, model loading, results, image loading, tokenising.

Heavy libraries (torch, PIL, transformers, the trainer) are imported here, so import this module
only inside a command's `run`.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from toolbox.atomic import atomic_write_json
from toolbox.errors import UserError
from trainer.model.posmask import load_pretrained

log = logging.getLogger(__name__)


def default_workers() -> int:
    """DataLoader workers for image decoding: a few on a big machine, none on a small CPU box."""
    cpus = os.cpu_count() or 1
    return 0 if cpus <= 2 else min(8, cpus - 1)


def load_model(run_dir: str | os.PathLike[str], device: torch.device):
    """The pre-trained model of a run (or model dir) in eval mode, via the trainer's `load_pretrained`."""
    path = Path(run_dir)
    if not path.exists():
        raise UserError(f"{run_dir}: no such run directory")
    model = load_pretrained(path, device)
    model.eval()
    return model


def load_json(path: str | os.PathLike[str], what: str = "annotation file") -> Any:
    """Parse a JSON file; a one-line UserError when it is absent or broken."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{what} not found: {p}")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{p}: not readable JSON ({err})") from None


def json_safe(obj: Any) -> Any:
    """NaN/inf -> None and tuples -> lists, recursively, so the file is strict JSON."""
    import math

    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_result(path: str | os.PathLike[str], result: Any) -> Path:
    """Write a task's result JSON (strict: NaN becomes null) atomically and log where it went."""
    p = Path(path)
    atomic_write_json(p, json_safe(result))
    log.info("wrote %s", p)
    return p


def load_pixels(path: str | os.PathLike[str], transform: Callable, image_size: int) -> tuple[torch.Tensor, bool]:
    """(transformed RGB image, True), or (a blank image, False) when the file is missing or broken."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return transform(image.convert("RGB")), True
    except (OSError, UnidentifiedImageError, ValueError):
        return torch.zeros(3, image_size, image_size), False


class ImageFiles(Dataset):
    """Images from paths, transformed for the model; a missing or broken file yields ok=False."""

    def __init__(self, paths: Sequence[Path], transform: Callable, image_size: int) -> None:
        self.paths = list(paths)
        self.transform = transform
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor, bool]:
        return (index, *load_pixels(self.paths[index], self.transform, self.image_size))


def image_transform(model) -> tuple[Callable, int]:
    """The trainer's eval transform for the model's image size."""
    from trainer.data.transforms import eval_transform

    size = int(model.config.image_size)
    return eval_transform(size), size


def image_loader(paths: Sequence[Path], model, batch_size: int, workers: int | None = None) -> DataLoader:
    """A DataLoader yielding (indices, pixels, ok) batches in path order."""
    transform, size = image_transform(model)
    workers = default_workers() if workers is None else workers
    return DataLoader(ImageFiles(paths, transform, size), batch_size=batch_size, shuffle=False,
                      num_workers=workers, pin_memory=torch.cuda.is_available())


def tokenize(texts: Sequence[str], max_len: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT uncased ids and attention mask, padded to the longest text, truncated to `max_len`."""
    from shards.tokenizer import load_tokenizer

    tokenizer, _ = load_tokenizer()
    enc = tokenizer(list(texts), padding="longest", truncation=True, max_length=max_len, return_tensors="pt")
    return enc["input_ids"].to(device), enc["attention_mask"].to(device)

