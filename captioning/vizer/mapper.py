"""ViZer's latent alignment mapper: an MLP `h` from the captioner's pooled hidden states to the frozen image
feature, trained with the loss 1 - cos(F_I, h(f(E(x)))).

- `f(E(x))` is `Captioner.hidden_states` (the decoder without its LM head) of the caption tokens, **mean-pooled
  over the caption's positions**: the positions whose input is a word of the caption or its end token (the
  start token's position, which sees no word, is left out; padding too).
- `F_I` is the frozen encoder's [CLS] token (token 0 of the features), the image's pooled feature.
- Pairs come from the tagged shards' captions (ViZer_GT) or from the captioner's own captions of its training
  images (ViZer_G: greedy first, then sampled rounds when more pairs are asked for than there are images).

The captioner is frozen while the mapper trains, so the pooled states of every pair are computed once.
"""
from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from captioning.captioner import PAD, Captioner
from captioning.train import Step, caption_tokens

log = logging.getLogger(__name__)
VARIANTS: tuple[str, ...] = ("gt", "g")
NAMES: dict[str, str] = {"gt": "ViZer_GT", "g": "ViZer_G"}
MAPPER_WEIGHTS, MAPPER_CONFIG = "mapper.safetensors", "mapper.json"


class Mapper(nn.Module):
    """Depth-2 MLP: hidden size -> width -> image feature width (GELU between)."""

    def __init__(self, in_dim: int, width: int, out_dim: int) -> None:
        super().__init__()
        self.dims = {"in_dim": in_dim, "width": width, "out_dim": out_dim}
        self.net = nn.Sequential(nn.Linear(in_dim, width), nn.GELU(), nn.Linear(width, out_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def cosine_loss(mapped: Tensor, image: Tensor) -> Tensor:
    """Mean of 1 - cos(F_I, h(...)) over the batch."""
    return (1.0 - F.cosine_similarity(mapped.float(), image.float(), dim=-1)).mean()


def image_targets(features: Tensor) -> Tensor:
    """F_I [N,F]: each image's [CLS] token of the frozen features [N,Ni,F], as float32."""
    return features[:, 0].float()


def pooled_states(captioner: nn.Module, features: Tensor, tokens: Tensor) -> Tensor:
    """Mean of the hidden states [B,D] over the caption's positions (see module doc); with gradients when the
    caller allows them. `captioner` is a `Captioner` (or the same with LoRA layers injected)."""
    hidden = captioner.hidden_states(features.float(), tokens)
    mask = (tokens != PAD).clone()
    mask[:, 0] = False
    mask = mask.to(hidden.dtype)[..., None]
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


@dataclass
class Pairs:
    """Mapping data: image rows (into the training features) and each pair's caption tokens (local, padded)."""

    rows: list[int]
    tokens: list[Tensor]


def gt_pairs(model: Captioner, captions: list[list[np.ndarray]], n: int, seed: int) -> Pairs:
    """Up to `n` (image, ground-truth caption) pairs of the shards, in a seeded random order."""
    pairs = [(row, c) for row, caps in enumerate(captions) for c in caps]
    random.Random(seed).shuffle(pairs)
    pairs = pairs[:n]
    tokens = caption_tokens(model, [c for _, c in pairs], torch.device("cpu"))
    return Pairs([r for r, _ in pairs], list(tokens))


@torch.no_grad()
def generated_pairs(model: Captioner, features: Tensor, n: int, seed: int, batch_size: int = 64) -> Pairs:
    """`n` (image, own caption) pairs: the greedy caption of every image in a seeded random order, then sampled
    captions in further rounds until there are `n`. No caption label is read."""
    order = list(range(len(features)))
    random.Random(seed).shuffle(order)
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    model.eval()
    rows: list[int] = []
    tokens: list[Tensor] = []
    round_ = 0
    while len(rows) < n:
        take = order[:n - len(rows)]
        for start in range(0, len(take), batch_size):
            chunk = take[start:start + batch_size]
            out = model.generate(features[chunk].to(device).float(), sample=round_ > 0,
                                 generator=generator if round_ > 0 and device.type == "cpu" else None)
            rows += chunk
            tokens += list(out.cpu())
        round_ += 1
    return Pairs(rows, tokens)


@torch.no_grad()
def pair_states(model: Captioner, features: Tensor, pairs: Pairs, batch_size: int = 256) -> Tensor:
    """The pooled hidden states [N,D] (float32, CPU) of every pair under the frozen captioner."""
    device = next(model.parameters()).device
    model.eval()
    out = []
    for start in range(0, len(pairs.rows), batch_size):
        rows = pairs.rows[start:start + batch_size]
        tokens = nn.utils.rnn.pad_sequence(pairs.tokens[start:start + batch_size], batch_first=True,
                                           padding_value=PAD).to(device)
        out.append(pooled_states(model, features[rows].to(device), tokens).float().cpu())
    return torch.cat(out)


def mapper_step(states: Tensor, targets: Tensor, batch_size: int, device: torch.device) -> Step:
    """One mapper step on `batch_size` pairs drawn without replacement (within the batch) from the cached pooled
    states [N,D] and their images' features [N,F]."""
    def step(net: nn.Module, rng: random.Random) -> tuple[Tensor, dict[str, float]]:
        rows = rng.sample(range(len(states)), min(batch_size, len(states)))
        return cosine_loss(net(states[rows].to(device)), targets[rows].to(device)), {}
    return step


def save_mapper(mapper: Mapper, out: Path) -> None:
    """Write the mapper's weights (safetensors) and dimensions (json), atomically."""
    from safetensors.torch import save_file

    from toolbox.atomic import atomic_path, atomic_write_json

    with atomic_path(out / MAPPER_WEIGHTS) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in mapper.state_dict().items()}, str(tmp))
    atomic_write_json(out / MAPPER_CONFIG, mapper.dims)


def load_mapper(folder: Path, device: torch.device | str = "cpu") -> Mapper:
    """A saved mapper, frozen, in eval mode."""
    from safetensors.torch import load_file

    mapper = Mapper(**json.loads((folder / MAPPER_CONFIG).read_text(encoding="utf-8")))
    mapper.load_state_dict(load_file(str(folder / MAPPER_WEIGHTS)))
    for p in mapper.parameters():
        p.requires_grad_(False)
    return mapper.to(device).eval()
