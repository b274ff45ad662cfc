"""Zero-shot VALSE with the ITM head (thesis Table 4.2).

Input: the real VALSE JSON files (one per piece: `{sample_id: {caption, foil, image_file, dataset,
mturk, ...}}`) and one image root per source. By default only the valid subset
(`mturk.caption >= 2`, as in the VALSE paper) is scored. An entry whose image is missing is counted
and listed, never fatal; a piece whose source has no image root is reported as not run.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evaluation.core.common import load_json
from evaluation.valse.metric import PAIRWISE_SCORE, skipped_as_tie, valse_scores
from toolbox.errors import UserError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

SOURCES: tuple[str, ...] = ("coco2017", "coco2014", "visual7w", "swig", "visdial")
PIECE_SOURCE: dict[str, str] = {
    "existence": "visual7w", "counting-hard": "visual7w", "counting-small-quant": "visual7w",
    "counting-adversarial": "visual7w", "plurals": "coco2017", "relations": "coco2017",
    "action-replacement": "swig", "actant-swap": "swig", "coreference-standard": "visdial",
    "coreference-hard": "visdial", "foil-it": "coco2014",
}
DATASET_SOURCE: dict[str, str] = {
    "visual7w": "visual7w", "coco2017": "coco2017", "coco_2017": "coco2017", "swig": "swig",
    "visdial_v1.0": "visdial", "visdial": "visdial", "foil dataset": "coco2014", "coco2014": "coco2014",
}
# Thesis/paper order of the pieces; unknown pieces (e.g. the scenes set's) follow alphabetically.
PIECE_ORDER: tuple[str, ...] = (
    "existence", "plurals", "counting-hard", "counting-small-quant", "counting-adversarial", "counting",
    "relations", "action-replacement", "actant-swap", "coreference-standard", "coreference-hard", "foil-it",
    "color",
)
DEFAULT = "*"  # key of the image root used for every source without its own


@dataclass
class ValseEntry:
    """One caption/foil pair."""

    sample_id: str
    caption: str
    foil: str
    image_file: str
    source: str


@dataclass
class ValsePiece:
    """The entries of one piece, after the valid-subset filter."""

    name: str
    source: str
    entries: list[ValseEntry]
    total: int  # entries in the file before filtering
    invalid: int = 0
    missing: list[str] = field(default_factory=list)


def parse_image_roots(spec: str | None) -> dict[str, Path]:
    """`coco2017=DIR,visual7w=DIR,...` (a bare `DIR` is the root for every other source) -> {source: Path}."""
    roots: dict[str, Path] = {}
    if not spec:
        return roots
    for item in filter(None, (s.strip() for s in spec.split(","))):
        if "=" in item:
            key, _, value = item.partition("=")
            key = key.strip().lower()
            if not key or not re.fullmatch(r"[\w.-]+|\*", key):
                raise UserError(f"--images: bad image source name {key!r} in {spec!r}")
            if key not in SOURCES and key != DEFAULT:
                log.warning("--images: %r is not a VALSE source (%s); used only by entries whose dataset is %r",
                            key, ", ".join(SOURCES), key)
            roots[key] = Path(value.strip())
        else:
            roots[DEFAULT] = Path(item)
    for key, path in roots.items():
        if not path.is_dir():
            raise UserError(f"--images: {key if key != DEFAULT else 'image root'} {path} is not a directory")
    return roots


def entry_source(piece: str, entry: Mapping[str, Any]) -> str:
    """Image source of an entry: its `dataset` field when it names a known VALSE source, else the
    piece's source in the real benchmark, else the `dataset` value itself (e.g. `scenes`)."""
    dataset = str(entry.get("dataset", "")).strip().lower()
    if dataset in DATASET_SOURCE:
        return DATASET_SOURCE[dataset]
    if not dataset and piece in PIECE_SOURCE:
        return PIECE_SOURCE[piece]
    return dataset or DEFAULT


def piece_files(data: str | os.PathLike[str]) -> list[Path]:
    """The VALSE JSON files of a folder (or the one file given), in paper order."""
    path = Path(data)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise UserError(f"VALSE data not found: {path}")
    files = sorted(path.glob("*.json"))
    if not files:
        raise UserError(f"{path}: no VALSE *.json files")
    order = {name: i for i, name in enumerate(PIECE_ORDER)}
    return sorted(files, key=lambda f: (order.get(f.stem, len(order)), f.stem))


def caption_votes(path: Path, sample_id: str, entry: dict[str, Any]) -> int:
    """`mturk.caption` of an entry (annotators who judged the caption true); 0 when absent."""
    mturk = entry.get("mturk") or {}
    votes = mturk.get("caption", 0) if isinstance(mturk, dict) else 0
    try:
        return int(votes)
    except (TypeError, ValueError):
        raise UserError(f"{path}: entry {sample_id!r} has a non-numeric mturk.caption {votes!r}") from None


def load_piece(path: str | os.PathLike[str], valid_only: bool = True) -> ValsePiece:
    """Read one VALSE piece file; with `valid_only`, keep entries with `mturk.caption >= 2`."""
    path = Path(path)
    data = load_json(path, "VALSE file")
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a VALSE dict {{sample_id: entry}}")
    name = path.stem
    entries: list[ValseEntry] = []
    invalid = 0
    source = None
    for sample_id, e in data.items():
        try:
            caption, foil, image = str(e["caption"]), e["foil"], str(e["image_file"])
            if isinstance(foil, list):  # some VALSE releases keep a list of foils; the first is the one scored
                foil = foil[0]
        except (KeyError, TypeError, IndexError):
            raise UserError(f"{path}: entry {sample_id!r} lacks caption/foil/image_file") from None
        if valid_only and caption_votes(path, sample_id, e) < 2:
            invalid += 1
            continue
        src = entry_source(name, e)
        source = source or src
        entries.append(ValseEntry(str(sample_id), caption, str(foil), image, src))
    if source is None:  # every entry filtered out: still name the source
        source = entry_source(name, next(iter(data.values()), {})) if data else PIECE_SOURCE.get(name, DEFAULT)
    return ValsePiece(name, source, entries, len(data), invalid)


