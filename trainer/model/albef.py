"""ALBEF's additions for the reference row: a momentum (EMA) copy of the model and an ITC feature queue.

The queue is a ring buffer written at `(ptr + arange(n)) % size`, so any global batch size works.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NO_IMAGE = -1  # id of the queue's initial random entries: never equal to a real (non-negative) image id


class MomentumQueue(nn.Module):
    """Momentum model (EMA of the online model) plus image/text feature queues with their image ids."""

    def __init__(self, model: nn.Module, momentum: float, queue_size: int, embed_dim: int) -> None:
        super().__init__()
        self.momentum = momentum
        self.model_m = copy.deepcopy(model)
        for p in self.model_m.parameters():
            p.requires_grad_(False)
        self.register_buffer("image_queue", F.normalize(torch.randn(queue_size, embed_dim), dim=1))
        self.register_buffer("text_queue", F.normalize(torch.randn(queue_size, embed_dim), dim=1))
        self.register_buffer("id_queue", torch.full((queue_size,), NO_IMAGE, dtype=torch.long))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """EMA step: p_m = m * p_m + (1 - m) * p (foreach: one kernel launch per group, no sync)."""
        online = [p.detach() for p in model.parameters()]
        ema = list(self.model_m.parameters())
        torch._foreach_mul_(ema, self.momentum)
        torch._foreach_add_(ema, online, alpha=1 - self.momentum)

    @torch.no_grad()
    def enqueue(self, image_feat: Tensor, text_feat: Tensor, image_ids: Tensor) -> None:
        """Write the (gathered) batch into the ring buffers; keeps the newest `size` entries."""
        size = self.id_queue.shape[0]
        image_feat, text_feat, image_ids = image_feat[-size:], text_feat[-size:], image_ids[-size:]
        idx = (self.ptr + torch.arange(image_ids.shape[0], device=image_ids.device)) % size
        self.image_queue[idx] = image_feat.to(self.image_queue.dtype)
        self.text_queue[idx] = text_feat.to(self.text_queue.dtype)
        self.id_queue[idx] = image_ids
        self.ptr.copy_((self.ptr + image_ids.shape[0]) % size)
