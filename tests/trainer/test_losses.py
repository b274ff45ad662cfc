"""ITC positives by image id, hard-negative sampling, MLM loss, and the gather-with-gradient op."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from trainer.model.losses import itc_loss, itm_labels, mlm_loss, positive_targets, sample_hard_negatives
from trainer.masking.masker import IGNORE_INDEX


def test_shared_image_ids_are_positives() -> None:
    ids = torch.tensor([7, 7, 3, 9])
    t = positive_targets(ids, ids)
    assert torch.allclose(t[0], torch.tensor([0.5, 0.5, 0.0, 0.0]))
    assert torch.allclose(t.sum(1), torch.ones(4))
    # captions 0 and 1 show image 7; other images are orthogonal. Moving caption 1's feature towards
    # caption 0's must lower the loss when they share the image id, and raise it when they do not.
    base = torch.eye(16)[[0, 0, 1, 2]]
    apart = base.clone()
    apart[1] = F.normalize(base[1] + 0.8 * torch.eye(16)[3], dim=0)
    closer = base.clone()
    closer[1] = F.normalize(base[1] + 0.4 * torch.eye(16)[3], dim=0)

    def loss(feats: torch.Tensor, row_ids: torch.Tensor) -> float:
        value, sim_i2t, _ = itc_loss(feats, feats, feats, feats, row_ids, row_ids, torch.tensor(0.1))
        expected = -(F.log_softmax(sim_i2t, 1) * positive_targets(row_ids, row_ids)).sum(1).mean()
        assert torch.allclose(value, expected)
        return value.item()

    unique = torch.tensor([1, 2, 3, 4])
    assert loss(closer, ids) < loss(apart, ids)
    assert loss(closer, unique) > loss(apart, unique)


def test_hard_negatives_never_positive() -> None:
    g = torch.Generator().manual_seed(0)
    ids = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3])
    sim = torch.randn(8, 8, generator=g) * 10
    sim[ids[:, None] == ids[None, :]] = 100.0  # positives look most similar: the trap
    for _ in range(200):
        pick = sample_hard_negatives(sim, ids, ids, generator=g)
        assert (ids[pick] != ids).all()


def test_hard_negatives_follow_similarity() -> None:
    g = torch.Generator().manual_seed(1)
    ids = torch.arange(4)
    sim = torch.tensor([[0.0, 5.0, 0.0, 0.0]] * 4)  # column 1 is the hardest negative for rows 0, 2, 3
    picks = torch.stack([sample_hard_negatives(sim, ids, ids, generator=g) for _ in range(500)])
    share = (picks[:, 0] == 1).float().mean().item()
    expected = torch.softmax(torch.tensor([5.0, 0.0, 0.0]), 0)[0].item()
    assert abs(share - expected) < 0.05


def test_all_zero_rows_survive() -> None:
    ids = torch.tensor([4, 4, 4, 4])  # every caption shows the same image: no valid negative at all
    for sim in (torch.zeros(4, 4), torch.full((4, 4), -1e9), torch.full((4, 4), float("-inf"))):
        pick = sample_hard_negatives(sim, ids, ids)
        assert pick.shape == (4,) and ((pick >= 0) & (pick < 4)).all()
        assert (itm_labels(ids, ids[pick]) == 1).all(), "a fallback pair of one image is labelled a match"
    mixed = torch.tensor([5, 5, 6])
    sim = torch.full((3, 3), -1e30)
    assert (mixed[sample_hard_negatives(sim, mixed, mixed)] != mixed).all()  # underflowing rows still sample


def test_mlm_loss_masked_positions_only() -> None:
    logits = torch.randn(2, 5, 11)
    labels = torch.full((2, 5), IGNORE_INDEX)
    labels[0, 1], labels[1, 3] = 4, 7
    loss, count = mlm_loss(logits, labels)
    expected = (F.cross_entropy(logits[0, 1][None], torch.tensor([4]))
                + F.cross_entropy(logits[1, 3][None], torch.tensor([7]))) / 2
    assert int(count) == 2 and torch.allclose(loss, expected)


def test_hardness_zero_is_uniform_over_other_images() -> None:
    g = torch.Generator().manual_seed(2)
    ids = torch.tensor([0, 1, 2, 3])
    sim = torch.tensor([[0.0, 50.0, 0.0, 0.0]] * 4)  # hard sampling would always pick column 1
    picks = torch.stack([sample_hard_negatives(sim, ids, ids, generator=g, hardness=torch.tensor(0.0))
                         for _ in range(400)])
    share = (picks[:, 0] == 1).float().mean().item()
    assert abs(share - 1 / 3) < 0.08 and (picks[:, 0] != 0).all()
