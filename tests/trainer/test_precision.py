"""Full precision where a number decides a result: under a bf16 autocast the ITC similarities and loss and the
ITM / MLM logits are float32 and equal the fp32 computation, while the encoders stay in bf16."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trainer.config import preset_config
from trainer.model.losses import itc_loss
from trainer.model.posmask import PosMaskModel
from trainer.model.objective import Pretrainer
from trainer.model.precision import similarity


@pytest.fixture(scope="module")
def tiny() -> PosMaskModel:
    torch.manual_seed(0)
    return PosMaskModel(preset_config("tiny").model, vision_weights="random").eval()


def bf16_autocast():
    return torch.autocast("cpu", dtype=torch.bfloat16)


def test_heads_are_float32_under_autocast(tiny: PosMaskModel) -> None:
    torch.manual_seed(1)
    fused = torch.randn(3, 7, tiny.config.hidden_size)
    mask = torch.ones(3, 7, dtype=torch.long)
    for given in (fused, fused.bfloat16()):  # fusion output as it comes without and with bf16 autocast
        with torch.no_grad():
            itm, mlm = tiny.itm_logits(given, mask), tiny.mlm_logits(given)
            with bf16_autocast():
                assert (given @ given.transpose(1, 2)).dtype == torch.bfloat16  # the autocast really is on
                itm_under, mlm_under = tiny.itm_logits(given, mask), tiny.mlm_logits(given)
        assert itm_under.dtype == mlm_under.dtype == torch.float32
        torch.testing.assert_close(itm_under, itm, rtol=0, atol=1e-6)
        torch.testing.assert_close(mlm_under, mlm, rtol=0, atol=1e-6)


def test_near_equal_itm_scores_keep_their_order_under_autocast(tiny: PosMaskModel) -> None:
    # Two fusion outputs whose match log-odds differ by 1e-3: a bf16 head rounds them to the same score.
    torch.manual_seed(2)
    fused = torch.randn(1, 5, tiny.config.hidden_size)
    mask = torch.ones(1, 5, dtype=torch.long)
    w = tiny.itm_head.weight[1] - tiny.itm_head.weight[0]
    closer = fused + 1e-3 * (w / w.dot(w)).detach()
    with torch.no_grad(), bf16_autocast():
        pair = torch.cat([tiny.itm_logits(fused, mask), tiny.itm_logits(closer, mask)])
        bf16_head = F.linear(fused.mean(1), tiny.itm_head.weight, tiny.itm_head.bias)
    odds = pair[:, 1] - pair[:, 0]
    assert bf16_head.dtype == torch.bfloat16  # what the head gave before
    assert odds[1] - odds[0] == pytest.approx(1e-3, rel=0.05)


def test_itc_similarities_and_loss_are_float32_under_autocast() -> None:
    torch.manual_seed(3)
    image, text = F.normalize(torch.randn(16, 64), dim=1), F.normalize(torch.randn(16, 64), dim=1)
    image[:8] = F.normalize(text[:8] + 0.3 * image[:8], dim=1)  # some matching pairs: large logits
    ids, temp = torch.arange(16), torch.tensor(0.07)
    loss, sim_i2t, _ = itc_loss(image, text, image, text, ids, ids, temp)
    with bf16_autocast():
        assert (image @ text.T).dtype == torch.bfloat16
        loss_under, sim_under, _ = itc_loss(image, text, image, text, ids, ids, temp)
        rounded = (image @ text.T) / temp  # what the loss used before
    assert sim_under.dtype == loss_under.dtype == torch.float32
    torch.testing.assert_close(sim_under, sim_i2t, rtol=0, atol=1e-6)
    torch.testing.assert_close(loss_under, loss, rtol=0, atol=1e-6)
    assert (rounded.float() - sim_i2t).abs().max() > 1e-3  # bf16 would be off by this much at temperature 0.07
    assert similarity(image.bfloat16(), text).dtype == torch.float32


def test_pretraining_losses_are_float32_under_autocast(tiny: PosMaskModel) -> None:
    torch.manual_seed(4)
    module = Pretrainer(tiny, mlm=True)
    ids = torch.randint(1000, 2000, (4, 9))
    labels = torch.full_like(ids, -100)
    labels[:, 2] = ids[:, 2]
    with torch.no_grad(), bf16_autocast():
        out = module(torch.randn(4, 3, 64, 64), ids, torch.ones_like(ids), torch.arange(4), ids, labels)
    for key in ("loss", "mlm", "itc", "itm"):
        assert out[key].dtype == torch.float32 and torch.isfinite(out[key]), key
