"""A study's evidence, small enough to keep in git: everything its report reads, so that the report can be rebuilt
from it byte for byte (`posmask report --from-items EVIDENCE`) without the run folders; the evidence of a
study run in parts merges (`--from-items A,B,...`).

    EVIDENCE/
      items.parquet   one row per run, metric and item: its id, cluster (image), stratum (VALSE piece) and value
      runs.parquet    one row per run: its name and folder, run record, evaluation summaries and training log
      evidence.json   the format version, and the training shards' POS histograms

Values are stored as float32 and the report is built from them, so the committed report and its rebuild agree.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.core.items import ItemScores
from evaluation.core.runs import RunInfo
from toolbox.atomic import atomic_path, atomic_write_json
from toolbox.errors import UserError

log = logging.getLogger(__name__)
VERSION = 1
ITEMS, RUNS, META = "items.parquet", "runs.parquet", "evidence.json"


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # key order kept: reports follow it


def export_evidence(runs: Sequence[RunInfo], histograms: dict[str, dict], out: Path) -> Path:
    """Write the evidence of `runs` (and the POS histograms of their shards) into `out`; returns `out`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, list[Any]] = {"run": [], "metric": [], "id": [], "cluster": [], "stratum": [], "value": []}
    rows = []
    for run in runs:
        for metric, scores in sorted(_stored(run.items()).items()):
            n = len(scores.ids)
            columns["run"] += [run.name] * n
            columns["metric"] += [metric] * n
            columns["id"] += list(scores.ids)
            columns["cluster"] += [None] * n if scores.clusters is None else [str(c) for c in scores.clusters]
            columns["stratum"] += [None] * n if scores.strata is None else [str(s) for s in scores.strata]
            columns["value"] += scores.values.astype(np.float32).tolist()
        rows.append({"name": run.name, "path": str(run.path), "record": _text(run.config) if run.record else None,
                     "results": _text(run.results), "steps": _text(list(run.step_records().values()))})
    out.mkdir(parents=True, exist_ok=True)
    text = pa.dictionary(pa.int32(), pa.string())
    schema = pa.schema([("run", text), ("metric", text), ("id", pa.string()), ("cluster", text), ("stratum", text),
                        ("value", pa.float32())])
    tables = {ITEMS: pa.table(columns, schema=schema), RUNS: pa.Table.from_pylist(rows)}
    for name, table in tables.items():
        with atomic_path(out / name) as tmp:
            pq.write_table(table, tmp, compression="zstd", compression_level=19)
    atomic_write_json(out / META, {"version": VERSION, "histograms": histograms})
    log.info("evidence of %d runs -> %s", len(runs), out)
    return out


def load_evidence(folder: Path) -> tuple[list[RunInfo], dict[str, dict]]:
    """The runs (with their items and training logs from the evidence) and the histograms of an evidence folder;
    one UserError line when it is not one."""
    import pyarrow.parquet as pq

    from trainer.config import TrainConfig

    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
        runs_table = pq.read_table(folder / RUNS).to_pylist()
    except (OSError, ValueError) as err:
        raise UserError(f"--from-items {folder}: not a study's evidence ({err})") from None
    if meta.get("version") != VERSION:
        raise UserError(f"--from-items {folder}: evidence version {meta.get('version')!r}; this posmask reads {VERSION}")
    items = _items_reader(folder)
    runs = []
    for row in runs_table:
        record = TrainConfig.from_dict(json.loads(row["record"])) if row["record"] else None
        steps = {int(r["step"]): r for r in json.loads(row["steps"])}
        runs.append(RunInfo(Path(row["path"]), row["name"], record, json.loads(row["results"]),
                            item_source=lambda name=row["name"]: items(name), step_source=lambda s=steps: s))
    return runs, meta.get("histograms", {})


def merge_evidence(folders: Sequence[Path]) -> tuple[list[RunInfo], dict[str, dict]]:
    """The runs and histograms of several evidence folders, e.g. a study run in parts (`posmask study --seed-from`);
    one UserError line when two hold a run of the same name or different histograms of the same shards."""
    runs: list[RunInfo] = []
    histograms: dict[str, dict] = {}
    where: dict[str, Path] = {}
    for folder in folders:
        part_runs, part_histograms = load_evidence(folder)
        for run in part_runs:
            if run.name in where:
                raise UserError(f"--from-items: run {run.name!r} is in both {where[run.name]} and {folder}")
            where[run.name] = folder
        for key, histogram in part_histograms.items():
            if histograms.setdefault(key, histogram) != histogram:
                raise UserError(f"--from-items {folder}: the POS histogram of {key} differs from an earlier part's "
                                "(other shards under the same path?)")
        runs += part_runs
    return runs, histograms


DERIVED = (":original_wins", ":prob_drop")  # probe metrics rebuilt from the original caption's and the foil's


def _stored(items: dict[str, ItemScores]) -> dict[str, ItemScores]:
    """What the evidence keeps of a run's metrics: all but those `_derived` rebuilds."""
    return {k: v for k, v in items.items() if not k.endswith(DERIVED)}


def _derived(items: dict[str, ItemScores]) -> dict[str, ItemScores]:
    """The probe's pairwise accuracy and probability drop of each variant, from its foil probabilities and the
    original caption's on the same items (evaluation.core.items.probe_items)."""
    original = items.get("probe/original")
    if original is None:
        return items
    by_id = dict(zip(original.ids, original.values))
    out = dict(items)
    for key, foil in items.items():
        if not key.startswith("probe/") or ":" in key or key == "probe/original" or key.startswith("probe/count_"):
            continue
        base = np.asarray([by_id[i] for i in foil.ids])
        out[f"{key}:original_wins"] = ItemScores(foil.ids, (base > foil.values).astype(np.float64),
                                                 clusters=foil.clusters)
        out[f"{key}:prob_drop"] = ItemScores(foil.ids, base - foil.values, clusters=foil.clusters)
    return out


def _items_reader(folder: Path):
    """A reader of one run's metrics from the evidence's item table (read once, rows grouped by run and metric)."""
    import pyarrow.parquet as pq

    table = pq.read_table(folder / ITEMS)
    runs, metrics = (table.column(c).combine_chunks() for c in ("run", "metric"))
    run_idx, metric_idx = runs.indices.to_numpy(), metrics.indices.to_numpy()
    starts = np.flatnonzero(np.r_[True, (run_idx[1:] != run_idx[:-1]) | (metric_idx[1:] != metric_idx[:-1])])
    ends = np.r_[starts[1:], len(run_idx)]
    values = table.column("value").to_numpy().astype(np.float64)
    groups: dict[str, list[tuple[str, int, int]]] = {}
    for a, b in zip(starts.tolist(), ends.tolist()):
        groups.setdefault(runs.dictionary[run_idx[a]].as_py(), []).append((metrics.dictionary[metric_idx[a]].as_py(),
                                                                          a, b))

    @cache
    def of_run(run: str) -> dict[str, ItemScores]:
        out = {}
        for metric, a, b in groups.get(run, []):
            part = table.slice(a, b - a)
            clusters, strata = part.column("cluster").to_pylist(), part.column("stratum").to_pylist()
            out[metric] = ItemScores(tuple(part.column("id").to_pylist()), values[a:b],
                                     None if strata[0] is None else np.asarray(strata),
                                     None if clusters[0] is None else np.asarray(clusters, dtype=object))
        return _derived(out)

    return of_run
