"""Zero-shot image-text retrieval (thesis Table 4.1): ITC for all pairs, top-k re-ranked with ITM.

Input: a retrieval JSON (list of `{image, caption: [..]}`, Flickr30K/COCO Karpathy format) and the
image root the `image` paths are relative to. Output: TR (image -> text) and IR (text -> image)
R@1/5/10 and their mean, for the ITM re-ranking (main figure) and for ITC alone.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evaluation.core.common import load_json
from evaluation.retrieval.metric import KS, metrics_from_hits, retrieval_hits
from evaluation.core.scoring import encode_images, encode_texts, itc_similarity, itm_logits, match_score
from toolbox.errors import UserError
from toolbox.progress import progress

log = logging.getLogger(__name__)


@dataclass
class RetrievalSet:
    """Images, captions and the ground truth linking them."""

    images: list[Path]
    texts: list[str]
    txt2img: list[int]
    img2txt: list[list[int]]
    missing: list[str] = field(default_factory=list)


def load_retrieval_set(annotation: str | os.PathLike[str], image_root: str | os.PathLike[str],
                       check_images: bool = True) -> RetrievalSet:
    """Read a retrieval JSON; images that are not on disk are dropped (with their captions) and listed."""
    data = load_json(annotation, "retrieval annotation file")
    if not isinstance(data, list) or not all(isinstance(e, dict) and isinstance(e.get("image"), str) and "caption" in e
                                             for e in data):
        raise UserError(f"{annotation}: expected a list of {{image, caption: [..]}} entries")
    root = Path(image_root)
    out = RetrievalSet([], [], [], [])
    for entry in data:
        path = root / entry["image"]
        if check_images and not path.is_file():
            out.missing.append(str(entry["image"]))
            continue
        captions = entry["caption"] if isinstance(entry["caption"], list) else [entry["caption"]]
        img = len(out.images)
        out.images.append(path)
        out.img2txt.append([])
        for caption in captions:
            out.img2txt[img].append(len(out.texts))
            out.texts.append(str(caption))
            out.txt2img.append(img)
    if out.missing:
        log.warning("%d of %d images missing under %s (first: %s); evaluating on the rest",
                    len(out.missing), len(data), root, out.missing[0])
    if not out.images:
        raise UserError(f"no image of {annotation} found under {root}")
    return out


@torch.no_grad()
def rerank(model, sims: torch.Tensor, k: int, query_is_image: bool, img_tokens: torch.Tensor,
           txt_tokens: torch.Tensor, txt_mask: torch.Tensor, batch_size: int, score: str = "logodds") -> torch.Tensor:
    """Scores [queries, candidates]: the ITM score (`score`: log-odds, or the raw match logit as ALBEF; see
    evaluation.core.scoring.match_score) on each query's top k by ITC; elsewhere the ITC similarity shifted below
    the lowest ITM score (so R@n beyond k still follows ITC)."""
    k = min(k, sims.shape[1])
    top = sims.topk(k, dim=1).indices  # [Q, k]
    queries = torch.arange(sims.shape[0], device=sims.device).unsqueeze(1).expand(-1, k).reshape(-1)
    cands = top.reshape(-1)
    itm = torch.empty(queries.shape[0], device=sims.device)
    img_all, txt_all = (queries, cands) if query_is_image else (cands, queries)
    lengths = txt_mask.sum(dim=1)
    order = torch.argsort(lengths[txt_all], stable=True)  # similar lengths together: little padding
    desc = "ITM i2t" if query_is_image else "ITM t2i"
    for start in progress(range(0, order.shape[0], batch_size), desc=desc, unit="batch"):
        sel = order[start:start + batch_size]
        img_idx, txt_idx = img_all[sel], txt_all[sel]
        length = int(lengths[txt_idx].max())  # trim the padding this batch does not need
        logits = itm_logits(model, img_tokens[img_idx], txt_tokens[txt_idx, :length], txt_mask[txt_idx, :length])
        itm[sel] = match_score(logits, score)
    # below the top k keep the ITC order, shifted under every ITM score (by no more than needed, to keep precision)
    scores = sims.float() + (float(itm.min()) - 2.0 - float(sims.max()) + 1.0 if itm.numel() else 0.0)
    scores[queries, cands] = itm
    return scores


def evaluate_retrieval(model, data: RetrievalSet, device: torch.device, k: int = 128, batch_size: int = 64,
                       itm_batch_size: int = 128, ties: str = "pessimistic",
                       workers: int | None = None,
                       rerank_score: str = "logodds") -> tuple[dict[str, Any], dict[str, Any]]:
    """ITC + ITM-re-ranked retrieval metrics on one retrieval set, and the per-query hits at k = 1, 5, 10
    (TR: one row per image; IR: one row per caption) for paired comparisons between runs."""
    log.info("retrieval: %d images, %d captions, re-rank top %d", len(data.images), len(data.texts), k)
    img_tokens, img_feat = encode_images(model, data.images, device, batch_size, workers)
    txt_tokens, txt_mask, txt_feat = encode_texts(model, data.texts, device, batch_size)
    sims = itc_similarity(img_feat, txt_feat)  # [Ni, Nt]
    itc = metrics_from_hits(*retrieval_hits(sims.cpu().numpy(), sims.T.cpu().numpy(), data.txt2img, data.img2txt,
                                            ties=ties))
    i2t = rerank(model, sims, k, True, img_tokens, txt_tokens, txt_mask, itm_batch_size, rerank_score)
    t2i = rerank(model, sims.T.contiguous(), k, False, img_tokens, txt_tokens, txt_mask, itm_batch_size, rerank_score)
    tr_hits, ir_hits = retrieval_hits(i2t.cpu().numpy(), t2i.cpu().numpy(), data.txt2img, data.img2txt, ties=ties)
    itm = metrics_from_hits(tr_hits, ir_hits)
    log.info("retrieval ITM: TR@1 %.2f IR@1 %.2f mean %.2f (ITC mean %.2f)",
             itm["tr_r1"], itm["ir_r1"], itm["r_mean"], itc["r_mean"])
    image_ids = [str(p) for p in data.images]  # the cluster key: an image with all its captions
    items = {"ks": list(KS), "tr": {"ids": image_ids, "image_ids": image_ids, "hits": tr_hits.tolist()},
             "ir": {"ids": data.texts, "image_ids": [image_ids[i] for i in data.txt2img], "hits": ir_hits.tolist()}}
    return {
        "task": "retrieval",
        "n_images": len(data.images),
        "n_texts": len(data.texts),
        "k_rerank": k,
        "rerank_score": rerank_score,
        "ties": ties,
        "metrics": itm,
        "itc": itc,
        "chance_r1": {"tr": 100.0 * float(np.mean([len(t) for t in data.img2txt])) / max(len(data.texts), 1),
                      "ir": 100.0 / max(len(data.images), 1)},
        "missing_images": data.missing,
    }, items
