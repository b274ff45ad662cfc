"""Schema 1: the members of one sample in a shard tar, and their encoding and decoding.

A sample is a dict of member name -> bytes as stored in the tar (plus `__key__`):
    jpg|png|...  image bytes        txt       normalised caption, UTF-8
    json         {source, image_id, words, upos, spans}, optionally `pair` (a minimal-pair label)
    ids.npy      int32 [L] wordpiece ids with [CLS] ... [SEP]
    pos.npy      uint8 [L] UPOS id per wordpiece, NOT_A_WORD (255) for special tokens
    word.npy     int16 [L] word index per wordpiece, -1 for special tokens
"""
from __future__ import annotations

import functools
import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toolbox.errors import UserError
from shards.upos import NOT_A_WORD, UPOS_NAMES

SCHEMA_VERSION = 1


class SchemaVersionError(UserError):
    """A shard directory written with a schema version this reader does not know."""

IMAGE_MEMBERS: tuple[str, ...] = ("jpg", "jpeg", "png", "webp")
TEXT_MEMBERS: tuple[str, ...] = ("txt", "json", "ids.npy", "pos.npy", "word.npy")
ARRAY_DTYPES: dict[str, np.dtype] = {
    "ids.npy": np.dtype(np.int32),
    "pos.npy": np.dtype(np.uint8),
    "word.npy": np.dtype(np.int16),
}


@dataclass
class TaggedCaption:
    """Word-level tags and their wordpiece alignment for one normalised caption."""

    caption: str
    words: list[str]
    upos: list[int]  # UPOS id per word
    spans: list[tuple[int, int]]  # [start, end) character offsets of each word in `caption`
    ids: np.ndarray  # int32 [L]
    pos: np.ndarray  # uint8 [L]
    word: np.ndarray  # int16 [L]
    truncated: bool = False

    def validate(self) -> None:
        """Raise ValueError if the arrays break the schema's invariants."""
        if not (len(self.ids) == len(self.pos) == len(self.word)):
            raise ValueError("ids, pos and word must have equal length")
        if not (len(self.words) == len(self.upos) == len(self.spans)):
            raise ValueError("words, upos and spans must have equal length")
        special = self.word < 0
        if np.any(self.pos[special] != NOT_A_WORD) or np.any(self.pos[~special] >= len(UPOS_NAMES)):
            raise ValueError("special tokens must carry pos 255 and word -1; words a valid UPOS id")
        if np.any(self.word >= len(self.words)):
            raise ValueError("word index out of range")


@dataclass
class Sample:
    """One decoded sample."""

    key: str
    caption: str
    meta: dict[str, Any]
    ids: np.ndarray
    pos: np.ndarray
    word: np.ndarray
    image_bytes: bytes | None = None
    image_ext: str | None = None
    extra: dict[str, bytes] = field(default_factory=dict)


@functools.lru_cache(maxsize=4096)
def _npy_header(member: str, length: int) -> bytes:
    """The .npy header of a 1-d array of `length` in `member`'s dtype (it depends on nothing else)."""
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(length, dtype=ARRAY_DTYPES[member]), allow_pickle=False)
    full = buffer.getvalue()
    return full[: len(full) - length * ARRAY_DTYPES[member].itemsize]


def encode_array(array: np.ndarray, member: str) -> bytes:
    """Bytes of a 1-d .npy member in its schema dtype, as `np.save` writes them (cached header: this
    is on the tagging hot path). Deterministic: same array, same bytes."""
    data = np.ascontiguousarray(array, dtype=ARRAY_DTYPES[member])
    if data.ndim != 1:
        raise ValueError(f"{member}: expected a 1-d array, got shape {data.shape}")
    return _npy_header(member, len(data)) + data.tobytes()


def decode_array(data: bytes, member: str) -> np.ndarray:
    """Decode an .npy member and check its dtype."""
    array = np.load(io.BytesIO(data), allow_pickle=False)
    if array.dtype != ARRAY_DTYPES[member] or array.ndim != 1:
        raise ValueError(f"{member}: expected 1-d {ARRAY_DTYPES[member]}, got {array.ndim}-d {array.dtype}")
    return array


def encode_sample(
    key: str,
    tagged: TaggedCaption,
    source: str,
    image_id: str,
    image_bytes: bytes | None,
    image_ext: str = "jpg",
    pair: str | None = None,
) -> dict[str, Any]:
    """The tar members of one sample, ready for a webdataset TarWriter (bytes values only).

    `pair` (optional json field): samples sharing it form a minimal pair (same scene, one word changed)
    that the trainer keeps in one batch.
    """
    if image_ext not in IMAGE_MEMBERS:
        raise ValueError(f"image extension {image_ext!r} not one of {IMAGE_MEMBERS}")
    meta: dict[str, Any] = {
        "source": source,
        "image_id": image_id,
        "words": tagged.words,
        "upos": [int(u) for u in tagged.upos],
        "spans": [[int(a), int(b)] for a, b in tagged.spans],
    }
    if pair is not None:
        meta["pair"] = pair
    sample: dict[str, Any] = {
        "__key__": key,
        "txt": tagged.caption.encode("utf-8"),
        "json": json.dumps(meta, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8"),
        "ids.npy": encode_array(tagged.ids, "ids.npy"),
        "pos.npy": encode_array(tagged.pos, "pos.npy"),
        "word.npy": encode_array(tagged.word, "word.npy"),
    }
    if image_bytes is not None:
        sample[image_ext] = image_bytes
    return sample


def decode_sample(raw: dict[str, Any]) -> Sample:
    """Decode the raw member bytes of one sample (as webdataset yields them without decoders)."""
    key = raw.get("__key__", "?")
    missing = [m for m in TEXT_MEMBERS if m not in raw]
    if missing:
        raise ValueError(f"sample {key}: missing members {missing}")
    image_ext = next((m for m in IMAGE_MEMBERS if m in raw), None)
    known = set(TEXT_MEMBERS) | set(IMAGE_MEMBERS)
    extra = {k: v for k, v in raw.items() if k not in known and not k.startswith("__")}
    return Sample(
        key=key,
        caption=raw["txt"].decode("utf-8"),
        meta=json.loads(raw["json"]),
        ids=decode_array(raw["ids.npy"], "ids.npy"),
        pos=decode_array(raw["pos.npy"], "pos.npy"),
        word=decode_array(raw["word.npy"], "word.npy"),
        image_bytes=raw[image_ext] if image_ext else None,
        image_ext=image_ext,
        extra=extra,
    )


def check_schema_version(version: Any, where: str) -> None:
    """Refuse a schema version this code does not know, with a clear message."""
    if version != SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{where}: shard schema version {version!r} is not supported by this posmask "
            f"(it reads schema {SCHEMA_VERSION}); re-tag the data or upgrade posmask"
        )


__all__ = [
    "ARRAY_DTYPES", "IMAGE_MEMBERS", "SCHEMA_VERSION", "Sample", "SchemaVersionError", "TEXT_MEMBERS",
    "TaggedCaption", "check_schema_version", "decode_array", "decode_sample", "encode_array", "encode_sample",
]
