"""ViZer's parts: the mapper learns fixed pairs, the LoRA stage trains only its adapters, both stages resume
exactly, BLEU matches pycocoevalcap, grounding counts what the caption says about the scene, the unlabeled set
is checked."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from captioning.captioner import Captioner, CaptionerConfig
from captioning.train import StageSettings, run_stage
from captioning.vizer.grounding import ground, mentions
from captioning.vizer.lora import LoraSettings, lora_step, merged, unlabeled_images, with_lora
from captioning.vizer.mapper import Mapper, mapper_step, pooled_states
from captioning.vizer.metrics import bleu_counts, bleu_statistic
from toolbox.errors import Interrupted, UserError
from stopping import stopping_at

WORDPIECES = list(range(2000, 2012))


def _captioner(seed: int = 0) -> Captioner:
    torch.manual_seed(seed)
    return Captioner(CaptionerConfig(feature_dim=8, wordpieces=WORDPIECES, hidden_size=32, heads=2, max_len=8))


def _frozen_mapper() -> Mapper:
    torch.manual_seed(5)
    mapper = Mapper(32, 16, 8)
    for p in mapper.parameters():
        p.requires_grad_(False)
    return mapper.eval()


def _curve(folder: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (folder / "metrics.jsonl").read_text().splitlines()]


def _mapper_stage(folder: Path, stop_at: int | None = None, steps: int = 6) -> Mapper:
    torch.manual_seed(1)
    states, weights = torch.randn(64, 32), torch.randn(32, 8)
    targets = states @ weights
    torch.manual_seed(2)
    mapper = Mapper(32, 64, 8)
    settings = StageSettings(steps=steps, batch_size=16, lr=3e-3, min_lr=None, warmup_steps=0, log_every=1,
                             ckpt_every=1000)
    step = stopping_at(mapper_step(states, targets, 16, torch.device("cpu")), stop_at)
    run_stage(mapper, step, settings, folder, torch.device("cpu"), {"kind": "mapper"}, train_mode=True)
    return mapper


def _lora_stage(folder: Path, stop_at: int | None = None) -> torch.nn.Module:
    peft_model = with_lora(_captioner(), LoraSettings(), seed=0)
    torch.manual_seed(3)
    features = torch.randn(12, 3, 8)
    settings = StageSettings(steps=5, batch_size=4, lr=1e-2, min_lr=None, warmup_steps=0, log_every=1,
                             ckpt_every=1000)
    step = stopping_at(lora_step(peft_model, _frozen_mapper(), features, 4), stop_at)
    run_stage(peft_model, step, settings, folder, torch.device("cpu"), {"kind": "lora"}, train_mode=True)
    return peft_model


def test_the_mapper_loss_falls_on_fixed_pairs(tmp_path):
    _mapper_stage(tmp_path, steps=60)
    curve = _curve(tmp_path)
    assert len(curve) == 60 and sum(curve[-5:]) / 5 < 0.5 * curve[0]


def test_the_lora_stage_changes_only_the_adapters(tmp_path):
    original = _captioner().state_dict()
    trained = _lora_stage(tmp_path).state_dict()
    adapters = [k for k in trained if "lora_" in k]
    assert adapters and any(trained[k].abs().sum() > 0 for k in adapters if "lora_B" in k)  # B starts at 0
    for key, value in trained.items():
        if "lora_" not in key:
            name = key.removeprefix("base_model.model.").replace(".base_layer", "")
            assert torch.equal(value, original[name]), key  # bit-identical
    assert set(k.removeprefix("base_model.model.").replace(".base_layer", "") for k in trained
               if "lora_" not in k) == set(original)
    model = merged(with_lora(_captioner(), LoraSettings(), seed=0))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), original.values()))  # B = 0: no-op


@pytest.mark.parametrize("stage", ["mapper", pytest.param("lora", marks=pytest.mark.slow)])
def test_a_stopped_stage_resumes_exactly(tmp_path, stage):
    run = _mapper_stage if stage == "mapper" else _lora_stage
    straight = run(tmp_path / "straight").state_dict()
    with pytest.raises(Interrupted):
        run(tmp_path / "stopped", stop_at=3)
    resumed = run(tmp_path / "stopped").state_dict()
    for key, value in straight.items():
        assert torch.equal(value, resumed[key]), key
    assert _curve(tmp_path / "straight") == _curve(tmp_path / "stopped")


def test_pooling_leaves_out_the_start_and_the_padding():
    model = _captioner().eval()
    features = torch.randn(2, 3, 8)
    tokens = torch.tensor([[1, 5, 6, 2, 0, 0], [1, 7, 2, 0, 0, 0]])
    with torch.no_grad():
        pooled = pooled_states(model, features, tokens)
        hidden = model.hidden_states(features, tokens)
    assert torch.allclose(pooled[0], hidden[0, 1:4].mean(0), atol=1e-6)
    assert torch.allclose(pooled[1], hidden[1, 1:3].mean(0), atol=1e-6)


def test_corpus_bleu_is_pycocoevalcaps():
    from pycocoevalcap.bleu.bleu import Bleu

    refs = [["a red circle on grey", "one red circle"], ["two blue stars and a square", "blue stars"],
            ["a small green triangle", "the green triangle is small"]]
    caps = ["a red circle", "blue stars and a blue square", "a green green triangle is small"]
    expected, _ = Bleu(4).compute_score({i: r for i, r in enumerate(refs)}, {i: [c] for i, c in enumerate(caps)},
                                        verbose=0)
    counts = bleu_counts(refs, caps)
    for n in range(1, 5):
        assert bleu_statistic(counts, n)(torch.arange(3).numpy()[None])[0] == pytest.approx(100 * expected[n - 1])


def test_grounding_counts_true_mentions_and_mentioned_objects():
    objects = [{"shape": "star", "colour": "green", "size": "small"},
               {"shape": "circle", "colour": "red", "size": "big"},
               {"shape": "square", "colour": "blue", "size": "big"}]
    text = "A very little green star, a big black circle and two squares."
    assert mentions(text) == [("star", "green"), ("circle", "black"), ("square", None)]
    g = ground(text, objects)
    assert (g.mentions, g.true_mentions, g.objects, g.mentioned_objects) == (3, 2, 3, 2)


def test_the_unlabeled_set_leaves_out_the_excluded_and_refuses_an_empty_one(tmp_path):
    from PIL import Image

    for name in ("000001.png", "000002.jpg"):
        Image.new("RGB", (8, 8)).save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    names, images = unlabeled_images(str(tmp_path), {"000001"})
    assert names == ["000002.jpg"] and images == [tmp_path / "000002.jpg"]
    with pytest.raises(UserError, match="no images"):
        unlabeled_images(str(tmp_path), {"000001", "000002"})
