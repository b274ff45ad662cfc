"""PosMaskModel: timm ViT image encoder, BERT-style text encoder, cross-attention fusion, ITC/ITM/MLM heads.

Load a trained model in three lines:
    from trainer.model.posmask import load_pretrained
    model = load_pretrained("runs/tiny-DET-0.7")          # eval mode, CPU
    img, img_feat = model.encode_image(pixels)
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from toolbox.errors import UserError
from trainer.model.blocks import FusionBlock, TextBlock, key_padding_bias
from trainer.config import ModelConfig
from trainer.model.precision import no_autocast
from trainer.model.vision import build_vision_encoder

log = logging.getLogger(__name__)
TEMP_MIN, TEMP_MAX = 0.001, 0.5


class TextEmbeddings(nn.Module):
    """BERT-style word + position embeddings, LayerNorm, dropout."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.word = nn.Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=cfg.pad_id)
        self.position = nn.Embedding(cfg.max_text_len, cfg.hidden_size)
        self.norm, self.drop = nn.LayerNorm(cfg.hidden_size), nn.Dropout(cfg.dropout)

    def forward(self, ids: Tensor) -> Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        return self.drop(self.norm(self.word(ids) + self.position(positions)[None]))


class MLMHead(nn.Module):
    """BERT's prediction head: dense-GELU-LayerNorm, then a decoder tied to the word embeddings."""

    def __init__(self, cfg: ModelConfig, word_embeddings: nn.Embedding) -> None:
        super().__init__()
        self.dense, self.norm = nn.Linear(cfg.hidden_size, cfg.hidden_size), nn.LayerNorm(cfg.hidden_size)
        self.word_embeddings = word_embeddings  # shared, not a copy
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(self.norm(F.gelu(self.dense(x))), self.word_embeddings.weight, self.bias)


def pool(tokens: Tensor, attention_mask: Tensor, how: str) -> Tensor:
    """[B,L,D] -> [B,D]: the [CLS] token (`cls`) or the mean over the unpadded tokens (`mean`)."""
    if how == "cls":
        return tokens[:, 0]
    weights = attention_mask.unsqueeze(-1).to(tokens.dtype)
    return (tokens * weights).sum(1) / weights.sum(1).clamp(min=1)


