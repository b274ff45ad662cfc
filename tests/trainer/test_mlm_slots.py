"""The fixed-shape MLM targets (trainer/masking/capacity.py): K slots per batch from its shape and the mask spec,
the masked positions first; the MLM loss and its gradient equal the boolean-indexed form of before, and a batch
that masks more than K tokens leaves the last ones out and counts them."""
from __future__ import annotations

import pytest
import torch

from trainer.config import preset_config
from trainer.masking.capacity import capacity_share, class_shares, select_slots, slots
from trainer.masking.masker import IGNORE_INDEX, Masker
from trainer.masking.spec import parse_mask_spec
from trainer.model.losses import mlm_loss
from trainer.model.objective import Pretrainer
from trainer.model.posmask import PosMaskModel

MASK_ID = 103


@pytest.mark.parametrize(("spec", "share"), [
    (parse_mask_spec("random"), 0.2375), (parse_mask_spec("DET"), 0.925), (parse_mask_spec("DET", 1.0), 1.0),
    (parse_mask_spec("NOUN:0.5,DET:0.3"), 0.675), (parse_mask_spec("DET", budget=0.15), 0.2375),
    (parse_mask_spec("PROPN", 0.1, fallback="random"), 0.2375), (parse_mask_spec("random", 0.6), 0.8),
    (parse_mask_spec(None, 1.0, curriculum="DET>NOUN"), 1.0), (parse_mask_spec("none"), 0.0),
    (parse_mask_spec("random", 1.0), 1.0)])
def test_capacity_follows_the_largest_probability(spec, share) -> None:
    assert capacity_share(spec) == pytest.approx(share)


SCENES_LIKE = {"wordpiece": {"ADJ": 236, "NOUN": 185, "DET": 140, "PUNCT": 111, "PROPN": 16, "VERB": 39,
                             "OTHER": 273}}


def test_class_shares_sum_the_outputs_and_need_every_histogram() -> None:
    other = {"wordpiece": {"NOUN": 500, "DET": 500}}
    shares = class_shares([SCENES_LIKE, other])
    assert shares is not None and shares["NOUN"] == pytest.approx(685 / 2000)
    assert sum(shares.values()) == pytest.approx(1)
    assert class_shares([SCENES_LIKE, None]) is None and class_shares([]) is None
    assert class_shares([{"word": {"NOUN": 3}}]) is None and class_shares([{"wordpiece": {"NOUN": 0}}]) is None


@pytest.mark.parametrize(("spec", "share"), [
    (parse_mask_spec("NOUN"), 1.25 * 0.7 * 0.185 + 0.05),  # a class: its ratio times its share of the wordpieces
    (parse_mask_spec("NOUN:0.5,DET:0.3"), 1.25 * (0.5 * 0.185 + 0.3 * 0.14) + 0.05),
    (parse_mask_spec("PROPN", 0.1, fallback="random"), 1.25 * min(0.15, 0.1 * 0.016 + 0.15) + 0.05),
    (parse_mask_spec(None, 1.0, curriculum="DET>NOUN"), 1.25 * 0.185 + 0.05),  # the largest stage
    (parse_mask_spec("random"), 0.2375), (parse_mask_spec("random", 0.6), 0.8),  # every word: as without shares
    (parse_mask_spec("DET", budget=0.15), 0.2375), (parse_mask_spec("none"), 0.0)])
def test_class_ratios_get_the_slots_their_share_of_the_shards_needs(spec, share) -> None:
    shares = class_shares([SCENES_LIKE])
    assert capacity_share(spec, shares) == pytest.approx(share)
    assert capacity_share(spec, shares) <= capacity_share(spec)  # never more than the ratio alone gives


def test_a_class_the_shards_lack_falls_back_to_its_ratio_bound_only_through_the_fallback() -> None:
    shares = class_shares([{"wordpiece": {"NOUN": 10}}])
    assert capacity_share(parse_mask_spec("DET"), shares) == pytest.approx(0.05)  # no DET: no slot beyond the spread
    assert capacity_share(parse_mask_spec("DET", fallback="random"), shares) == pytest.approx(1.25 * 0.15 + 0.05)


def test_slots_are_a_multiple_of_8_and_never_more_than_the_positions() -> None:
    assert slots(64 * 30, 0.2375) == 456 and slots(64 * 30, 0.5) == 960 and slots(7, 0.5) == 7
    assert slots(100, 1.0) == 100 and slots(100, 0.0) == 0


