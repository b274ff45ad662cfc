"""The probe's captioner: a small transformer decoder over the frozen features of one fixed image encoder.

Two decoder layers (self-attention with a causal mask, cross-attention to the projected image tokens, MLP:
the project's `FusionBlock`), a word embedding over the BERT wordpieces seen in the training shards, and a
linear LM head. `hidden_states` is the decoder without the LM head (what a latent mapper reads); every
trainable layer is an `nn.Linear`, `nn.Embedding` or `nn.LayerNorm`, so a LoRA adapter can target them.

Tokens inside the model are local indices: 0 = padding, 1 = [CLS] (start), 2 = [SEP] (end), 3 = unknown, then
the shards' wordpieces in id order; `to_local` / `to_bert` translate from and to BERT wordpiece ids.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from toolbox.errors import UserError
from trainer.model.blocks import FusionBlock

PAD, BOS, EOS, UNK = 0, 1, 2, 3
BANNED: tuple[int, ...] = (PAD, BOS, UNK)  # never sampled inside a caption
WEIGHTS, CONFIG = "captioner.safetensors", "captioner.json"
PRESETS: dict[str, dict[str, int]] = {"tiny": {"hidden_size": 128, "heads": 4, "max_len": 40},
                                      "thesis": {"hidden_size": 512, "heads": 8, "max_len": 30}}


@dataclass
class CaptionerConfig:
    """The architecture and its vocabulary (BERT ids of local indices 4.., in order)."""

    feature_dim: int  # width of the frozen encoder's tokens
    wordpieces: list[int] = field(default_factory=list)
    specials: tuple[int, int, int, int] = (0, 101, 102, 100)  # BERT [PAD], [CLS], [SEP], [UNK]
    hidden_size: int = 128
    layers: int = 2
    heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.1
    max_len: int = 40  # wordpieces with [CLS] and [SEP]

    @property
    def vocab_size(self) -> int:
        return len(self.specials) + len(self.wordpieces)


class Captioner(nn.Module):
    """Image tokens [B,Ni,F] + local tokens [B,L] -> next-token logits [B,L,V] (see module doc)."""

    def __init__(self, config: CaptionerConfig) -> None:
        super().__init__()
        self.config = config
        d = config.hidden_size
        self.image_proj = nn.Sequential(nn.LayerNorm(config.feature_dim), nn.Linear(config.feature_dim, d))
        self.embed = nn.Embedding(config.vocab_size, d, padding_idx=PAD)
        self.position = nn.Embedding(config.max_len, d)
        self.layers = nn.ModuleList(FusionBlock(d, config.heads, config.mlp_ratio, config.dropout)
                                    for _ in range(config.layers))
        self.norm = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, config.vocab_size)
        bert = torch.tensor(list(config.specials) + list(config.wordpieces), dtype=torch.long)
        to_local = torch.full((int(bert.max()) + 1,), UNK, dtype=torch.long)
        to_local[bert] = torch.arange(len(bert))
        self.register_buffer("to_bert", bert, persistent=False)
        self.register_buffer("lookup", to_local, persistent=False)

    def to_local(self, ids: Tensor) -> Tensor:
        """BERT wordpiece ids -> local indices (ids the captioner never saw -> UNK)."""
        ids = ids.to(self.lookup.device)
        return torch.where(ids < len(self.lookup), self.lookup[ids.clamp(max=len(self.lookup) - 1)], UNK)

    def hidden_states(self, features: Tensor, tokens: Tensor) -> Tensor:
        """The decoder's output [B,L,D] before the LM head, position t seeing tokens <= t."""
        length = tokens.shape[1]
        causal = torch.full((length, length), torch.finfo(torch.float32).min, device=tokens.device).triu(1)
        x = self.embed(tokens) + self.position(torch.arange(length, device=tokens.device))[None]
        image = self.image_proj(features.to(x.dtype))
        for layer in self.layers:
            x = layer(x, causal[None, None], image)
        return self.norm(x)

    def forward(self, features: Tensor, tokens: Tensor) -> Tensor:
        return self.lm_head(self.hidden_states(features, tokens)).float()

    @torch.no_grad()
    def generate(self, features: Tensor, sample: bool = False, generator: torch.Generator | None = None) -> Tensor:
        """Captions [B,T] of local tokens, starting with BOS; after EOS only PAD. Greedy, or sampled from the
        softmax; never PAD, BOS or UNK inside a caption. Decodes incrementally (each layer keeps its keys and
        values; no dropout), giving the logits `forward` gives."""
        batch, device = features.shape[0], features.device
        image = self.image_proj(features.to(self.lm_head.weight.dtype))
        cross = [_split(layer.cross_attn, layer.cross_attn.kv(image)) for layer in self.layers]
        past: list[tuple[Tensor, Tensor] | None] = [None] * len(self.layers)
        tokens = torch.full((batch, 1), BOS, dtype=torch.long, device=device)
        done = torch.zeros(batch, dtype=torch.bool, device=device)
        for t in range(self.config.max_len - 1):
            x = self.embed(tokens[:, -1:]) + self.position.weight[t]
            for i, layer in enumerate(self.layers):
                k, v = _split(layer.self_attn, layer.self_attn.kv(layer.norm1(x)))
                past[i] = (k, v) if past[i] is None else (torch.cat([past[i][0], k], 2), torch.cat([past[i][1], v], 2))
                x = x + _attend(layer.self_attn, layer.norm1(x), *past[i])
                x = x + _attend(layer.cross_attn, layer.norm2(x), *cross[i])
                x = x + layer.mlp.fc2(F.gelu(layer.mlp.fc1(layer.norm3(x))))
            logits = banned_out(self.lm_head(self.norm(x[:, 0])).float())
            nxt = (torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(1) if sample
                   else logits.argmax(-1))
            nxt = torch.where(done, torch.full_like(nxt, PAD), nxt)
            tokens = torch.cat([tokens, nxt[:, None]], dim=1)
            done |= nxt == EOS
            if bool(done.all()):
                break
        return tokens

    def bert_ids(self, tokens: Tensor) -> list[list[int]]:
        """Each caption's BERT wordpiece ids, without BOS, EOS and padding."""
        out = []
        for row in tokens.tolist():
            words = [t for t in row[1:] if t not in (PAD, BOS)]
            words = words[:words.index(EOS)] if EOS in words else words
            out.append(self.to_bert[torch.tensor(words, dtype=torch.long)].tolist() if words else [])
        return out


