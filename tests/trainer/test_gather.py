"""ITC's all-gather carries gradient: two Gloo ranks give the same gradients as one process holding both."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trainer.engine.distributed import gather_no_grad, gather_with_grad
from trainer.model.losses import itc_loss
from two_ranks import run_two_ranks


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


def worker(rank: int, queue) -> None:
    image, text, ids = features(0)
    rows = slice(4 * rank, 4 * rank + 4)
    mine_i = image[rows].clone().requires_grad_(True)
    mine_t = text[rows].clone().requires_grad_(True)
    loss, _, _ = itc_loss(mine_i, mine_t, gather_with_grad(mine_i), gather_with_grad(mine_t), ids[rows],
                          gather_no_grad(ids[rows]), torch.tensor(0.1))
    loss.backward()
    queue.put((rank, loss.item(), mine_i.grad.numpy(), mine_t.grad.numpy()))  # numpy: copied, not fd-shared


@pytest.mark.slow
def test_gather_with_grad_matches_single_process() -> None:
    results = sorted(run_two_ranks(worker, results=2))
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
