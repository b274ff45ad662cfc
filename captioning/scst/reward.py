"""A probed run as a caption scorer: its ITM match probability, or its ITC similarity, of captions for a fixed
set of images, through the one scoring loop (`evaluation.core.scoring`). It is the SCST reward and the scorer of
every column of the cross-score matrix."""
from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from evaluation.core.scoring import encode_images, encode_texts, itm_logits, match_score
from toolbox.errors import UserError

REWARDS: tuple[str, ...] = ("itm", "itc")


class CaptionScorer:
    """Scores captions of the images given at construction (their tokens and features are encoded once)."""

    def __init__(self, model, images: Sequence[Path | bytes], device: torch.device, batch_size: int = 64,
                 workers: int | None = None) -> None:
        self.model, self.device = model, device
        files = [io.BytesIO(x) if isinstance(x, bytes) else x for x in images]
        self.tokens, self.feats = encode_images(model, files, device, batch_size, workers)

    @torch.no_grad()
    def __call__(self, index: Tensor, texts: Sequence[str], kind: str = "itm", batch_size: int = 256) -> Tensor:
        """Scores [B] (float32, CPU) of image `index[b]` with `texts[b]`: the ITM match probability (`itm`) or the
        cosine of the ITC features (`itc`)."""
        if kind not in REWARDS:
            raise UserError(f"reward {kind!r}; valid: {', '.join(REWARDS)}")
        out = []
        for start in range(0, len(texts), batch_size):
            rows = index[start:start + batch_size].to(self.device)
            tokens, mask, feats = encode_texts(self.model, list(texts[start:start + batch_size]), self.device,
                                               batch_size, desc=None)
            if kind == "itm":
                out.append(match_score(itm_logits(self.model, self.tokens[rows], tokens, mask)).sigmoid())
            else:
                out.append((self.feats[rows] * feats).sum(-1))
        return torch.cat(out).float().cpu()
