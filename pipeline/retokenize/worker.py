"""One input shard -> one output shard: each sample's images, `txt` and `json` passed through unchanged, its
`ids.npy`, `pos.npy` and `word.npy` made anew by another tokenizer (runs in a Ray worker, or in process)."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import items as R
from pipeline.items import ChunkSpec, Reject, ShardResult
from pipeline.retokenize.pieces import get_pieces
from pipeline.worker import rss_mb
from pipeline.writer import CAPTION_COLUMNS, ShardWriter, part_paths, write_part, write_rows
from toolbox.atomic import sha256_file
from shards.manifest import SHARDS_DIR
from shards.reader import tar_samples
from shards.schema import Sample, decode_sample, encode_array
from shards.upos import UPOS_NAMES

BATCH = 512  # samples tokenised at once


@dataclass(frozen=True)
class RetokenizeTask:
    """What every retokenize task needs besides its chunk."""

    out: str
    tokenizer: str  # a local folder (absolute) or a name in the local Hugging Face cache
    max_len: int
    tagger: dict[str, Any] = field(default_factory=dict)  # the input's: the tags are its


def retokenize_shard(spec: ChunkSpec, cfg: RetokenizeTask) -> ShardResult:
    """Write output shard `spec.index` from the input tar `spec.url` (deterministic in its input)."""
    started = time.perf_counter()
    assert spec.url is not None
    pieces = get_pieces(cfg.tokenizer, cfg.max_len)
    broken: list[str] = []

    def bad_tar(exn: Exception) -> bool:
        broken.append(f"{type(exn).__name__}: {exn}".splitlines()[0][:200])
        return True

    out = Path(cfg.out)
    writer = ShardWriter(out / SHARDS_DIR / spec.name)
    rows: dict[str, list[Any]] = {name: [] for name in CAPTION_COLUMNS}
    hists = [np.zeros(len(UPOS_NAMES), dtype=np.int64) for _ in range(2)]
    rejects: list[Reject] = []
    counts = {"read": 0, "truncated": 0}
    batch: list[tuple[dict[str, Any], Sample]] = []
    try:
        for raw in tar_samples([spec.url], bad_tar):
            counts["read"] += 1
            try:
                batch.append((raw, decode_sample(raw)))
            except (ValueError, KeyError, UnicodeDecodeError) as err:
                rejects.append(Reject(str(raw.get("__key__")), spec.source, R.CORRUPT_INPUT, str(err)[:200]))
            if len(batch) == BATCH:
                write_batch(batch, pieces, writer, spec, rows, hists, rejects, counts)
                batch = []
        write_batch(batch, pieces, writer, spec, rows, hists, rejects, counts)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    if broken:  # the rest of a tar that breaks off: one input, rejected
        counts["read"] += 1
        rejects.append(Reject(f"{spec.name.removesuffix('.tar')}-rest", spec.source, R.CORRUPT_INPUT, broken[0]))
    write_rows(part_paths(out, spec.name)[1], rows)
    tar = writer.path
    result = ShardResult(
        index=spec.index, name=spec.name, samples=writer.samples, bytes=tar.stat().st_size, sha256=sha256_file(tar),
        read=counts["read"], truncated=counts["truncated"], rejects=rejects, word_hist=hists[0].tolist(),
        piece_hist=hists[1].tolist(), tagger=cfg.tagger, seconds=time.perf_counter() - started,
        worker_pid=os.getpid(), worker_rss_mb=rss_mb(), finished=time.time())
    write_part(out, result)
    return result


def write_batch(batch: list[tuple[dict[str, Any], Sample]], pieces: Any, writer: ShardWriter, spec: ChunkSpec,
                rows: dict[str, list[Any]], hists: list[np.ndarray], rejects: list[Reject],
                counts: dict[str, int]) -> None:
    """Tokenise a batch of samples and write them (members in the writer's order, the input's bytes but the
    three arrays)."""
    if not batch:
        return
    samples = [sample for _, sample in batch]
    aligned = pieces.align([s.caption for s in samples], [s.meta.get("spans", []) for s in samples],
                           [s.meta.get("upos", []) for s in samples])
    for (raw, sample), arrays in zip(batch, aligned):
        source = str(sample.meta.get("source", spec.source))
        if arrays is None:
            rejects.append(Reject(sample.key, source, R.NO_TOKENS, "no tokens or no words"))
            continue
        ids, pos, word, truncated = arrays
        members = {k: v for k, v in raw.items() if not k.startswith("__")}
        members.update({"ids.npy": encode_array(ids, "ids.npy"), "pos.npy": encode_array(pos, "pos.npy"),
                        "word.npy": encode_array(word, "word.npy")})
        writer.write({"__key__": sample.key, **members})
        counts["truncated"] += truncated
        upos = np.asarray(sample.meta.get("upos", []), dtype=np.int64)
        hists[0] += np.bincount(upos, minlength=len(UPOS_NAMES))
        hists[1] += np.bincount(pos[word >= 0], minlength=len(UPOS_NAMES))
        meta = sample.meta
        for name, value in (("key", sample.key), ("source", source), ("image_id", str(meta.get("image_id", ""))),
                            ("shard", spec.name), ("caption", sample.caption), ("truncated", bool(truncated)),
                            ("words", meta.get("words", [])), ("upos", meta.get("upos", [])),
                            ("spans", meta.get("spans", [])), ("ids", ids), ("pos", pos), ("word", word)):
            rows[name].append(value)
