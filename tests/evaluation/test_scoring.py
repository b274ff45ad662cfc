"""The shared scoring loop: float32 ITM/ITC scores under autocast, the ITM score choices, text groups in the right
order, bad images."""
from __future__ import annotations

import pytest
import torch

from evaluation.core.common import load_model
from evaluation.retrieval.evaluate import evaluate_retrieval, load_retrieval_set
from evaluation.valse.evaluate import evaluate_valse, load_valse, parse_image_roots
from evaluation.core.scoring import (encode_images, encode_texts, image_batches, itc_similarity, itm_logits, match_score,
                                score_images_with_texts)
from toolbox.errors import UserError

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


def test_itm_scores_round_only_in_the_fusion(model, tokens):
    img_tokens, txt_tokens, mask = tokens
    with bf16_autocast():
        logits = itm_logits(model, img_tokens, txt_tokens, mask)
        fused = model.fuse(txt_tokens, mask, img_tokens)
    assert not torch.equal(fused, model.fuse(txt_tokens, mask, img_tokens))  # the fusion did run in bf16
    expected = model.itm_logits(fused, mask)
    assert logits.dtype == torch.float32
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-5)


def test_match_score_choices():
    logits = torch.tensor([[1.0, 3.0], [-2.0, 2.5], [0.0, 2.0]])
    assert match_score(logits).tolist() == [2.0, 4.5, 2.0]  # log-odds: the second pair ranks first
    assert match_score(logits, "logit").tolist() == [3.0, 2.5, 2.0]  # ALBEF: the first pair ranks first
    with pytest.raises(ValueError, match="valid: logodds, logit"):
        match_score(logits, "prob")


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
    assert scores.shape == (4, 2, 2) and scores.dtype == torch.float32 and unreadable == [1]
    assert torch.isnan(scores[1]).all() and not torch.isnan(scores[[0, 2, 3]]).any()
    for i in (0, 2, 3):
        img_tokens, _ = encode_images(model, [paths[i]], CPU, batch_size=1, workers=0)
        for j, text in enumerate(groups[i]):
            txt_tokens, mask, _ = encode_texts(model, [text], CPU, 1, desc=None)
            alone = itm_logits(model, img_tokens, txt_tokens, mask)
            torch.testing.assert_close(scores[i, j], alone[0], rtol=0, atol=1e-4)


def test_unreadable_images(model, tiny_eval, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"")
    paths = [broken, tmp_path / "missing.png", next((tiny_eval / "images").glob("*.png"))]
    batches = list(image_batches(model, paths, CPU, batch_size=2, workers=0))
    assert [(b.index, b.unreadable, b.tokens is None) for b in batches] == [([], [0, 1], True), ([2], [], False)]
    with pytest.raises(UserError, match="unreadable image"):
        encode_images(model, paths, CPU, batch_size=2, workers=0)


def shielded(method):
    """`method` run with autocast off: the encoders and the fusion then give the same numbers with or without an
    outer autocast, so that only the scoring heads see it."""
    def run(*args, **kwargs):
        with torch.autocast("cpu", enabled=False):
            return method(*args, **kwargs)
    return run


def test_valse_and_retrieval_under_bf16_autocast_equal_fp32(model, tiny_eval, monkeypatch):
    # bf16 encoders change the numbers themselves (measured on a trained tiny model: log-odds by up to 0.015);
    # what must not change them is the scoring: the ITM head and the ITC similarity, in float32 whatever the autocast.
    for name in ("encode_image", "encode_text", "fuse"):
        monkeypatch.setattr(model, name, shielded(getattr(model, name)))
    data = load_retrieval_set(tiny_eval / "retrieval.json", tiny_eval / "images")
    pieces, roots = load_valse(tiny_eval / "valse"), parse_image_roots(str(tiny_eval / "images"))
    paths = sorted((tiny_eval / "images").glob("*.png"))[:2]

    def evaluate():
        retrieval, _ = evaluate_retrieval(model, data, CPU, k=4, workers=0)
        valse, rows = evaluate_valse(model, pieces, roots, CPU, workers=0)
        logits, _ = score_images_with_texts(model, paths, [("a red square", "a red circle")] * 2, CPU, 2, workers=0)
        return retrieval, valse, rows, logits

    plain = evaluate()
    with bf16_autocast():
        under = evaluate()
    assert under[3].dtype == torch.float32 and torch.equal(under[3], plain[3])
    assert under[0]["metrics"] == plain[0]["metrics"] and under[0]["itc"] == plain[0]["itc"]
    assert under[1]["pieces"] == plain[1]["pieces"] and under[2] == plain[2]  # every entry's scores, exactly
