"""The three pre-training losses: ITC (symmetric InfoNCE, shared images are positives), ITM with hard
negatives drawn from ITC similarities (Gumbel-max: no host sync, never fails), and MLM."""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from trainer.engine.distributed import all_reduce_sum, is_dist
from trainer.masking.masker import IGNORE_INDEX
from trainer.model.precision import similarity

MLM_MEANS: tuple[str, ...] = ("global", "rank")  # how the MLM loss averages over ranks: see mlm_denominator


def positive_targets(row_ids: Tensor, col_ids: Tensor) -> Tensor:
    """[Br, Bc] float targets: 1/(number of positives) where image ids match, else 0."""
    same = (row_ids[:, None] == col_ids[None, :]).float()
    return same / same.sum(1, keepdim=True).clamp(min=1.0)


def itc_loss(image_feat: Tensor, text_feat: Tensor, image_feat_all: Tensor, text_feat_all: Tensor,
             image_ids: Tensor, image_ids_all: Tensor, temp: Tensor,
             soft_i2t: Tensor | None = None, soft_t2i: Tensor | None = None, alpha: float | Tensor = 0.0,
             ) -> tuple[Tensor, Tensor, Tensor]:
    """Symmetric InfoNCE of local rows against the gathered columns; every caption of the same image
    is a positive. Optional ALBEF soft targets are mixed in with weight `alpha`. Similarities and loss are
    float32 whatever the autocast.

    Returns (loss, sim_i2t [B, Ball], sim_t2i [B, Ball]).
    """
    sim_i2t = similarity(image_feat, text_feat_all) / temp
    sim_t2i = similarity(text_feat, image_feat_all) / temp
    targets = positive_targets(image_ids, image_ids_all)
    t_i2t = targets if soft_i2t is None else alpha * soft_i2t + (1 - alpha) * targets
    t_t2i = targets if soft_t2i is None else alpha * soft_t2i + (1 - alpha) * targets
    loss_i2t = -(F.log_softmax(sim_i2t, dim=1) * t_i2t).sum(1).mean()
    loss_t2i = -(F.log_softmax(sim_t2i, dim=1) * t_t2i).sum(1).mean()
    return (loss_i2t + loss_t2i) / 2, sim_i2t, sim_t2i


@torch.no_grad()
def sample_hard_negatives(sim: Tensor, row_ids: Tensor, col_ids: Tensor,
                          generator: torch.Generator | None = None, hardness: float | Tensor = 1.0) -> Tensor:
    """For each row, one column index drawn with probability softmax(sim) over columns whose image id
    differs (Gumbel-max on the logits: no host sync, no multinomial failure). A row with no valid
    column (every candidate shows the same image) falls back to a uniformly random column; the caller
    labels each pair by comparing image ids, so such a pair is never mislabelled as a negative.
    With `hardness` < 1, each row is drawn uniformly instead with probability 1 - hardness (a curriculum).
    """
    valid = row_ids[:, None] != col_ids[None, :]
    if isinstance(hardness, Tensor) or hardness < 1.0:  # a tensor: no data-dependent branch (torch.compile)
        hard_rows = torch.rand(sim.shape[0], 1, device=sim.device, generator=generator) < hardness
        sim = torch.where(hard_rows, sim, torch.zeros_like(sim))
    uniform = torch.rand(sim.shape, device=sim.device, generator=generator).clamp_(1e-20, 1.0)
    gumbel = -torch.log(-torch.log(uniform))
    scores = torch.where(valid, sim.float() + gumbel, torch.full_like(gumbel, float("-inf")))
    any_valid = valid.any(1)
    fallback = gumbel.argmax(1)
    return torch.where(any_valid, scores.argmax(1), fallback)


def itm_labels(row_ids: Tensor, partner_ids: Tensor) -> Tensor:
    """1 where the paired image ids match (a true match), 0 otherwise."""
    return (row_ids == partner_ids).long()


def mlm_denominator(count: Tensor, mean: str) -> Tensor | None:
    """What this rank's summed MLM loss is divided by, given its number of masked tokens. `rank` (ALBEF): that
    number (None: `mlm_loss`'s own mean), which DDP then averages over ranks, so a token on a rank with few
    masked tokens weighs more. `global`: the mean number over ranks (one all-reduce), so that after DDP's
    average every masked token of the global batch weighs the same: the single-process full-batch gradient."""
    if mean == "rank":
        return None
    if mean != "global":
        raise ValueError(f"MLM mean {mean!r}; valid: {', '.join(MLM_MEANS)}")
    total = all_reduce_sum(count.detach().float().clone())
    return total.clamp(min=1) / (dist.get_world_size() if is_dist() else 1)


def mlm_loss(logits: Tensor, labels: Tensor, denominator: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Cross-entropy summed over masked positions ([..., V] logits, [...] labels, -100 = ignore) and divided
    by `denominator` (> 0; default: the number of masked positions, a mean); exactly 0 (with a gradient path)
    when nothing is masked.

    Returns (loss, number of masked positions).
    """
    count = (labels != IGNORE_INDEX).sum()
    total = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
                            ignore_index=IGNORE_INDEX, reduction="sum")
    return total / (count.clamp(min=1) if denominator is None else denominator), count


def distill_loss(logits: Tensor, soft_targets: Tensor, labels: Tensor, denominator: Tensor | None = None) -> Tensor:
    """ALBEF's MLM distillation: cross-entropy against momentum-model probabilities, summed over masked
    positions and divided by `denominator` (> 0; default: their number)."""
    keep = (labels != IGNORE_INDEX).float()
    per_token = -(F.log_softmax(logits.float(), dim=-1) * soft_targets).sum(-1)
    return (per_token * keep).sum() / (keep.sum().clamp(min=1) if denominator is None else denominator)