def load_valse(data: str | os.PathLike[str], valid_only: bool = True) -> list[ValsePiece]:
    """All pieces of a VALSE folder (or one file)."""
    return [load_piece(f, valid_only) for f in piece_files(data)]


class ImageFinder:
    """Finds `image_file` under a root: directly, else by file name anywhere below it (indexed once)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._index: dict[str, Path] | None = None

    def find(self, name: str) -> Path | None:
        """The image's path, or None when it is not under the root."""
        direct = self.root / name
        if direct.is_file():
            return direct
        if self._index is None:
            self._index = {}
            for dirpath, _, files in os.walk(self.root):
                for f in files:
                    self._index.setdefault(f, Path(dirpath) / f)
        return self._index.get(Path(name).name)


def resolve_images(piece: ValsePiece, finder: ImageFinder) -> tuple[list[ValseEntry], list[Path]]:
    """Entries whose image exists and their paths; the others go to `piece.missing`."""
    kept, paths = [], []
    piece.missing = []
    for e in piece.entries:
        p = finder.find(e.image_file)
        if p is None:
            piece.missing.append(e.image_file)
        else:
            kept.append(e)
            paths.append(p)
    return kept, paths


def score_entries(model, entries: list[ValseEntry], paths: list[Path], device: torch.device, batch_size: int = 32,
                  workers: int | None = None, desc: str = "valse") -> tuple[np.ndarray, np.ndarray, list[int]]:
    """ITM logits [n,2] (no match, match) of captions and of foils (NaN where the image is unreadable); also
    the indices of the unreadable images."""
    from evaluation.core.scoring import score_images_with_texts

    logits, bad = score_images_with_texts(model, paths, [(e.caption, e.foil) for e in entries], device,
                                          batch_size, workers, desc)
    logits = logits.double().numpy()
    return logits[:, 0], logits[:, 1], bad


def entry_row(piece: str, entry: ValseEntry, caption: np.ndarray, foil: np.ndarray, convention: str) -> dict[str, Any]:
    """One line of valse_entries.json: `caption` and `foil` hold the scores that `convention` compares for acc_r
    (posmask: match log-odds, the order of the match probabilities; valse: raw match logits), so the entry is
    won when caption > foil; both ITM logits are kept too, to score it in either convention later
    (evaluation.valse.metric.entry_outcomes). An entry the convention skips (a tie under valse) says so in
    `skipped` and is left out of the per-item scores."""
    score = PAIRWISE_SCORE[convention]
    row = {"piece": piece, "id": entry.sample_id, "caption": float(score(caption)), "foil": float(score(foil)),
           "caption_logits": [float(v) for v in caption], "foil_logits": [float(v) for v in foil]}
    return row | ({"skipped": "tie"} if skipped_as_tie(caption, foil, convention) else {})


def evaluate_valse(model, pieces: list[ValsePiece], roots: dict[str, Path], device: torch.device,
                   batch_size: int = 32, workers: int | None = None,
                   convention: str = "posmask") -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Per-piece and average VALSE scores in `convention` (evaluation.valse.metric), and per-entry scores
    (for later analysis, in either convention)."""
    finders: dict[Path, ImageFinder] = {}
    results: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    for piece in pieces:
        root = roots.get(piece.source, roots.get(DEFAULT))
        base = {"source": piece.source, "total": piece.total, "invalid_skipped": piece.invalid}
        if root is None:
            log.warning("VALSE %s: no image root for source %s; not run", piece.name, piece.source)
            results[piece.name] = base | {"status": "not run", "reason": f"no image root for {piece.source}"}
            continue
        finder = finders.setdefault(root, ImageFinder(root))
        entries, paths = resolve_images(piece, finder)
        if piece.missing:
            log.warning("VALSE %s: %d of %d images missing under %s", piece.name, len(piece.missing),
                        len(piece.entries), root)
        if not entries:
            results[piece.name] = base | {"status": "not run", "reason": f"no images found under {root}",
                                          "n_missing": len(piece.missing), "missing": sorted(set(piece.missing))}
            continue
        cap, foil, bad = score_entries(model, entries, paths, device, batch_size, workers, desc=piece.name)
        ok = ~np.isnan(cap).any(axis=1)
        missing = piece.missing + [entries[i].image_file for i in bad]
        scores = valse_scores(cap[ok], foil[ok], convention)
        results[piece.name] = base | {"status": "ok", **scores, "n_missing": len(missing),
                                      "missing": sorted(set(missing))}
        log.info("VALSE %-22s acc_r %.1f  p_c %.1f  p_f %.1f  acc %.1f  (n=%d, missing %d, ties skipped %d)",
                 piece.name, scores["acc_r"], scores["p_c"], scores["p_f"], scores["acc"], scores["n"], len(missing),
                 scores["ties_skipped"])
        rows.extend(entry_row(piece.name, e, c, f, convention) for e, c, f, good in zip(entries, cap, foil, ok) if good)
    ran = [r for r in results.values() if r["status"] == "ok"]
    average = {m: float(np.mean([r[m] for r in ran])) if ran else float("nan") for m in ("acc_r", "p_c", "p_f", "acc")}
    average["n_pieces"] = len(ran)
    return {"task": "valse", "convention": convention, "pieces": results, "average": average,
            "not_run": [name for name, r in results.items() if r["status"] != "ok"]}, rows