def _split(attn: nn.Module, kv: Tensor) -> tuple[Tensor, Tensor]:
    """An attention layer's key/value projection [B,n,2D] as keys and values [B,H,n,D/H] (its own layout)."""
    b, n, _ = kv.shape
    k, v = kv.view(b, n, 2, attn.heads, -1).permute(2, 0, 3, 1, 4)
    return k, v


def _attend(attn: nn.Module, x: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """The attention layer's output for queries from `x` [B,1,D] over the given keys and values."""
    b, n, d = x.shape
    q = attn.q(x).view(b, n, attn.heads, d // attn.heads).transpose(1, 2)
    return attn.out(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d))


def decode(model: Captioner, tokens: Tensor) -> list[str]:
    """The captions as text (the BERT tokenizer joins the wordpieces)."""
    from shards.tokenizer import load_tokenizer

    return load_tokenizer()[0].batch_decode(model.bert_ids(tokens), skip_special_tokens=True)


@torch.no_grad()
def greedy_captions(model: Captioner, features: Tensor, batch_size: int = 64) -> list[str]:
    """The greedy caption of each image's frozen features [N,Ni,F], as text."""
    device = next(model.parameters()).device
    model.eval()
    return [text for start in range(0, len(features), batch_size)
            for text in decode(model, model.generate(features[start:start + batch_size].to(device).float()))]


def token_log_probs(model: nn.Module, features: Tensor, tokens: Tensor) -> tuple[Tensor, Tensor]:
    """Log-probabilities [B,T-1] of each caption's tokens after BOS under `model` (with gradients), and the
    mask of real tokens (up to and including EOS). The softmax is the one `generate` samples from (PAD, BOS and
    UNK banned); the padding after EOS gets 0."""
    logits = banned_out(model(features, tokens[:, :-1]))
    log_probs = logits.log_softmax(-1).gather(2, tokens[:, 1:, None]).squeeze(2)
    mask = tokens[:, 1:] != PAD
    return log_probs.masked_fill(~mask, 0.0), mask


def banned_out(logits: Tensor) -> Tensor:
    """`logits` [..., V] with the tokens never sampled inside a caption (`BANNED`) set to -inf (a new tensor)."""
    banned = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
    banned[list(BANNED)] = True
    return logits.masked_fill(banned, float("-inf"))


def save_captioner(model: Captioner, out: Path) -> None:
    """Write the weights (safetensors) and the config (json), atomically."""
    from safetensors.torch import save_file

    from toolbox.atomic import atomic_path, atomic_write_json

    with atomic_path(out / WEIGHTS) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    atomic_write_json(out / CONFIG, asdict(model.config))


def load_captioner(folder: Path, device: torch.device | str = "cpu") -> Captioner:
    """A saved captioner in eval mode; UserError when the folder holds none."""
    from safetensors.torch import load_file

    if not (folder / WEIGHTS).is_file() or not (folder / CONFIG).is_file():
        raise UserError(f"{folder}: no captioner ({WEIGHTS} + {CONFIG}); train one with `posmask probe-scst`")
    data = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    model = Captioner(CaptionerConfig(**{**data, "specials": tuple(data["specials"])}))
    model.load_state_dict(load_file(str(folder / WEIGHTS)))
    return model.to(device).eval()
