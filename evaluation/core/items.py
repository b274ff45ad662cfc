"""Per-item scores: every evaluation writes one score per item (retrieval query, VALSE entry, VQA question,
probe caption or image)
beside its summary, so that any two runs can be compared later without evaluating again.

`metric_items` turns a run's item files into one `ItemScores` per table metric, each a mean of its
items' values (times 100), with the cluster of each item read from the file itself (its image: retrieval
captions, VQA questions and probe captions come several to an image), which is what the bootstrap resamples
(evaluation.core.stats).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainer.run_dir import EvalDir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ItemScores:
    """One metric's items: ids (to check that two runs scored the same items), values (the metric is
    100 x their mean, or the mean of the per-stratum means when `strata` is given) and the cluster each item
    belongs to (its image: the unit the bootstrap resamples; None: every item on its own)."""

    ids: tuple[str, ...]
    values: np.ndarray
    strata: np.ndarray | None = None
    clusters: np.ndarray | None = None

    def metric(self) -> float:
        """The metric in percent."""
        return float(stratified_mean(self.values[None, :], self.strata)[0])


def stratified_mean(values: np.ndarray, strata: np.ndarray | None) -> np.ndarray:
    """100 x the mean over the last axis, or the mean of the per-stratum means (VALSE's Avg over pieces)."""
    if strata is None:
        return 100.0 * values.mean(axis=-1)
    return 100.0 * np.mean([values[..., strata == s].mean(axis=-1) for s in np.unique(strata)], axis=0)


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        log.warning("%s: unreadable (%s); its per-item scores are skipped", path, err)
        return None


def _clusters(entry: dict[str, Any], key: str = "image_ids") -> np.ndarray | None:
    """The items' cluster keys (their images), when the item file records them."""
    return np.asarray(entry[key], dtype=object) if entry.get(key) is not None else None


def retrieval_items(data: dict[str, Any]) -> dict[str, ItemScores]:
    """TR R@k over images and IR R@k over captions, each caption clustered with its image."""
    out = {}
    for side in ("tr", "ir"):
        ids, hits = tuple(data[side]["ids"]), np.asarray(data[side]["hits"], dtype=np.float64)
        clusters = _clusters(data[side])
        for j, k in enumerate(data["ks"]):
            out[f"retrieval/{side}_r{k}"] = ItemScores(ids, hits[:, j], clusters=clusters)
    return out


def caption_wins(row: dict[str, Any]) -> float:
    """1 when the caption's score beats the foil's (the convention's scores are stored per entry)."""
    return float(row["caption"] > row["foil"])


def valse_items(rows: list[dict[str, Any]]) -> dict[str, ItemScores]:
    """acc_r per piece, and its unweighted mean over pieces (Avg), stratified by piece; entries the run's
    convention skipped (`skipped`, e.g. ties under valse) are left out as its summary leaves them out."""
    rows = [r for r in rows if not r.get("skipped")]
    pieces = np.asarray([str(r["piece"]) for r in rows])
    ids = tuple(f"{r['piece']}/{r['id']}" for r in rows)
    wins = np.asarray([caption_wins(r) for r in rows])
    out = {f"valse/{p}": ItemScores(tuple(i for i, q in zip(ids, pieces) if q == p), wins[pieces == p])
           for p in dict.fromkeys(pieces.tolist())}
    if rows:
        out["valse/avg"] = ItemScores(ids, wins, pieces)
    return out


def vqa_items(rows: list[dict[str, Any]]) -> dict[str, ItemScores]:
    """Overall accuracy and accuracy per answer type, each question clustered with its image."""
    types = np.asarray([str(r["answer_type"]) for r in rows])
    ids = tuple(str(r["question_id"]) for r in rows)
    acc = np.asarray([float(r["accuracy"]) for r in rows])
    images = (np.asarray([str(r["image_id"]) for r in rows], dtype=object)
              if rows and all(r.get("image_id") is not None for r in rows) else None)
    out = {f"vqa/{t}": ItemScores(tuple(i for i, u in zip(ids, types) if u == t), acc[types == t],
                                  clusters=None if images is None else images[types == t])
           for t in dict.fromkeys(types.tolist())}
    if rows:
        out["vqa/overall"] = ItemScores(ids, acc, clusters=images)
    return out


def probe_items(data: dict[str, Any]) -> dict[str, ItemScores]:
    """Per probe variant: its ITM match probability (`probe/<variant>`) and, where the original caption was
    scored beside it, the share of items it loses to the original (`:original_wins`) and the probability
    drop from the original (`:prob_drop`)."""
    out = {}
    for name, v in data.get("variants", {}).items():
        ids, foil, clusters = tuple(v["ids"]), np.asarray(v["foil"], dtype=np.float64), _clusters(v)
        out[f"probe/{name}"] = ItemScores(ids, foil, clusters=clusters)
        if v.get("original") is not None:
            original = np.asarray(v["original"], dtype=np.float64)
            out[f"probe/{name}:original_wins"] = ItemScores(ids, (original > foil).astype(np.float64),
                                                            clusters=clusters)
            out[f"probe/{name}:prob_drop"] = ItemScores(ids, original - foil, clusters=clusters)
    return out


READERS = {"retrieval": retrieval_items, "valse": valse_items, "vqa": vqa_items, "probe": probe_items}


def metric_items(results: EvalDir | Path) -> dict[str, ItemScores]:
    """Every metric with per-item scores in a results folder (keys like `retrieval/tr_r1`, `valse/existence`,
    `valse/avg`, `vqa/overall`, `vqa/yes/no`)."""
    eval_dir = results if isinstance(results, EvalDir) else EvalDir(results)
    out: dict[str, ItemScores] = {}
    for task in READERS:
        path = eval_dir.items(task)
        data = _read(path) if path.is_file() else None
        if data is not None:
            out.update(READERS[task](data))
    return out
