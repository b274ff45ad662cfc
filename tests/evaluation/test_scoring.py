"""The shared scoring loop: float32 ITM/ITC scores under autocast, text groups in the right order, bad images."""
from __future__ import annotations

import pytest
import torch

from evaluation.common import load_model
from evaluation.scoring import (encode_images, encode_texts, image_batches, itc_similarity, itm_head_log_odds,
                                itm_log_odds, score_images_with_texts)
from shards.errors import UserError

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def model(tiny_run):
    return load_model(tiny_run, CPU)


@pytest.fixture(scope="module")
def tokens(model, tiny_eval):
    """Image tokens of 3 images and text tokens + mask of 3 captions, computed once without autocast."""
    paths = sorted((tiny_eval / "images").glob("*.png"))[:3]
    img_tokens, _ = encode_images(model, paths, CPU, batch_size=2, workers=0)
    txt_tokens, mask, _ = encode_texts(model, ["a red square", "one blue circle on a white background", "a"], CPU, 2)
    return img_tokens, txt_tokens, mask


def bf16_autocast():
    return torch.autocast("cpu", dtype=torch.bfloat16)


def test_itm_head_is_float32_under_autocast(model, tokens):
    img_tokens, txt_tokens, mask = tokens
    fused = model.fuse(txt_tokens, mask, img_tokens).detach()
    for given in (fused, fused.bfloat16()):  # fusion output as it comes without and with bf16 autocast
        plain = itm_head_log_odds(model, given, mask)
        with bf16_autocast():
            assert model.itm_logits(given, mask).dtype == torch.bfloat16  # the autocast really is on
            under = itm_head_log_odds(model, given, mask)
        assert plain.dtype == under.dtype == torch.float32
        torch.testing.assert_close(under, plain, rtol=0, atol=1e-5)


def test_itm_scores_round_only_in_the_fusion(model, tokens):
    img_tokens, txt_tokens, mask = tokens
    with bf16_autocast():
        scores = itm_log_odds(model, img_tokens, txt_tokens, mask)
        fused = model.fuse(txt_tokens, mask, img_tokens)
    logits = model.itm_logits(fused.float(), mask)
    assert scores.dtype == torch.float32
    torch.testing.assert_close(scores, logits[:, 1] - logits[:, 0], rtol=0, atol=1e-5)


def test_itc_similarity_is_float32_under_autocast():
    torch.manual_seed(0)
    img, txt = torch.randn(5, 16), torch.randn(7, 16)
    with bf16_autocast():
        sims = itc_similarity(img, txt)
    assert sims.dtype == torch.float32
    torch.testing.assert_close(sims, img @ txt.T, rtol=0, atol=1e-5)


def test_text_groups_pair_each_image_with_its_own_texts(model, tiny_eval, tmp_path):
    images = sorted((tiny_eval / "images").glob("*.png"))[:3]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    paths = [images[0], broken, images[1], images[2]]
    groups = [("a red square", "a blue square"), ("x", "y"), ("a red circle", "there is a circle ."),
              ("a blue square", "one blue square on a white background")]
    scores, unreadable = score_images_with_texts(model, paths, groups, CPU, batch_size=3, workers=0)
    assert scores.shape == (4, 2) and scores.dtype == torch.float32 and unreadable == [1]
    assert torch.isnan(scores[1]).all() and not torch.isnan(scores[[0, 2, 3]]).any()
    for i in (0, 2, 3):
        img_tokens, _ = encode_images(model, [paths[i]], CPU, batch_size=1, workers=0)
        for j, text in enumerate(groups[i]):
            txt_tokens, mask, _ = encode_texts(model, [text], CPU, 1, desc=None)
            alone = itm_log_odds(model, img_tokens, txt_tokens, mask)
            torch.testing.assert_close(scores[i, j], alone[0], rtol=0, atol=1e-4)


def test_unreadable_images(model, tiny_eval, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"")
    paths = [broken, tmp_path / "missing.png", next((tiny_eval / "images").glob("*.png"))]
    batches = list(image_batches(model, paths, CPU, batch_size=2, workers=0))
    assert [(b.index, b.unreadable, b.tokens is None) for b in batches] == [([], [0, 1], True), ([2], [], False)]
    with pytest.raises(UserError, match="unreadable image"):
        encode_images(model, paths, CPU, batch_size=2, workers=0)
