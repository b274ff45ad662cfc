"""The one scoring loop of the zero-shot tasks: encode images and texts, score image-text pairs with ITM and ITC.

Encoders and fusion run under `autocast` (bf16 on GPU). The ITM head and the ITC similarity run in float32
whatever the autocast, in the model itself (trainer.model.precision): bf16 keeps 8 bits of mantissa, and rounded
scores tie.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from evaluation.core.common import image_loader, tokenize
from toolbox.errors import UserError
from toolbox.progress import progress
from trainer.engine.engine import autocast
from trainer.model.precision import similarity as itc_similarity  # the ITC ranking score, in float32

ITM_SCORES: tuple[str, ...] = ("logodds", "logit")


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


def match_score(logits: torch.Tensor, how: str = "logodds") -> torch.Tensor:
    """The 'match' score of ITM logits [...,2]: `logodds`, logit 1 - logit 0 (the log-odds of the match
    probability), or `logit`, the raw match logit (what ALBEF's retrieval re-ranks by; the order can differ)."""
    if how == "logodds":
        return logits[..., 1] - logits[..., 0]
    if how == "logit":
        return logits[..., 1]
    raise ValueError(f"ITM score {how!r}; valid: {', '.join(ITM_SCORES)}")


@torch.no_grad()
def itm_logits(model, img_tokens: torch.Tensor, txt_tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """ITM logits [B,2] (column 1 = match), float32, for aligned rows of image tokens and text tokens."""
    with autocast(img_tokens.device):
        return model.itm_logits(model.fuse(txt_tokens, mask, img_tokens), mask)


@torch.no_grad()
def score_text_groups(model, img_tokens: torch.Tensor, groups: Sequence[Sequence[str]]) -> torch.Tensor:
    """ITM logits [B,G,2], float32: image i of `img_tokens` [B,Ni,D] with each text of `groups[i]`
    (every group holds G texts)."""
    width = len(groups[0])
    texts = [group[j] for j in range(width) for group in groups]  # text j of every image, then text j+1
    txt_tokens, mask, _ = encode_texts(model, texts, img_tokens.device, len(texts), desc=None)
    logits = itm_logits(model, img_tokens.repeat(width, 1, 1), txt_tokens, mask)
    return logits.view(width, len(groups), 2).transpose(0, 1)


def score_images_with_texts(model, paths: Sequence[Path], groups: Sequence[Sequence[str]], device: torch.device,
                            batch_size: int, workers: int | None = None,
                            desc: str = "images") -> tuple[torch.Tensor, list[int]]:
    """ITM logits [N,G,2] (float32, on the CPU; column 1 = match) of image `paths[i]` with each text of
    `groups[i]`, batch by batch; rows of unreadable images are NaN, and their positions are returned too."""
    scores = torch.full((len(paths), len(groups[0]) if groups else 0, 2), float("nan"))
    unreadable: list[int] = []
    for batch in image_batches(model, paths, device, batch_size, workers, desc):
        unreadable.extend(batch.unreadable)
        if batch.tokens is not None:
            scores[batch.index] = score_text_groups(model, batch.tokens, [groups[i] for i in batch.index]).cpu()
    return scores, unreadable


__all__ = ["ITM_SCORES", "ImageBatch", "encode_images", "encode_texts", "image_batches", "itc_similarity",
           "itm_logits", "match_score", "score_images_with_texts", "score_text_groups"]
