"""Issue 22 (ViZer can lower its loss without changing the caption): the adapters stay off the image path by
default, the LoRA step computes the mapper's states in the mapper's own (eval) mode, the shuffled-caption
control (derangement, edit rate, surviving share) and its table in the report."""
from __future__ import annotations

import json
import random

import pytest
import torch
from torch import nn

from captioning.captioner import BOS, EOS, Captioner, CaptionerConfig
from captioning.vizer.control import (changed_captions, control, derangement, edit_distance, edit_rate,
                                      greedy_tokens, surviving_share)
from captioning.vizer.lora import LoraSettings, lora_step, lora_targets, with_lora
from captioning.vizer.mapper import Pairs, cosine_loss, image_targets, pair_states, pooled_states
from toolbox.errors import UserError
from test_vizer import _frozen_mapper  # the same frozen mapper as the ViZer unit tests


def _captioner(seed: int = 0) -> Captioner:
    torch.manual_seed(seed)
    return Captioner(CaptionerConfig(feature_dim=8, wordpieces=list(range(2000, 2012)), hidden_size=32, heads=2,
                                     max_len=8))


def test_the_default_adapters_leave_the_image_path_alone_and_all_keeps_the_old_placement():
    model = _captioner()
    linear = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n != "lm_head"]
    text = lora_targets(model)
    assert text and not [n for n in text if "image_proj" in n or "cross_attn" in n]
    peft_model = with_lora(_captioner(), LoraSettings(), 0)
    adapted = {n.removeprefix("base_model.model.") for n, m in peft_model.named_modules()
               if hasattr(m, "lora_A") and n.endswith(tuple(linear))}
    assert adapted == set(text)
    assert text == lora_targets(model, "text")
    assert set(text) == {f"layers.{i}.{m}" for i in range(2) for m in ("self_attn.q", "self_attn.kv", "self_attn.out",
                                                                      "mlp.fc1", "mlp.fc2")}
    everything = lora_targets(model, "all")
    assert everything == linear  # the old placement
    assert {"image_proj.1", "layers.0.cross_attn.kv", "layers.1.cross_attn.q"} <= set(everything)
    with pytest.raises(UserError, match="--lora-targets image: unknown; valid: text, all"):
        lora_targets(model, "image")


def test_an_unknown_placement_is_one_line(capsys):
    from posmask_cli import main

    assert main(["vizer", "--run", "/nonexistent", "--lora-targets", "image"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--lora-targets image: unknown; valid: text, all" in err and len(err.splitlines()) == 1


def test_the_lora_step_computes_the_states_the_mapper_was_trained_on():
    peft_model = with_lora(_captioner(), LoraSettings(), seed=0)
    peft_model.train()  # whatever mode the engine leaves it in
    torch.manual_seed(3)
    features = torch.randn(6, 3, 8)
    mapper = _frozen_mapper()
    loss, _ = lora_step(peft_model, mapper, features, 4)(peft_model, random.Random(0))
    rows = random.Random(0).sample(range(6), 4)
    base = _captioner().eval()
    tokens = base.generate(features[rows])
    states = pair_states(base, features, Pairs(rows, list(tokens)))  # the mapper's training states (eval mode)
    expected = cosine_loss(mapper(states), image_targets(features[rows]))
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)
    loss.backward()  # eval mode still trains the adapters
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in peft_model.named_parameters()
               if "lora_B" in n)


@pytest.mark.parametrize("n", [2, 3, 5, 17, 200])
def test_the_derangement_moves_every_caption_and_is_seeded(n):
    for seed in range(5):
        perm = derangement(n, seed)
        assert sorted(perm) == list(range(n)) and all(p != i for i, p in enumerate(perm))
        assert perm == derangement(n, seed)
    assert derangement(200, 0) != derangement(200, 1)
    with pytest.raises(ValueError):
        derangement(1)


def test_the_edit_rate_is_word_levenshtein_over_the_reference_length():
    assert edit_distance(list("kitten"), list("sitting")) == 3
    assert edit_rate("a red circle", "a red circle") == 0.0
    assert edit_rate("a red circle", "a blue circle") == pytest.approx(1 / 3)
    assert edit_rate("a red circle", "A red circle on grey") == pytest.approx(2 / 3)  # lower-cased
    assert edit_rate("a small red circle", "red circle") == 0.5
    assert edit_rate("a b", "") == 1.0 and edit_rate("", "x y") == 2.0 and edit_rate("", "") == 0.0
    assert changed_captions(["a b", "c d", "e f g h"], ["a b", "c x", "e f"]) == {
        "changed": pytest.approx(2 / 3), "edit_rate": pytest.approx((0 + 0.5 + 0.5) / 3)}


