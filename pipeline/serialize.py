"""Fast serialisation of a sample: byte-identical to `shards.schema.encode_sample`, without the
per-array cost of `np.save` (the .npy header depends only on dtype and length, so it is cached)."""
from __future__ import annotations

import functools
import json
from typing import Any

import numpy as np

from shards.schema import ARRAY_DTYPES, IMAGE_MEMBERS, TaggedCaption, encode_array


@functools.lru_cache(maxsize=4096)
def _npy_header(member: str, length: int) -> bytes:
    """The .npy header that `encode_array` writes for a 1-d array of `length` in `member`'s dtype."""
    dtype = ARRAY_DTYPES[member]
    full = encode_array(np.zeros(length, dtype=dtype), member)
    return full[: len(full) - length * dtype.itemsize]


def npy_bytes(array: np.ndarray, member: str) -> bytes:
    """Same bytes as `shards.schema.encode_array(array, member)` for a 1-d array."""
    data = np.ascontiguousarray(array, dtype=ARRAY_DTYPES[member])
    return _npy_header(member, len(data)) + data.tobytes()


def sample_members(
    key: str,
    tagged: TaggedCaption,
    source: str,
    image_id: str,
    image_bytes: bytes | None,
    image_ext: str = "jpg",
) -> dict[str, Any]:
    """The tar members of one sample; equal to `shards.schema.encode_sample` with the same arguments."""
    if image_ext not in IMAGE_MEMBERS:
        raise ValueError(f"image extension {image_ext!r} not one of {IMAGE_MEMBERS}")
    meta = {
        "source": source,
        "image_id": image_id,
        "words": tagged.words,
        "upos": [int(u) for u in tagged.upos],
        "spans": [[int(a), int(b)] for a, b in tagged.spans],
    }
    sample: dict[str, Any] = {
        "__key__": key,
        "txt": tagged.caption.encode("utf-8"),
        "json": json.dumps(meta, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8"),
        "ids.npy": npy_bytes(tagged.ids, "ids.npy"),
        "pos.npy": npy_bytes(tagged.pos, "pos.npy"),
        "word.npy": npy_bytes(tagged.word, "word.npy"),
    }
    if image_bytes is not None:
        sample[image_ext] = image_bytes
    return sample
