"""Caption-perturbation probe: which words does the model read?

Input: the UPOS tags of evaluation captions (`captions.parquet` of a `posmask tag-shards` output, made from a
COCO-format captions file; nothing is tagged again) and that COCO captions file + image root (to find each
caption's image). Each probed caption (up to `per_image` per image) is scored with the ITM head beside its
foils (`probe_perturb`: the POS-swap profile over the 9 studied classes, replace the visual words / the
others, shuffle) and the seed's five templates filled with its nouns (`probe_templates`); each image also with
k = 3..7 of its reference captions' nouns in the LXMERT template (the count curve). Output: per variant the
mean match probability, the share of captions where the original beats it (pairwise accuracy) and the mean
probability drop, each with a 95 % bootstrap interval, and the per-item scores behind them.
"""
from __future__ import annotations

import logging
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evaluation.core.common import load_json
from evaluation.core.items import probe_items
from evaluation.probe.perturb import VARIANTS, Vocabulary, is_probeable, nouns_of, perturb
from evaluation.probe.templates import COUNT_TEMPLATE, COUNT_VARIANTS, TEMPLATE_VARIANTS, count_captions, templates, \
    union_nouns
from evaluation.core.stats import bootstrap_interval
from toolbox.errors import UserError
from shards.manifest import CAPTIONS_NAME
from shards.upos import STUDIED_CLASSES

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)
UPOS_COLUMNS: tuple[str, ...] = ("upos", "word_upos", "words_upos", "word_pos")


@dataclass
class ProbeItem:
    """One image, one tagged caption, and the visual words of all the image's tagged captions."""

    image: Path
    image_id: str
    key: str  # the caption's sample key: its id in the per-item scores
    words: list[str]
    upos: list[int]
    reference_nouns: list[str]


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
                     image_root: str | os.PathLike[str], per_image: int = 5) -> list[ProbeItem]:
    """Join tagged captions to their images: by an `image_id` column, the id inside the sample key,
    or (last resort) the caption text against the COCO file. Keeps `per_image` probeable captions per image
    (in key order), each with the nouns of all its image's tagged captions."""
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

    kept: list[tuple[str, dict[str, Any]]] = []
    nouns: dict[str, list[list[str]]] = {}  # every tagged caption's nouns, per image
    count: dict[str, int] = {}
    unmatched = 0
    for row in sorted(table, key=lambda r: str(r.get("key", ""))):
        image_id = image_of(row)
        if image_id is None:
            unmatched += 1
            continue
        upos = [int(u) for u in row[upos_col]]
        nouns.setdefault(image_id, []).append(nouns_of([str(w) for w in row["words"]], upos))
        if count.get(image_id, 0) >= per_image or not is_probeable(upos) or not (root / files[image_id]).is_file():
            continue
        count[image_id] = count.get(image_id, 0) + 1
        kept.append((image_id, row))
    items = [ProbeItem(root / files[i], i, str(row.get("key") or f"{i}-{n}"), [str(w) for w in row["words"]],
                       [int(u) for u in row[upos_col]], union_nouns(nouns[i])) for n, (i, row) in enumerate(kept)]
    if unmatched:
        log.warning("probe: %d tagged captions could not be matched to an image of %s", unmatched, captions_json)
    if not items:
        raise UserError(f"probe: no tagged caption of {tags} matches an image under {root}")
    return items


CAPTION_VARIANTS: tuple[str, ...] = ("original",) + VARIANTS + TEMPLATE_VARIANTS  # scored per caption
FIELDS: tuple[tuple[str, str, float], ...] = (  # summary field, per-item key suffix, scale from percent
    ("mean_match_prob", "", 0.01), ("original_wins", ":original_wins", 1.0), ("prob_drop", ":prob_drop", 1.0))


def caption_foils(items: list[ProbeItem], seed: int) -> list[dict[str, str | None]]:
    """Every caption variant of each item as text (None: skipped), seeded per item; the replacements come
    from the vocabulary of the probed captions themselves."""
    vocab = Vocabulary.build([(it.words, it.upos) for it in items])
    return [perturb(it.words, it.upos, vocab, seed * 1_000_003 + i) | templates(nouns_of(it.words, it.upos))
            for i, it in enumerate(items)]


