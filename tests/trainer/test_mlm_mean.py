"""`--mlm-mean`: with `global`, two Gloo ranks under DDP give the single-process full-batch MLM gradient even when
the ranks hold very different numbers of masked tokens; `rank` (ALBEF's per-rank mean) does not."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from trainer.model.losses import mlm_denominator, mlm_loss
from trainer.masking.masker import IGNORE_INDEX
from two_ranks import run_two_ranks

ROWS = 10  # tokens per rank


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    """20 token states and labels; rank 0's half has 9 masked tokens, rank 1's half has 1."""
    g = torch.Generator().manual_seed(0)
    states = torch.randn(2 * ROWS, 8, generator=g)
    labels = torch.randint(0, 5, (2 * ROWS,), generator=g)
    labels[9] = labels[11:] = IGNORE_INDEX
    return states, labels


def head() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(8, 5)


def worker(rank: int, queue) -> None:
    states, labels = batch()
    rows = slice(ROWS * rank, ROWS * rank + ROWS)
    local = head()
    net = DistributedDataParallel(local)
    for mean in ("global", "rank"):
        local.zero_grad()
        mine = labels[rows]
        loss, _ = mlm_loss(net(states[rows]), mine, mlm_denominator((mine != IGNORE_INDEX).sum(), mean))
        loss.backward()
        queue.put((mean, rank, local.weight.grad.numpy().copy()))


@pytest.mark.slow
def test_global_mean_gives_the_full_batch_gradient_on_two_ranks() -> None:
    grads = {(mean, rank): torch.from_numpy(g) for mean, rank, g in run_two_ranks(worker, results=4)}
    states, labels = batch()
    full = head()
    loss, count = mlm_loss(full(states), labels)
    loss.backward()
    assert count == 10
    for rank in (0, 1):
        assert torch.allclose(grads["global", rank], full.weight.grad, atol=1e-6)
        assert not torch.allclose(grads["rank", rank], full.weight.grad, atol=1e-3)  # the lone token weighs 9x


def test_single_process_means_agree_and_bad_values_fail() -> None:
    count = torch.tensor(7)
    assert mlm_denominator(count, "rank") is None and mlm_denominator(count, "global").item() == 7.0
    assert mlm_denominator(torch.tensor(0), "global").item() == 1.0  # nothing masked: loss 0, no division by 0
    with pytest.raises(ValueError, match="valid: global, rank"):
        mlm_denominator(count, "token")
