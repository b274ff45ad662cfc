"""Merging finished shards into OUT: sizes.json, captions.parquet, rejects.parquet, histogram, the card, manifest."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.items import ShardResult
from pipeline.writer import caption_schema, part_paths
from toolbox.atomic import atomic_path, atomic_write_text
from shards.card import render_card
from shards.histogram import plot_histogram
from shards.manifest import (CAPTIONS_NAME, CARD_NAME, HISTOGRAM_NAME, REJECTS_NAME, SHARDS_DIR, write_manifest,
                             write_sizes)
from shards.schema import SCHEMA_VERSION
from shards.upos import NOT_A_WORD, UPOS_ID, UPOS_NAMES


def totals(results: list[ShardResult]) -> dict[str, Any]:
    """read / written / rejected (by reason) / truncated over all shards."""
    reasons = Counter(r.reason for res in results for r in res.rejects)
    return {
        "read": sum(r.read for r in results),
        "written": sum(r.samples for r in results),
        "rejected": sum(reasons.values()),
        "rejected_by_reason": dict(sorted(reasons.items())),
        "truncated": sum(r.truncated for r in results),
    }


def write_captions(out: Path, results: list[ShardResult]) -> None:
    """captions.parquet: the shards' caption rows concatenated in shard order (streamed)."""
    import pyarrow.parquet as pq

    with atomic_path(out / CAPTIONS_NAME) as tmp:
        with pq.ParquetWriter(tmp, caption_schema()) as writer:
            for result in results:
                writer.write_table(pq.read_table(part_paths(out, result.name)[1], schema=caption_schema()))


def write_rejects(out: Path, results: list[ShardResult]) -> None:
    """rejects.parquet: key, source, reason, detail, shard for every input that was not written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [(r.key, r.source, r.reason, r.detail, res.name) for res in results for r in res.rejects]
    columns = list(zip(*rows)) if rows else [[]] * 5
    table = pa.table({n: pa.array(list(c), type=pa.string())
                      for n, c in zip(("key", "source", "reason", "detail", "shard"), columns)})
    with atomic_path(out / REJECTS_NAME) as tmp:
        pq.write_table(table, tmp)


def histogram(results: list[ShardResult]) -> dict[str, Any]:
    """UPOS counts at word and wordpiece level, each sorted by count (descending)."""
    def level(field: str) -> dict[str, int]:
        counts = [0] * len(UPOS_NAMES)
        for res in results:
            for i, n in enumerate(getattr(res, field)):
                counts[i] += int(n)
        ranked = sorted(range(len(UPOS_NAMES)), key=lambda i: (-counts[i], i))
        return {UPOS_NAMES[i]: counts[i] for i in ranked}

    return {"word": level("word_hist"), "wordpiece": level("piece_hist"), "upos_id": dict(UPOS_ID),
            "not_a_word": NOT_A_WORD}


def write_histogram(out: Path, hist: dict[str, Any]) -> None:
    """pos_histogram.json and its bar chart pos_histogram.png."""
    # not atomic_write_json: it sorts keys, and the counts are stored sorted by frequency
    atomic_write_text(out / f"{HISTOGRAM_NAME}.json", json.dumps(hist, indent=2, ensure_ascii=False) + "\n")
    plot_histogram(hist, out / f"{HISTOGRAM_NAME}.png")


def finish(out: Path, results: list[ShardResult], config: dict[str, Any], tokenizer: dict[str, Any],
           run: dict[str, Any], where: str | None = None, command: str | None = None) -> dict[str, Any]:
    """Write every OUT file from the shard results, the card (README.md, for the output at `where`, made by
    `command`), manifest.json last. Returns the manifest."""
    results = sorted(results, key=lambda r: r.index)
    write_sizes(out / SHARDS_DIR, {r.name: r.samples for r in results})
    write_captions(out, results)
    write_rejects(out, results)
    hist = histogram(results)
    write_histogram(out, hist)
    tagger = next((r.tagger for r in results if r.tagger), {})
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "tokenizer": tokenizer,
        "tagger": tagger,
        "upos": dict(UPOS_ID),
        "not_a_word": NOT_A_WORD,
        "shards": [{"file": r.name, "samples": r.samples, "bytes": r.bytes, "sha256": r.sha256} for r in results],
        "totals": totals(results),
        "files": {"captions": CAPTIONS_NAME, "rejects": REJECTS_NAME, "histogram": f"{HISTOGRAM_NAME}.json",
                  "card": CARD_NAME},
        "config": config,
        "run": run,
    }
    atomic_write_text(out / CARD_NAME, render_card(manifest, hist, where or str(out), command))
    write_manifest(out, manifest)
    return manifest
