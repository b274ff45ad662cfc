"""ITC's all-gather carries gradient: two Gloo ranks give the same gradients as one process holding both."""
from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from trainer.distributed import gather_no_grad, gather_with_grad
from trainer.losses import itc_loss


def features(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    image = F.normalize(torch.randn(8, 16, generator=g), dim=1)
    text = F.normalize(torch.randn(8, 16, generator=g), dim=1)
    ids = torch.tensor([0, 0, 1, 2, 3, 4, 5, 1])
    return image, text, ids


def local_loss(image: torch.Tensor, text: torch.Tensor, ids: torch.Tensor, rows: slice,
               image_all: torch.Tensor, text_all: torch.Tensor) -> torch.Tensor:
    loss, _, _ = itc_loss(image[rows], text[rows], image_all, text_all, ids[rows], ids, torch.tensor(0.1))
    return loss


def worker(rank: int, port: int, queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    image, text, ids = features(0)
    rows = slice(4 * rank, 4 * rank + 4)
    mine_i = image[rows].clone().requires_grad_(True)
    mine_t = text[rows].clone().requires_grad_(True)
    loss, _, _ = itc_loss(mine_i, mine_t, gather_with_grad(mine_i), gather_with_grad(mine_t), ids[rows],
                          gather_no_grad(ids[rows]), torch.tensor(0.1))
    loss.backward()
    queue.put((rank, loss.item(), mine_i.grad.numpy(), mine_t.grad.numpy()))  # numpy: copied, not fd-shared
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.slow
def test_gather_with_grad_matches_single_process() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(r, port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    results = sorted(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    image, text, ids = features(0)
    image.requires_grad_(True)
    text.requires_grad_(True)
    total = sum(local_loss(image, text, ids, slice(4 * r, 4 * r + 4), image, text) for r in range(2))
    total.backward()
    for rank, loss, grad_i, grad_t in results:
        rows = slice(4 * rank, 4 * rank + 4)
        assert loss == pytest.approx(local_loss(image, text, ids, rows, image, text).item(), rel=1e-5)
        assert torch.allclose(torch.from_numpy(grad_i), image.grad[rows], atol=1e-6)
        assert torch.allclose(torch.from_numpy(grad_t), text.grad[rows], atol=1e-6)
