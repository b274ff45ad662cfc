"""One output shard: read chunk i, check images, tag captions, write shard i (runs in a Ray worker)."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import items as R
from pipeline.images import ImagePolicy, ImageRejected, prepare_image
from pipeline.items import ChunkSpec, InputItem, Reject, ShardResult
from pipeline.normalize import CaptionRejected, clean_caption
from pipeline.sources import read_image, read_items
from pipeline.tagger import Tagger
from pipeline.writer import CAPTION_COLUMNS, ShardWriter, part_paths, write_part, write_rows
from toolbox.atomic import sha256_file
from shards.manifest import SHARDS_DIR
from shards.schema import encode_sample
from shards.upos import UPOS_NAMES

IMAGE_CACHE = 32
_TAGGERS: dict[tuple[str | None, int, int], Tagger] = {}


@dataclass(frozen=True)
class TaskConfig:
    """What every shard task needs besides its chunk."""

    out: str
    max_len: int = 64
    text_only: bool = False
    images: ImagePolicy = ImagePolicy()
    spacy_model: str | None = None
    batch_size: int = 512


def get_tagger(model: str | None, max_len: int, batch_size: int = 512) -> Tagger:
    """The process's Tagger, loaded on first use and kept (one spaCy + tokenizer per worker)."""
    key = (model, max_len, batch_size)
    if key not in _TAGGERS:
        _TAGGERS[key] = Tagger(model, max_len=max_len, batch_size=batch_size)
    return _TAGGERS[key]


def rss_mb() -> float:
    """Resident memory of this process in MiB (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def load_image(spec: ChunkSpec, item: InputItem, policy: ImagePolicy) -> tuple[bytes, str] | ImageRejected:
    """(bytes, extension) of an item's checked image, or the ImageRejected saying why it cannot be used."""
    try:
        return prepare_image(read_image(spec, item), policy)
    except FileNotFoundError as err:
        return ImageRejected(R.MISSING_IMAGE, str(err.filename or err)[:200])
    except OSError as err:
        return ImageRejected(R.UNREADABLE_IMAGE, str(err)[:200])
    except ImageRejected as err:  # a fresh one: the caught one's traceback would keep the image bytes alive
        return ImageRejected(err.reason, err.detail)


def process_shard(spec: ChunkSpec, cfg: TaskConfig) -> ShardResult:
    """Tag and write shard `spec.index` from input chunk `spec.index` (deterministic in its inputs)."""
    started = time.perf_counter()
    tagger = get_tagger(cfg.spacy_model, cfg.max_len, cfg.batch_size)
    inputs = read_items(spec)
    rejects: dict[int, Reject] = {}
    texts: list[str] = []
    cuts: list[bool] = []
    text_index: list[int] = []
    for i, item in enumerate(inputs):
        if item.reject:
            rejects[i] = Reject(item.key, spec.source, item.reject, item.detail)
            continue
        try:
            text, cut = clean_caption(item.caption)
        except CaptionRejected as err:
            rejects[i] = Reject(item.key, spec.source, err.reason, err.detail)
            continue
        texts.append(text)
        cuts.append(cut)
        text_index.append(i)
    tagged = dict(zip(text_index, tagger.tag(texts, cuts)))

    out = Path(cfg.out)
    writer = ShardWriter(out / SHARDS_DIR / spec.name)
    rows: dict[str, list[Any]] = {name: [] for name in CAPTION_COLUMNS}
    word_hist = np.zeros(len(UPOS_NAMES), dtype=np.int64)
    piece_hist = np.zeros(len(UPOS_NAMES), dtype=np.int64)
    truncated = 0
    # recent images: captions of one image often come together
    images: dict[str, tuple[bytes, str] | ImageRejected] = {}
    try:
        for i, item in enumerate(inputs):
            if i in rejects:
                continue
            tc = tagged[i]
            if tc is None:
                rejects[i] = Reject(item.key, spec.source, R.NO_TOKENS, "no wordpieces after tokenisation")
                continue
            image_bytes, ext = None, "jpg"
            if not cfg.text_only:
                image = images.get(item.image) if item.image is not None else None
                if image is None:
                    image = load_image(spec, item, cfg.images)
                    if item.image is not None:
                        images[item.image] = image
                        if len(images) > IMAGE_CACHE:
                            images.pop(next(iter(images)))
                if isinstance(image, ImageRejected):
                    rejects[i] = Reject(item.key, spec.source, image.reason, image.detail)
                    continue
                image_bytes, ext = image
            writer.write(encode_sample(item.key, tc, spec.source, item.image_id, image_bytes, ext, pair=item.pair))
            truncated += tc.truncated
            word_hist += np.bincount(np.asarray(tc.upos, dtype=np.int64), minlength=len(UPOS_NAMES))
            piece_hist += np.bincount(tc.pos[1:-1], minlength=len(UPOS_NAMES))
            for name, value in (("key", item.key), ("source", spec.source), ("image_id", item.image_id),
                                ("shard", spec.name), ("caption", tc.caption), ("truncated", tc.truncated),
                                ("words", tc.words), ("upos", tc.upos), ("spans", tc.spans),
                                ("ids", tc.ids), ("pos", tc.pos), ("word", tc.word)):
                rows[name].append(value)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    tar = writer.path
    write_rows(part_paths(out, spec.name)[1], rows)
    result = ShardResult(
        index=spec.index,
        name=spec.name,
        samples=writer.samples,
        bytes=tar.stat().st_size,
        sha256=sha256_file(tar),
        read=len(inputs),
        truncated=truncated,
        rejects=[rejects[i] for i in sorted(rejects)],
        word_hist=word_hist.tolist(),
        piece_hist=piece_hist.tolist(),
        tagger=tagger.info,
        seconds=time.perf_counter() - started,
        worker_pid=os.getpid(),
        worker_rss_mb=rss_mb(),
        finished=time.time(),
    )
    write_part(out, result)
    return result

