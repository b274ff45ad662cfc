"""torchrun/DDP plumbing inside the processes: process-group setup (NCCL on GPU, Gloo on CPU), the DDP
wrapper and gathers (the relaunch under torchrun is trainer.engine.launch)."""
from __future__ import annotations

import inspect
import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from toolbox.devices import pick_device
from trainer.engine.launch import under_torchrun

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(use_cuda: bool) -> DistInfo:
    """Init the process group when under torchrun (once); pick the device."""
    if not under_torchrun():
        return DistInfo(device=pick_device("cuda" if use_cuda else "cpu", 0))
    rank, world, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    device = pick_device("cuda" if use_cuda else "cpu", local)
    if not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(local)
            dist.init_process_group("nccl", device_id=device)
        else:
            dist.init_process_group("gloo")
    return DistInfo(rank=rank, world_size=world, device=device)


def teardown() -> None:
    """Destroy the process group if one exists."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_dist() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def wrap_ddp(module: nn.Module, device: torch.device, find_unused_parameters: bool = False,
             sync_buffers: bool = True) -> nn.Module:
    """DistributedDataParallel around `module`; `sync_buffers=False` when every rank updates its buffers
    identically (ALBEF's queues), so DDP does not broadcast them each step."""
    ddp = nn.parallel.DistributedDataParallel
    buffers: dict[str, bool] = {}
    if not sync_buffers:
        name = "forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(ddp).parameters \
            else "broadcast_buffers"
        buffers[name] = False
    return ddp(module, device_ids=[device.index] if device.type == "cuda" else None,
               find_unused_parameters=find_unused_parameters, **buffers)


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums the gradients of all ranks and returns this rank's slice.

    Uses all_reduce rather than reduce_scatter so it also works on Gloo.
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        ctx.rank, ctx.n = dist.get_rank(), x.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.n:(ctx.rank + 1) * ctx.n]


def gather_with_grad(x: Tensor) -> Tensor:
    """Concatenate `x` from all ranks (equal shapes), gradient flowing back to each rank's part."""
    return _GatherWithGrad.apply(x) if is_dist() else x


@torch.no_grad()
def gather_no_grad(x: Tensor) -> Tensor:
    """Concatenate `x` from all ranks, no gradient."""
    if not is_dist():
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's picklable `obj`, in rank order (a collective; `[obj]` in a single process)."""
    if not is_dist():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(x: Tensor) -> Tensor:
    """Sum over ranks (in place, returned)."""
    if is_dist():
        dist.all_reduce(x)
    return x
