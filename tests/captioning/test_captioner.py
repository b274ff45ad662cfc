"""The SCST probe's captioner: incremental decoding gives the full forward's tokens, an SCST step moves the
captioner toward what the reward prefers, both stages resume exactly on the run engine."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from captioning.captioner import (BANNED, BOS, EOS, PAD, Captioner, CaptionerConfig, load_captioner, save_captioner,
                                  token_log_probs)
from captioning.train import StageSettings, ce_step, run_stage, scst_loss, scst_step
from toolbox.errors import Interrupted
from stopping import stopping_at

WORDPIECES = list(range(2000, 2012))  # local tokens 4..15


def _captioner(seed: int = 0, **extra) -> Captioner:
    torch.manual_seed(seed)
    return Captioner(CaptionerConfig(feature_dim=8, wordpieces=WORDPIECES, hidden_size=32, heads=2, max_len=8,
                                     dropout=0.0, **extra))


def test_generation_is_the_forward_pass_decoded_token_by_token():
    model = _captioner().eval()
    with torch.no_grad():
        model.lm_head.bias[EOS] = -50.0  # long captions: every position is checked
    features = torch.randn(5, 3, 8)
    tokens = model.generate(features)
    assert tokens.shape == (5, 8) and (tokens[:, 0] == BOS).all()
    logits = model(features, tokens[:, :-1])
    logits[:, :, [PAD, BOS, 3]] = float("-inf")
    assert torch.equal(logits.argmax(-1), tokens[:, 1:])


def test_sampled_tokens_are_scored_under_the_distribution_they_were_sampled_from():
    """SCST's log-probs are those of `generate`'s sampling softmax (PAD, BOS, UNK banned and renormalised):
    p_sample(token) = p_full(token) / (1 - p_full(banned)) at every position up to EOS."""
    model = _captioner(seed=3).eval()
    with torch.no_grad():
        model.lm_head.bias[list(BANNED)] = 2.0  # the banned tokens hold much of the full softmax
    features = torch.randn(6, 3, 8)
    tokens = model.generate(features, sample=True, generator=torch.Generator().manual_seed(0))
    log_probs, mask = token_log_probs(model, features, tokens)
    with torch.no_grad():
        full = model(features, tokens[:, :-1]).softmax(-1)
    picked = full.gather(2, tokens[:, 1:, None]).squeeze(2)
    expected = (picked / (1 - full[:, :, list(BANNED)].sum(-1))).log()
    assert mask.any() and torch.allclose(log_probs[mask], expected[mask], atol=1e-5)
    assert torch.isfinite(log_probs).all() and (log_probs[~mask] == 0).all()


def test_bert_ids_round_trip():
    model = _captioner()
    ids = torch.tensor([[101, 2003, 2011, 102, 0], [101, 999, 102, 0, 0]])
    local = model.to_local(ids)
    assert local[1, 1] == 3  # an id the captioner never saw: unknown
    assert model.bert_ids(local) == [[2003, 2011], [100]]


def test_an_scst_step_moves_the_captioner_toward_the_rewarded_token():
    target = 9  # a local token the reward prefers
    model = _captioner().eval()
    features = torch.randn(8, 3, 8)
    rows = torch.arange(8)

    def reward(index: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:  # share of the caption that is `target`
        words = tokens[:, 1:]
        return ((words == target).sum(1) / (words != PAD).sum(1).clamp(min=1)).float()

    def first_word_prob() -> float:
        with torch.no_grad():
            return model(features, torch.full((8, 1), BOS)).softmax(-1)[:, 0, target].mean().item()

    before = first_word_prob()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    torch.manual_seed(1)
    loss, record = scst_loss(model, model, features, rows, reward, samples=32)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert first_word_prob() > before * 1.2 and set(record) == {"reward", "reward_greedy"}


def _ce_data() -> tuple[torch.Tensor, list[list[np.ndarray]]]:
    rng = np.random.default_rng(0)
    features = torch.randn(6, 3, 8).half()
    captions = [[np.array([101, *rng.choice(WORDPIECES, size=int(rng.integers(2, 9))), 102]) for _ in range(2)]
                for _ in range(6)]
    return features, captions


def _stage(folder: Path, kind: str, stop_at: int | None = None) -> Captioner:
    model = _captioner(seed=3)
    features, captions = _ce_data()
    if kind == "ce":
        inner = ce_step(model, features, captions, 4, torch.device("cpu"))
        settings = StageSettings(steps=6, batch_size=4, warmup_steps=2, ckpt_every=100, log_every=1)
    else:
        reward = lambda rows, tokens: (tokens[:, 1:] == 9).float().mean(1)  # noqa: E731
        inner = scst_step(model, features, reward, 3, 2)
        settings = StageSettings(steps=6, batch_size=3, samples=2, lr=1e-3, min_lr=None, warmup_steps=0,
                                 ckpt_every=100, log_every=1)
    run_stage(model, stopping_at(inner, stop_at), settings, folder, torch.device("cpu"), {"kind": kind}, train_mode=kind == "ce")
    return model


@pytest.mark.parametrize("kind", ["ce", "scst"])
def test_a_stopped_stage_resumes_exactly(tmp_path, kind):
    straight = _stage(tmp_path / "straight", kind)
    with pytest.raises(Interrupted):
        _stage(tmp_path / "stopped", kind, stop_at=3)
    resumed = _stage(tmp_path / "stopped", kind)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    save_captioner(resumed, tmp_path / "saved")
    loaded = load_captioner(tmp_path / "saved")
    assert all(torch.equal(a, b) for a, b in zip(resumed.state_dict().values(), loaded.state_dict().values()))
