"""ITM re-ranking of the ITC top k, with a stand-in model whose ITM score is known."""
from __future__ import annotations

import torch

from evaluation.retrieval.evaluate import rerank


class FakeModel:
    """fuse() returns [text feature * image feature] in [CLS]; the ITM match log-odds is its first entry."""

    def fuse(self, txt_tokens, mask, img_tokens):
        return txt_tokens * img_tokens[:, :1]

    def itm_logits(self, fused, mask):
        cls = fused[:, 0]
        return torch.stack([torch.zeros_like(cls[:, 0]), cls[:, 0]], dim=1)


def test_rerank_reorders_top_k_and_keeps_itc_below():
    # 1 image query, 4 text candidates; ITC prefers 0 > 1 > 2 > 3, ITM says text 1 > text 0 and both > 100
    sims = torch.tensor([[0.9, 0.8, 0.7, 0.6]])
    img_tokens = torch.ones(1, 2, 1)
    txt_tokens = torch.tensor([200.0, 300.0, 1000.0, 5000.0]).view(4, 1, 1)
    mask = torch.ones(4, 1, dtype=torch.long)
    scores = rerank(FakeModel(), sims, 2, True, img_tokens, txt_tokens, mask, batch_size=3)
    order = scores[0].argsort(descending=True).tolist()
    assert order == [1, 0, 2, 3]  # ITM decides within the top 2; the rest stay below, in ITC order
    assert scores[0, 1] == 300.0 and scores[0, 0] == 200.0
    assert scores[0, 2] < 200.0 and scores[0, 2] > scores[0, 3]


def test_rerank_text_queries_trim_padding():
    # 2 text queries over 3 images; text 1 is shorter (padding must not change its score)
    sims = torch.tensor([[0.1, 0.5, 0.3], [0.9, 0.2, 0.4]])
    img_tokens = torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1)
    txt_tokens = torch.ones(2, 3, 1)
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    scores = rerank(FakeModel(), sims, 3, False, img_tokens, txt_tokens, mask, batch_size=2)
    assert scores.tolist() == [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]


class TwoLogitModel(FakeModel):
    """ITM logits (no match, match) = the text token's two features."""

    def itm_logits(self, fused, mask):
        return fused[:, 0, :2]


def test_rerank_score_logit_is_albefs_raw_match_logit():
    # text 0: logits (2, 3) -> log-odds 1; text 1: logits (-2, 2) -> log-odds 4; text 2 is outside the top 2
    sims = torch.tensor([[0.9, 0.8, 0.7]])
    img_tokens = torch.ones(1, 1, 2)
    txt_tokens = torch.tensor([[2.0, 3.0], [-2.0, 2.0], [0.0, 9.0]]).view(3, 1, 2)
    mask = torch.ones(3, 1, dtype=torch.long)
    odds = rerank(TwoLogitModel(), sims, 2, True, img_tokens, txt_tokens, mask, batch_size=4)
    logit = rerank(TwoLogitModel(), sims, 2, True, img_tokens, txt_tokens, mask, batch_size=4, score="logit")
    assert odds[0, :2].tolist() == [1.0, 4.0] and odds[0].argmax() == 1
    assert logit[0, :2].tolist() == [3.0, 2.0] and logit[0].argmax() == 0  # the order differs
    assert logit[0, 2] < 2.0 and odds[0, 2] < 1.0  # below the top k: still under every ITM score