def test_the_surviving_share():
    assert surviving_share([0.5, 0.4], [0.6, 0.5]) == pytest.approx(0.0)  # shuffled fell as much: nothing survives
    assert surviving_share([0.5, 0.4], [0.6, 0.6]) == pytest.approx(1.0)
    assert surviving_share([0.5, 0.4], [0.6, 0.575]) == pytest.approx(0.75)
    assert surviving_share([0.5, 0.5], [0.6, 0.4]) is None


class ImageOnly(nn.Module):
    """A captioner whose hidden states read the image only: its captions cannot matter."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(9)
        self.proj = nn.Linear(8, 32)

    def generate(self, features: torch.Tensor) -> torch.Tensor:
        word = 4 + (features[:, 0, 0] > 0).long()
        return torch.stack([torch.full_like(word, BOS), word, torch.full_like(word, EOS)], 1)

    def hidden_states(self, features: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.proj(features[:, 0]).unsqueeze(1).expand(-1, tokens.shape[1], -1)


def test_the_control_finds_no_surviving_gain_when_captions_cannot_matter():
    torch.manual_seed(4)
    features, mapper = torch.randn(10, 3, 8), _frozen_mapper()
    before, after = ImageOnly(), ImageOnly()
    optimiser = torch.optim.SGD(after.parameters(), lr=0.5)
    tokens = after.generate(features)
    for _ in range(20):  # LoRA's job through the image path alone
        optimiser.zero_grad()
        cosine_loss(mapper(pooled_states(after, features, tokens)), image_targets(features)).backward()
        optimiser.step()
    texts = ["a caption"] * 10
    c = control(before, after, mapper, features, greedy_tokens(before, features), greedy_tokens(after, features),
                texts, texts)
    assert c["loss_own"][1] < c["loss_own"][0] - 0.01  # the loss fell ...
    assert c["loss_shuffled"] == pytest.approx(c["loss_own"], abs=1e-6)  # ... as much with shuffled captions
    assert c["surviving_share"] == pytest.approx(0.0, abs=1e-4) and c["changed"] == 0.0 and c["edit_rate"] == 0.0
    assert c["loss_base_captions"] == pytest.approx(c["loss_own"][1], abs=1e-6)


def test_the_control_of_an_unchanged_captioner_has_no_gain():
    torch.manual_seed(4)
    features, model = torch.randn(6, 3, 8), _captioner()
    tokens = greedy_tokens(model, features)
    c = control(model, model, _frozen_mapper(), features, tokens, tokens, ["x"] * 6, ["x"] * 6)
    assert c["loss_own"][0] == c["loss_own"][1] and c["loss_shuffled"][0] == c["loss_shuffled"][1]
    assert c["surviving_share"] is None and c["changed"] == 0.0


def test_the_report_has_the_control_table_and_the_changed_share(tmp_path):
    from PIL import Image

    from captioning.vizer.report import write_vizer_report

    paths = []
    for k in range(3):
        paths.append(tmp_path / f"{k}.png")
        Image.new("RGB", (8, 8), (40 * k, 0, 0)).save(paths[-1])
    base = ["a red circle", "a blue star", "a green square"]
    after = ["a red circle", "a big blue star", "a green square and a circle"]
    check = {"loss_own": [0.085, 0.062], "loss_shuffled": [0.30, 0.28], "loss_base_captions": 0.07,
             "surviving_share": 0.13, **changed_captions(base, after)}
    cell = {"variant": "gt", "pairs": 8, "width": 16, "captions": after, "mapper_loss": 0.2,
            "lora_loss": [0.1, 0.08], "control": check, "main": True, "seconds": {"mapper": 1.0, "lora": 2.0}}
    r = {"image_ids": ["0", "1", "2"], "image_names": [p.name for p in paths], "image_paths": [str(p) for p in paths],
         "references": [[c] for c in base], "systems": {"Base (CE)": base, "ViZer_GT": after}, "grid": [cell],
         "unlabeled_images": 5, "training_images": 7, "seconds": 3.0,
         "settings": {"variants": ["gt"], "lora": vars(LoraSettings())}}
    index = write_vizer_report(r, tmp_path / "report", None, None).read_text()
    assert "Control:" in index and "surviving share (%)" in index and "captions changed (%)" in index
    assert "| 8 pairs, width 16 (main) | 8.50 | 6.20 | 30.00 | 28.00 | 7.00 | 13.00 | 66.67 |" in index
    assert "on `text` = the text path only" in index
    for suffix in ("md", "csv", "tex"):
        assert (tmp_path / "report" / f"table_control.{suffix}").is_file()
    saved = json.loads((tmp_path / "report" / "vizer.json").read_text())
    assert saved["control"]["ViZer_GT"]["changed"] == pytest.approx(2 / 3)
    assert saved["settings"]["lora"]["targets"] == "text"