class PosMaskModel(nn.Module):
    """The ALBEF-style model. See module doc for loading; `config` holds the architecture."""

    def __init__(self, config: ModelConfig, vision_weights: str | None = "random") -> None:
        super().__init__()
        for name in ("text_pool", "itm_pool"):
            if getattr(config, name) not in ("cls", "mean"):
                raise UserError(f"{name} must be 'cls' or 'mean', not {getattr(config, name)!r}")
        self.config = config
        d = config.hidden_size
        self.vision = build_vision_encoder(config.vision_name, config.image_size, vision_weights,
                                           config.vision_overrides, config.vision_stem)
        vision_dim = self.vision.num_features
        self.vision_adapter = nn.Identity() if vision_dim == d else nn.Linear(vision_dim, d)
        self.embeddings = TextEmbeddings(config)
        blocks = dict(heads=config.num_heads, mlp_ratio=config.mlp_ratio, dropout=config.dropout)
        self.text_layers = nn.ModuleList(TextBlock(d, **blocks) for _ in range(config.text_layers))
        self.text_norm = nn.LayerNorm(d)
        self.fusion_layers = nn.ModuleList(FusionBlock(d, **blocks) for _ in range(config.fusion_layers))
        self.fusion_norm = nn.LayerNorm(d)
        self.vision_proj, self.text_proj = nn.Linear(d, config.embed_dim), nn.Linear(d, config.embed_dim)
        self.temp = nn.Parameter(torch.tensor(config.temp_init))
        self.itm_head = nn.Linear(d, 2)
        self.mlm_head = MLMHead(config, self.embeddings.word)
        self._init_text_weights()

    def _init_text_weights(self) -> None:
        """BERT init (normal 0.02) for everything outside the vision encoder."""
        for name, module in self.named_modules():
            if name.startswith("vision.") or name == "vision":
                continue
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
                if isinstance(module, nn.Linear) and module.bias is not None:
                    nn.init.zeros_(module.bias)

    def temperature(self) -> Tensor:
        """The ITC temperature: its value clamped to [0.001, 0.5], its gradient passed through unchanged, so that
        a temperature at a bound can come back (a plain clamp gives no gradient there). Training also keeps
        the parameter itself inside the bounds (`clamp_temperature` after each optimiser step)."""
        return self.temp + (self.temp.clamp(TEMP_MIN, TEMP_MAX) - self.temp).detach()

    @torch.no_grad()
    def clamp_temperature(self) -> None:
        """Clamp the temperature parameter in place to [0.001, 0.5] (ALBEF's rule), so that it never drifts past
        a bound, where steps would go by with the value stuck at the bound."""
        self.temp.clamp_(TEMP_MIN, TEMP_MAX)

    def encode_image(self, pixels: Tensor) -> tuple[Tensor, Tensor]:
        """[B,3,H,W] -> (image tokens [B,Ni,D], L2-normalised ITC feature [B,embed_dim])."""
        tokens = self.vision_adapter(self.vision.forward_features(pixels))
        return tokens, F.normalize(self.vision_proj(tokens[:, 0]).float(), dim=-1)

    def encode_text(self, ids: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor]:
        """[B,L] -> (text tokens [B,L,D], L2-normalised ITC feature [B,embed_dim]); L <= config.max_text_len."""
        if ids.shape[1] > self.config.max_text_len:
            raise ValueError(f"text of {ids.shape[1]} wordpieces; this model takes at most "
                             f"{self.config.max_text_len} (truncate, keeping the final [SEP])")
        x = self.embeddings(ids)
        bias = key_padding_bias(attention_mask, x.dtype)
        for layer in self.text_layers:
            x = layer(x, bias)
        x = self.text_norm(x)
        return x, F.normalize(self.text_proj(pool(x, attention_mask, self.config.text_pool)).float(), dim=-1)

    def fuse(self, text_tokens: Tensor, attention_mask: Tensor, image_tokens: Tensor) -> Tensor:
        """Fusion output [B,L,D]; [:,0] is the fused [CLS]."""
        x, bias = text_tokens, key_padding_bias(attention_mask, text_tokens.dtype)
        for layer in self.fusion_layers:
            x = layer(x, bias, image_tokens)
        return self.fusion_norm(x)

    def itm_logits(self, fused: Tensor, attention_mask: Tensor) -> Tensor:
        """Fusion output [B,L,D] -> float32 [B,2]; column 1 = match. Reads the fused [CLS] or the token mean
        (`itm_pool`). Runs in float32 whatever the autocast (trainer.model.precision)."""
        with no_autocast(fused):
            return self.itm_head(pool(fused.float(), attention_mask, self.config.itm_pool))

    def mlm_logits(self, fused: Tensor) -> Tensor:
        """[..., D] -> float32 [..., vocab], in float32 whatever the autocast."""
        with no_autocast(fused):
            return self.mlm_head(fused.float())


def save_pretrained(model: PosMaskModel, out_dir: str | Path) -> None:
    """Write the model's weights and architecture (trainer.run_dir: model.safetensors, config.json), atomically;
    tied weights stored once."""
    from safetensors.torch import save_file

    from toolbox.atomic import atomic_path
    from trainer.run_dir import RunDir

    out = RunDir(out_dir)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()
             if k != "mlm_head.word_embeddings.weight"}
    with atomic_path(out.model) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    model.config.save(out.model_config)


def load_pretrained(path: str | Path, device: str | torch.device = "cpu") -> PosMaskModel:
    """A run dir (or any dir holding a model: trainer.run_dir.RunDir.holds_model) -> PosMaskModel in eval mode."""
    from safetensors.torch import load_file

    from toolbox.errors import UserError
    from trainer.run_dir import RunDir

    folder = RunDir(path)
    for file in (folder.model, folder.model_config):
        if not file.is_file():
            raise UserError(f"{folder.path}: no {file.name}; is this a finished `posmask pretrain` run?")
    config = ModelConfig.from_dict(json.loads(folder.model_config.read_text(encoding="utf-8")))
    model = PosMaskModel(config, vision_weights="random")  # weights come from the file below
    state = load_file(str(folder.model))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k != "mlm_head.word_embeddings.weight"]
    if missing or unexpected:
        raise UserError(f"{folder.model} does not fit {folder.model_config.name}: missing {missing[:5]}, "
                        f"unexpected {unexpected[:5]}")
    return model.to(device).eval()