def test_masked_positions_come_first_in_order_and_overflow_is_counted() -> None:
    masked = torch.rand(6, 11, generator=torch.Generator().manual_seed(0)) < 0.3
    flat = masked.reshape(-1).nonzero().reshape(-1)
    positions, dropped = select_slots(masked, 40)
    assert positions.shape == (40,) and int(dropped) == 0
    assert positions[: len(flat)].tolist() == flat.tolist() and not masked.reshape(-1)[positions[len(flat):]].any()
    positions, dropped = select_slots(masked, 8)
    assert positions.tolist() == flat[:8].tolist() and int(dropped) == len(flat) - 8


@pytest.fixture(scope="module")
def tiny() -> Pretrainer:
    torch.manual_seed(0)
    return Pretrainer(PosMaskModel(preset_config("tiny").model, vision_weights="random"), mlm=True).eval()


def boolean_mlm(module: Pretrainer, pixels, mlm_ids, mask, labels, keep: int | None = None) -> torch.Tensor:
    """The MLM loss as the objective computed it before: boolean indexing (optionally the first `keep` targets)."""
    m = module.model
    image_tokens, _ = m.encode_image(pixels)
    fused = m.fuse(m.encode_text(mlm_ids, mask)[0], mask, image_tokens)
    where = labels != IGNORE_INDEX
    if keep is not None:
        where = where & (where.reshape(-1).cumsum(0) <= keep).reshape(where.shape)
    return mlm_loss(m.mlm_logits(fused[where]), labels[where])[0]


def grads(module: Pretrainer, loss: torch.Tensor) -> list[torch.Tensor]:
    module.zero_grad(set_to_none=True)
    loss.backward()
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in module.parameters()]


@pytest.mark.parametrize("spec", ["NOUN", "random", "DET-1.0"])
def test_slots_give_the_boolean_indexed_loss_and_gradient(tiny: Pretrainer, spec: str) -> None:
    pos_name, _, ratio = spec.partition("-")
    g = torch.Generator().manual_seed(1)
    B, L = 6, tiny.model.config.max_text_len
    ids = torch.randint(1000, 5000, (B, L), generator=g)
    pos = torch.randint(0, 17, (B, L), generator=g).to(torch.uint8)
    pos[:, 0] = pos[:, -1] = 255
    mask, pixels = torch.ones(B, L, dtype=torch.long), torch.randn(B, 3, 64, 64, generator=g)
    masker = Masker(parse_mask_spec(pos_name, float(ratio) if ratio else None), MASK_ID, 30522)
    out = masker(ids, pos, generator=g)
    assert 0 < int(out.n_masked) <= len(out.positions) <= B * L and int(out.dropped) == 0
    only_mlm = torch.tensor([1.0, 0.0, 0.0])
    new = tiny(pixels, ids, mask, torch.arange(B), out.input_ids, out.labels, loss_weights=only_mlm,
               mlm_positions=out.positions)
    old = boolean_mlm(tiny, pixels, out.input_ids, mask, out.labels)
    torch.testing.assert_close(new["mlm"], old.detach(), rtol=1e-6, atol=1e-6)
    for a, b in zip(grads(tiny, new["loss"]), grads(tiny, old)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_an_overflowing_batch_keeps_the_first_k_targets(tiny: Pretrainer) -> None:
    g = torch.Generator().manual_seed(2)
    B, L = 4, 12
    ids = torch.randint(1000, 5000, (B, L), generator=g)
    pos = torch.full((B, L), 7, dtype=torch.uint8)  # every token a NOUN, all masked at 1.0
    masker = Masker(parse_mask_spec("NOUN", 1.0), MASK_ID, 30522)
    assert masker.capacity == 1.0  # no spec overflows its own capacity: half of it here, to make one that does
    masker.capacity = 0.5
    out = masker(ids, pos, generator=g)
    k = len(out.positions)
    assert k == slots(B * L, 0.5) == 24 and int(out.dropped) == B * L - k
    mask, pixels = torch.ones(B, L, dtype=torch.long), torch.randn(B, 3, 64, 64, generator=g)
    new = tiny(pixels, ids, mask, torch.arange(B), out.input_ids, out.labels, mlm_positions=out.positions)
    old = boolean_mlm(tiny, pixels, out.input_ids, mask, out.labels, keep=k)
    torch.testing.assert_close(new["mlm"], old.detach(), rtol=1e-6, atol=1e-6)
