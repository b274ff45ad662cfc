"""The one scoring loop of the zero-shot tasks: encode images and texts, score image-text pairs with ITM and ITC.

Encoders and fusion run under `autocast` (bf16 on GPU). The ITM head and the ITC similarity always run
in float32 with autocast off: bf16 keeps 8 bits of mantissa, and rounded scores tie.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from evaluation.common import image_loader, tokenize
from shards.errors import UserError
from shards.progress import progress
from trainer.engine import autocast


@dataclass
class ImageBatch:
    """One batch of encoded images (positions in the path list) and the positions of its unreadable images."""

    index: list[int]
    tokens: torch.Tensor | None  # [n,Ni,D]; None when no image of the batch was readable
    feats: torch.Tensor | None  # [n,E] normalised ITC features, float32
    unreadable: list[int]


@torch.no_grad()
def image_batches(model, paths: Sequence[Path], device: torch.device, batch_size: int, workers: int | None = None,
                  desc: str = "images") -> Iterator[ImageBatch]:
    """Encode the images in path order, batch by batch; unreadable images are skipped and reported."""
    for idx, pixels, ok in progress(image_loader(paths, model, batch_size, workers), desc=desc, unit="batch"):
        unreadable = [int(i) for i in idx[~ok]]
        if not bool(ok.any()):
            yield ImageBatch([], None, None, unreadable)
            continue
        with autocast(device):
            tokens, feats = model.encode_image(pixels[ok].to(device, non_blocking=True))
        yield ImageBatch([int(i) for i in idx[ok]], tokens, feats.float(), unreadable)


def encode_images(model, paths: Sequence[Path], device: torch.device, batch_size: int,
                  workers: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Image tokens [N,Ni,D] and normalised float32 features [N,E] of all images, on `device`;
    a UserError naming the first unreadable images."""
    tokens, feats = [], []
    for batch in image_batches(model, paths, device, batch_size, workers):
        if batch.unreadable:
            raise UserError(f"unreadable image(s): {', '.join(str(paths[i]) for i in batch.unreadable[:3])}")
        tokens.append(batch.tokens)
        feats.append(batch.feats)
    return torch.cat(tokens), torch.cat(feats)


@torch.no_grad()
def encode_texts(model, texts: Sequence[str], device: torch.device, batch_size: int,
                 desc: str | None = "texts") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Text tokens [N,L,D], attention masks [N,L] and normalised float32 features [N,E], on `device`
    (padded to the longest text; `desc=None` shows no progress)."""
    ids, mask = tokenize(texts, int(model.config.max_text_len), device)
    tokens, feats = [], []
    for start in progress(range(0, len(texts), batch_size), desc=desc or "", unit="batch", disable=desc is None):
        with autocast(device):
            tok, feat = model.encode_text(ids[start:start + batch_size], mask[start:start + batch_size])
        tokens.append(tok)
        feats.append(feat.float())
    return torch.cat(tokens), mask, torch.cat(feats)


def itc_similarity(img_feat: torch.Tensor, txt_feat: torch.Tensor) -> torch.Tensor:
    """Cosine similarities [Ni,Nt] of normalised ITC features, in float32."""
    with torch.autocast(img_feat.device.type, enabled=False):
        return img_feat.float() @ txt_feat.float().T


def itm_head_log_odds(model, fused: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Log-odds of 'match' (logit 1 - logit 0) [B] from fusion output [B,L,D]: the ITM head in float32."""
    with torch.autocast(fused.device.type, enabled=False):
        logits = model.itm_logits(fused.float(), mask)
    return logits[:, 1] - logits[:, 0]


@torch.no_grad()
def itm_log_odds(model, img_tokens: torch.Tensor, txt_tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """ITM log-odds of 'match' [B], float32, for aligned rows of image tokens and text tokens."""
    with autocast(img_tokens.device):
        fused = model.fuse(txt_tokens, mask, img_tokens)
    return itm_head_log_odds(model, fused, mask)


@torch.no_grad()
def score_text_groups(model, img_tokens: torch.Tensor, groups: Sequence[Sequence[str]]) -> torch.Tensor:
    """ITM log-odds [B,G], float32: image i of `img_tokens` [B,Ni,D] with each text of `groups[i]`
    (every group holds G texts)."""
    width = len(groups[0])
    texts = [group[j] for j in range(width) for group in groups]  # text j of every image, then text j+1
    txt_tokens, mask, _ = encode_texts(model, texts, img_tokens.device, len(texts), desc=None)
    scores = itm_log_odds(model, img_tokens.repeat(width, 1, 1), txt_tokens, mask)
    return scores.view(width, len(groups)).T


def score_images_with_texts(model, paths: Sequence[Path], groups: Sequence[Sequence[str]], device: torch.device,
                            batch_size: int, workers: int | None = None,
                            desc: str = "images") -> tuple[torch.Tensor, list[int]]:
    """ITM log-odds [N,G] (float32, on the CPU) of image `paths[i]` with each text of `groups[i]`, batch by
    batch; rows of unreadable images are NaN, and their positions are returned too."""
    scores = torch.full((len(paths), len(groups[0]) if groups else 0), float("nan"))
    unreadable: list[int] = []
    for batch in image_batches(model, paths, device, batch_size, workers, desc):
        unreadable.extend(batch.unreadable)
        if batch.tokens is not None:
            scores[batch.index] = score_text_groups(model, batch.tokens, [groups[i] for i in batch.index]).cpu()
    return scores, unreadable
