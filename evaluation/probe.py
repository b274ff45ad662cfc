"""Caption-perturbation probe: does the model align whole captions or only the visual nouns?

Input: the UPOS tags of evaluation captions (`captions.parquet` of a `posmask tag-shards` output,
made from a COCO-format captions file) and that COCO captions file + image root (to find each
caption's image). Per image, one caption and its perturbations (see `probe_perturb`) are scored
with the ITM head. Output: mean match probability per variant and the share of images for which
the original caption beats each variant.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evaluation.common import load_json
from evaluation.probe_perturb import VARIANTS, Vocabulary, is_probeable, perturb
from shards.errors import UserError
from shards.manifest import CAPTIONS_NAME

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)
UPOS_COLUMNS: tuple[str, ...] = ("upos", "word_upos", "words_upos", "word_pos")


@dataclass
class ProbeItem:
    """One image, one tagged caption."""

    image: Path
    image_id: str
    words: list[str]
    upos: list[int]


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", text.lower())).strip()


def find_tags(path: str | os.PathLike[str]) -> Path:
    """captions.parquet itself, or inside the given shard output directory."""
    p = Path(path)
    if p.is_dir():
        p = p / CAPTIONS_NAME
    if not p.is_file():
        raise UserError(f"probe: no {CAPTIONS_NAME} at {path}; tag the evaluation captions with "
                        "`posmask tag-shards` and pass the output with --probe-tags")
    return p


def load_probe_items(tags: str | os.PathLike[str], captions_json: str | os.PathLike[str],
                     image_root: str | os.PathLike[str], per_image: int = 1) -> list[ProbeItem]:
    """Join tagged captions to their images: by an `image_id` column, the id inside the sample key,
    or (last resort) the caption text against the COCO file. Keeps `per_image` probeable captions per image."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tags_file = find_tags(tags)
    try:
        table = pq.read_table(tags_file).to_pylist()
    except (OSError, pa.ArrowException) as err:
        raise UserError(f"probe: {tags_file}: unreadable parquet ({str(err).splitlines()[0][:200]})") from None
    if not table:
        raise UserError(f"probe: {tags} has no rows")
    upos_col = next((c for c in UPOS_COLUMNS if c in table[0]), None)
    if "words" not in table[0] or upos_col is None:
        raise UserError(f"probe: {tags} lacks the words / word UPOS columns (has {sorted(table[0])})")
    coco = load_json(captions_json, "COCO captions file")
    if not isinstance(coco, dict) or "images" not in coco:
        raise UserError(f"{captions_json}: not a COCO captions file (no 'images')")
    try:
        files = {str(im["id"]): str(im["file_name"]) for im in coco["images"]}
        by_text = {_norm(a["caption"]): str(a["image_id"]) for a in coco.get("annotations", [])}
    except (KeyError, TypeError, AttributeError) as err:
        raise UserError(f"{captions_json}: malformed COCO captions file ({type(err).__name__}: {err})") from None
    by_int = {}
    for k in files:
        try:
            by_int[int(k)] = k
        except ValueError:
            pass
    root = Path(image_root)

    def image_of(row: dict[str, Any]) -> str | None:
        if row.get("image_id") is not None and str(row["image_id"]) in files:
            return str(row["image_id"])
        for part in reversed(str(row.get("key", "")).split("-")[1:]):
            if part in files:
                return part
            if part.isdigit() and int(part) in by_int:
                return by_int[int(part)]
        return by_text.get(_norm(str(row.get("caption", ""))))

    items: list[ProbeItem] = []
    count: dict[str, int] = {}
    unmatched = 0
    for row in sorted(table, key=lambda r: str(r.get("key", ""))):
        image_id = image_of(row)
        if image_id is None:
            unmatched += 1
            continue
        words, upos = [str(w) for w in row["words"]], [int(u) for u in row[upos_col]]
        if count.get(image_id, 0) >= per_image or not is_probeable(upos):
            continue
        path = root / files[image_id]
        if not path.is_file():
            continue
        count[image_id] = count.get(image_id, 0) + 1
        items.append(ProbeItem(path, image_id, words, upos))
    if unmatched:
        log.warning("probe: %d tagged captions could not be matched to an image of %s", unmatched, captions_json)
    if not items:
        raise UserError(f"probe: no tagged caption of {tags} matches an image under {root}")
    return items


def run_probe(model, items: list[ProbeItem], device: torch.device, seed: int = 0, batch_size: int = 32,
              workers: int | None = None, n_examples: int = 5) -> dict[str, Any]:
    """Score originals and perturbations; per-variant mean probability and original-wins share."""
    from evaluation.scoring import match_score, score_images_with_texts

    vocab = Vocabulary.build([(it.words, it.upos) for it in items])
    texts = [perturb(it.words, it.upos, vocab, seed * 1_000_003 + i) for i, it in enumerate(items)]
    names = ("original",) + VARIANTS
    logits, _ = score_images_with_texts(model, [it.image for it in items], [[t[n] for n in names] for t in texts],
                                        device, batch_size, workers, desc="probe")
    probs = match_score(logits).sigmoid().double().numpy()
    good = ~np.isnan(probs).any(axis=1)
    probs = probs[good]
    orig = probs[:, 0]
    variants = {name: {"mean_match_prob": float(probs[:, j].mean()),
                       "original_wins": 100.0 * float(np.mean(orig > probs[:, j])) if j else float("nan")}
                for j, name in enumerate(names)}
    result = {
        "task": "probe", "seed": seed, "n_images": int(good.sum()), "unreadable_images": int((~good).sum()),
        "variants": variants,
        "examples": [texts[i] | {"image": items[i].image.name} for i in range(min(n_examples, len(items)))],
    }
    log.info("probe (%d images): %s", result["n_images"], "  ".join(
        f"{n} p={v['mean_match_prob']:.3f}" + (f" wins={v['original_wins']:.1f}%" if n != "original" else "")
        for n, v in variants.items()))
    return result
