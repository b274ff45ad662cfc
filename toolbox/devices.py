"""The one device pick: the named device, else the GPU when one is present, else the CPU."""
from __future__ import annotations

from typing import Any


def pick_device(name: str | None = None, index: int | None = None) -> Any:  # -> torch.device
    """`name` (e.g. "cpu", "cuda:1") when given, else "cuda" when a GPU is visible, else "cpu"; a bare "cuda"
    takes `index` (a process's local rank) when given."""
    import torch

    if name is None:
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name, index) if name == "cuda" and index is not None else torch.device(name)
