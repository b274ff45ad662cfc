"""ViZer's zero-label stage: the captioner fine-tuned with LoRA (peft) on unlabeled images.

For each image the captioner (with its adapters) generates a greedy caption; the hidden states of the generated
positions are recomputed with gradients, pooled as the mapper was trained (`mapper.pooled_states`), mapped by the
frozen mapper, and 1 - cos against the image's frozen feature is minimised. Only the adapters train; the base
weights stay as they were.

Dropout: the captioner stays in **eval mode** for both the generation and the state recompute (gradients still
flow), so the states fed to the mapper are computed exactly as the mapper's training states were
(`mapper.pair_states`, eval mode): at initialisation (LoRA B = 0) they are the same numbers. peft's own
`lora_dropout` is an `nn.Dropout` inside each adapted layer, active only in train mode; it is therefore set to 0
(`LoraSettings.dropout`), and a value > 0 would have no effect.

Placement (`LoraSettings.targets`, `posmask vizer --lora-targets`): `text` (default) puts adapters only on the
linear layers off the image path, i.e. every linear layer but the LM head that is **not inside
`image_proj` or a decoder layer's `cross_attn`** (its q, kv and out): the self-attention and the MLP of each
layer. The image path (projection, cross-attention) keeps its base weights; the MLPs and later layers still read
the cross-attention's output through the residual stream, so a caption-independent path remains, which is what
the report's shuffled-caption control (`control`) measures. `all` is the old placement: every linear layer
but the LM head (the hidden states do not pass through it).

The unlabeled images are read as images only: from a folder (`*.jpg`, `*.jpeg`, `*.png`, sorted by name) or
from shards, whose tars are read for their image bytes and whose `captions.parquet` is never opened.
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from captioning.captioner import Captioner
from captioning.train import Step
from captioning.vizer.mapper import Mapper, cosine_loss, image_targets, pooled_states
from toolbox.errors import UserError

log = logging.getLogger(__name__)
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png")


TARGETS: tuple[str, ...] = ("text", "all")
IMAGE_PATH: tuple[str, ...] = ("image_proj", "cross_attn")  # module names whose linear layers read the image


@dataclass(frozen=True)
class LoraSettings:
    """The seed's adapter (rank 32, alpha 64, no bias); dropout 0 (inactive in eval mode, see module doc);
    `targets`: `text` or `all` (see module doc)."""

    rank: int = 32
    alpha: int = 64
    dropout: float = 0.0
    targets: str = "text"


def unlabeled_images(spec: str, exclude: set[str] = frozenset()) -> tuple[list[str], list]:
    """(names, images) of an image folder (paths) or of tag-shards outputs (JPEG bytes, one per image); images
    whose file stem or image id is in `exclude` (e.g. the evaluation images) are left out. UserError when none
    is left."""
    from captioning.data import folder_images, shard_dirs

    path = Path(spec)
    if path.is_dir() and not (path / "manifest.json").is_file():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.stem not in exclude)
        names, images = [p.name for p in files], list(files)
    else:
        try:
            folders = shard_dirs(spec)
        except UserError:
            raise UserError(f"--unlabeled {spec}: neither a folder of images nor tag-shards output") from None
        seen: set[str] = set(exclude)
        pairs = [pair for folder in folders for pair in folder_images(folder, seen=seen)]
        names, images = [i for i, _ in pairs], [b for _, b in pairs]
    if not images:
        raise UserError(f"--unlabeled {spec}: no images (a folder of {'/'.join(IMAGE_SUFFIXES)} files or "
                        "tag-shards output, the evaluation images left out)")
    log.info("unlabeled images: %d from %s (%d excluded names)", len(images), spec, len(exclude))
    return names, images


def lora_targets(model: Captioner, targets: str = "text") -> list[str]:
    """The names of the linear layers that get adapters: `all` = every one but the LM head; `text` = those of
    them outside the image path (`IMAGE_PATH`). UserError for another value."""
    if targets not in TARGETS:
        raise UserError(f"--lora-targets {targets}: unknown; valid: {', '.join(TARGETS)}")
    names = [name for name, module in model.named_modules() if isinstance(module, nn.Linear) and name != "lm_head"]
    if targets == "all":
        return names
    return [name for name in names if not set(name.split(".")) & set(IMAGE_PATH)]


def with_lora(model: Captioner, s: LoraSettings, seed: int) -> nn.Module:
    """The captioner wrapped by peft with LoRA adapters (seeded initialisation); only the adapters train."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=s.rank, lora_alpha=s.alpha, lora_dropout=s.dropout, bias="none",
                        target_modules=lora_targets(model, s.targets))
    torch.manual_seed(seed)
    return get_peft_model(model, config)


def inner(peft_model: nn.Module) -> Captioner:
    """The captioner inside a peft model (its linear layers carry the adapters)."""
    return peft_model.get_base_model()


def lora_step(peft_model: nn.Module, mapper: Mapper, features: Tensor, batch_size: int) -> Step:
    """One zero-label step on `batch_size` unlabeled images drawn without replacement (within the batch) from
    the frozen features [M,Ni,F]: generate, recompute the generated positions' states with gradients (eval
    mode, as the mapper's states), map, cosine loss against the images' own features. Reads no caption."""
    captioner = inner(peft_model)
    device = next(mapper.parameters()).device

    def step(net: nn.Module, rng: random.Random) -> tuple[Tensor, dict[str, float]]:
        rows = rng.sample(range(len(features)), min(batch_size, len(features)))
        feats = features[rows].to(device).float()
        captioner.eval()  # dropout off for generation and recompute alike (module doc)
        tokens = captioner.generate(feats)
        loss = cosine_loss(mapper(pooled_states(captioner, feats, tokens)), image_targets(feats))
        return loss, {"length": float((tokens[:, 1:] != 0).sum(1).float().mean())}
    return step


def merged(peft_model: nn.Module) -> Captioner:
    """A plain captioner with the adapters merged into its weights (the peft model is consumed)."""
    return peft_model.merge_and_unload().eval()
