"""The model's public API (used by evaluation), save/load, tied MLM weights, vision-weight resolution."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from toolbox.errors import UserError
from trainer.config import preset_config
from trainer.model.losses import itc_loss
from trainer.model.posmask import TEMP_MAX, TEMP_MIN, PosMaskModel, load_pretrained, save_pretrained
from trainer.data.transforms import eval_transform
from trainer.model.vision import resolve_vision_weights


@pytest.fixture(scope="module")
def tiny() -> PosMaskModel:
    torch.manual_seed(0)
    return PosMaskModel(preset_config("tiny").model, vision_weights="random").eval()


def test_api_shapes(tiny: PosMaskModel) -> None:
    cfg = tiny.config
    pixels = eval_transform(cfg.image_size)(Image.new("RGB", (90, 70), (10, 200, 30)))[None].repeat(3, 1, 1, 1)
    assert pixels.shape == (3, 3, cfg.image_size, cfg.image_size)
    ids = torch.randint(1000, 2000, (3, 12))
    mask = torch.ones(3, 12, dtype=torch.long)
    mask[2, 6:] = 0
    img, img_feat = tiny.encode_image(pixels)
    txt, txt_feat = tiny.encode_text(ids, mask)
    fused = tiny.fuse(txt, mask, img)
    assert img.shape[0] == 3 and img.shape[2] == cfg.hidden_size
    assert txt.shape == (3, 12, cfg.hidden_size) and fused.shape == (3, 12, cfg.hidden_size)
    assert img_feat.shape == txt_feat.shape == (3, 256)
    assert torch.allclose(img_feat.norm(dim=-1), torch.ones(3)) and torch.allclose(txt_feat.norm(dim=-1), torch.ones(3))
    assert tiny.itm_logits(fused, mask).shape == (3, 2)
    # padding is ignored: extra padded positions do not change the real tokens' outputs
    ids2 = torch.cat([ids, torch.zeros(3, 4, dtype=torch.long)], 1)
    mask2 = torch.cat([mask, torch.zeros(3, 4, dtype=torch.long)], 1)
    with torch.no_grad():
        txt2, txt_feat2 = tiny.encode_text(ids2, mask2)
        assert torch.allclose(txt_feat2, txt_feat, atol=1e-5)  # tiny pools the text by its (masked) mean
        assert torch.allclose(tiny.itm_logits(tiny.fuse(txt2, mask2, img), mask2), tiny.itm_logits(fused, mask),
                              atol=1e-5)


def test_mlm_head_tied(tiny: PosMaskModel) -> None:
    assert tiny.mlm_head.word_embeddings.weight is tiny.embeddings.word.weight


def test_save_load_roundtrip(tiny: PosMaskModel, tmp_path: Path) -> None:
    save_pretrained(tiny, tmp_path)
    loaded = load_pretrained(tmp_path)
    assert not loaded.training
    pixels = torch.randn(2, 3, tiny.config.image_size, tiny.config.image_size)
    with torch.no_grad():
        assert torch.allclose(loaded.encode_image(pixels)[1], tiny.encode_image(pixels)[1], atol=1e-6)
    assert loaded.mlm_head.word_embeddings.weight is loaded.embeddings.word.weight
    with pytest.raises(UserError, match="no model.safetensors"):
        load_pretrained(tmp_path / "nowhere")


def test_missing_vision_weights_is_an_error_naming_what_was_tried(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(UserError) as err:
        resolve_vision_weights("vit_base_patch32_224.augreg_in21k")
    text = str(err.value)
    assert "not found" in text and str(tmp_path / "hub") in text and "random" in text
    with pytest.raises(UserError):
        PosMaskModel(preset_config("thesis").model, vision_weights=str(tmp_path / "missing.safetensors"))
    assert resolve_vision_weights("random") is None


def test_vision_weights_from_local_file_and_cache(tmp_path: Path, monkeypatch) -> None:
    from safetensors.torch import save_file

    cfg = dataclasses.replace(preset_config("tiny").model, vision_stem="patch")
    torch.manual_seed(1)
    source = PosMaskModel(cfg, vision_weights="random")
    file = tmp_path / "vit.safetensors"
    save_file({k: v.contiguous() for k, v in source.vision.state_dict().items()}, str(file))
    loaded = PosMaskModel(cfg, vision_weights=str(file))
    assert torch.equal(loaded.vision.patch_embed.proj.weight, source.vision.patch_embed.proj.weight)
    snapshot = tmp_path / "hub" / "models--timm--my_vit" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").write_bytes(file.read_bytes())
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert resolve_vision_weights("my_vit") == snapshot / "model.safetensors"


def test_conv_stem_replaces_the_patch_projection(tmp_path: Path) -> None:
    cfg = preset_config("tiny").model
    assert cfg.vision_stem == "conv"
    model = PosMaskModel(cfg, vision_weights="random")
    stem = model.vision.patch_embed.proj
    assert [m.stride for m in stem if isinstance(m, torch.nn.Conv2d)] == [(2, 2)] * 3  # 8 = 2^3
    tokens, _ = model.encode_image(torch.randn(2, 3, 64, 64))
    assert tokens.shape == (2, 1 + 8 * 8, 128)
    patch_file = tmp_path / "patch_stem.safetensors"
    from safetensors.torch import save_file

    patch_model = PosMaskModel(dataclasses.replace(cfg, vision_stem="patch"), vision_weights="random")
    save_file({k: v.contiguous() for k, v in patch_model.vision.state_dict().items()}, str(patch_file))
    with pytest.raises(UserError, match="do not fit"):
        PosMaskModel(cfg, vision_weights=str(patch_file))
    with pytest.raises(UserError, match="text_pool must be"):
        PosMaskModel(dataclasses.replace(cfg, text_pool="max"), vision_weights="random")
    with pytest.raises(UserError, match="power-of-two patch size"):
        PosMaskModel(dataclasses.replace(cfg, vision_overrides={**cfg.vision_overrides, "patch_size": 6},
                                         image_size=60), vision_weights="random")


def test_thesis_preset_builds_with_random_vision() -> None:
    cfg = preset_config("thesis").model
    assert (cfg.image_size, cfg.text_layers, cfg.fusion_layers, cfg.max_text_len) == (224, 6, 6, 30)
    model = PosMaskModel(cfg, vision_weights="random")
    assert model.vision.patch_embed.patch_size == (32, 32)
    assert abs(model.temp.item() - 0.07) < 1e-6


@pytest.mark.parametrize("start, aligned", [(1e-5, False), (0.9, True)])
def test_temperature_at_a_bound_gets_a_gradient_toward_the_inside(start: float, aligned: bool) -> None:
    # Random pairs want a warmer softmax than 0.001; perfectly aligned pairs want a colder one than 0.5.
    model = PosMaskModel(preset_config("tiny").model, vision_weights="random")
    with torch.no_grad():
        model.temp.fill_(start)
    model.clamp_temperature()  # what training does after each optimiser step
    bound = TEMP_MIN if start < TEMP_MIN else TEMP_MAX
    assert model.temp.item() == pytest.approx(bound) and model.temperature().item() == pytest.approx(bound)
    torch.manual_seed(0)
    image = F.normalize(torch.randn(8, 16), dim=1)
    text = image.clone() if aligned else F.normalize(torch.randn(8, 16), dim=1)
    ids = torch.arange(8)
    loss, _, _ = itc_loss(image, text, image, text, ids, ids, model.temperature())
    loss.backward()
    grad = model.temp.grad.item()
    assert grad != 0.0
    assert (grad < 0) if bound == TEMP_MIN else (grad > 0)  # a descent step moves it back inside