def _probabilities(model, paths: list[Path], rows: list[dict[str, str | None]], names: tuple[str, ...],
                   device: torch.device, batch_size: int, workers: int | None, desc: str) -> np.ndarray:
    """ITM match probabilities [N, len(names)] of image i with rows[i][name]; NaN where the text is None or
    the image unreadable."""
    from evaluation.core.scoring import match_score, score_images_with_texts

    logits, _ = score_images_with_texts(model, paths, [[row[n] or "" for n in names] for row in rows], device,
                                        batch_size, workers, desc=desc)
    probs = match_score(logits).sigmoid().double().numpy()
    probs[np.array([[row[n] is None for n in names] for row in rows], dtype=bool)] = np.nan
    return probs


def item_scores(ids: list[str], image_ids: list[str], probs: np.ndarray, names: tuple[str, ...],
                original: bool) -> dict[str, Any]:
    """The per-item file's entries: per variant the items it was scored on, their images (the cluster key),
    their foil probabilities and (when column 0 is the original caption) the original's."""
    out = {}
    for j, name in enumerate(names):
        ok = np.flatnonzero(~np.isnan(probs[:, j]) & (~np.isnan(probs[:, 0]) if original else True))
        entry: dict[str, Any] = {"ids": [ids[i] for i in ok], "image_ids": [image_ids[i] for i in ok],
                                 "foil": probs[ok, j].tolist()}
        if original and j:
            entry["original"] = probs[ok, 0].tolist()
        out[name] = entry
    return out


def summarise(items: dict[str, Any], totals: dict[str, int], seed: int) -> dict[str, dict[str, Any]]:
    """Per variant: items scored and skipped, and each figure with its 95 % bootstrap interval over the images (each
    with its captions; `FIELD_ci`): mean match probability (0-1), original-wins share (%), probability drop
    (points)."""
    scores = probe_items(items)
    out = {}
    for name, v in items["variants"].items():
        entry: dict[str, Any] = {"n": len(v["ids"]), "skipped": totals[name] - len(v["ids"])}
        for field, suffix, scale in FIELDS:
            key = f"probe/{name}{suffix}"
            if key in scores and entry["n"]:
                ci = bootstrap_interval(scores[key], seed=zlib.crc32(f"{key}|{seed}".encode()))
                entry[field] = scores[key].metric() * scale
                entry[f"{field}_ci"] = [c * scale for c in ci] if ci else None
        out[name] = entry
    return out


def run_probe(model, items: list[ProbeItem], device: torch.device, seed: int = 0, batch_size: int = 32,
              workers: int | None = None, n_examples: int = 5) -> tuple[dict[str, Any], dict[str, Any]]:
    """Score every caption with its foils and templates, and every image with its count-curve captions;
    returns the summary and the per-item scores."""
    texts = caption_foils(items, seed)
    probs = _probabilities(model, [it.image for it in items], texts, CAPTION_VARIANTS, device, batch_size, workers,
                           "probe captions")
    unreadable = {it.image_id for it, p in zip(items, probs) if np.isnan(p[0])}
    first = list({it.image_id: it for it in reversed(items)}.values())[::-1]  # one item per image, in order
    counts = [count_captions(it.reference_nouns, seed * 1_000_003 + i) for i, it in enumerate(first)]
    count_probs = _probabilities(model, [it.image for it in first], counts, COUNT_VARIANTS, device, batch_size,
                                 workers, "probe counts")
    variants = item_scores([it.key for it in items], [it.image_id for it in items], probs, CAPTION_VARIANTS,
                           original=True)
    image_ids = [it.image_id for it in first]
    variants |= item_scores(image_ids, image_ids, count_probs, COUNT_VARIANTS, original=False)
    per_item = {"variants": variants}
    totals = {n: len(items) for n in CAPTION_VARIANTS} | {n: len(first) for n in COUNT_VARIANTS}
    result = {
        "task": "probe", "seed": seed, "n_captions": len(items), "n_images": len(first),
        "unreadable_images": len(unreadable), "pos_classes": list(STUDIED_CLASSES),
        "count_template": COUNT_TEMPLATE, "variants": summarise(per_item, totals, seed),
        "examples": [texts[i] | counts[j] | {"image": items[i].image.name}
                     for j, i in enumerate(items.index(it) for it in first[:n_examples])],
    }
    v = result["variants"]
    log.info("probe (%d captions, %d images): p(original) %.3f; POS-swap original wins %%: %s", len(items),
             len(first), v["original"].get("mean_match_prob", float("nan")),
             " ".join(f"{c} {v[f'swap_{c}'].get('original_wins', float('nan')):.0f}" for c in STUDIED_CLASSES))
    return result, per_item
