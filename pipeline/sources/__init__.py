"""Input sources: `coco`, `img2dataset`, `table` and `scenes`. The driver lists input chunks (`ChunkSpec`); a worker
reads one chunk's inputs.

Each source module offers `chunks(...) -> list[ChunkSpec]` (driver side, cheap); workers call
`read_items(spec)` and `read_image(spec, item)` here, which dispatch on the kind of chunk. `scenes`
only locates the COCO file of a generated scenes sample, which the `coco` source then reads.
"""
from __future__ import annotations

import re

from pipeline.items import ChunkSpec, InputItem

FORMATS: tuple[str, ...] = ("coco", "img2dataset", "table", "scenes")
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def safe_key(text: str) -> str:
    """A webdataset-safe key fragment: no dots, slashes or spaces (they would split samples)."""
    return _KEY_UNSAFE.sub("_", text).strip("_") or "_"


def chunk_name(name: str, index: int) -> str:
    """Output tar name of chunk `index`."""
    return f"{name}-{index:06d}.tar"


def split_items(items: list[InputItem], shard_size: int, name: str, label: str) -> list[ChunkSpec]:
    """Consecutive runs of `shard_size` items: chunk i depends only on its own items."""
    return [
        ChunkSpec(index=i, name=chunk_name(name, i), source=label, items=items[start : start + shard_size],
                  n_items=len(items[start : start + shard_size]))
        for i, start in enumerate(range(0, len(items), shard_size))
    ]


def read_items(spec: ChunkSpec) -> list[InputItem]:
    """The inputs of one chunk, in order (worker side)."""
    if spec.items is not None:
        return spec.items
    from pipeline.sources.img2dataset import read_tar_items

    return read_tar_items(spec)


def read_image(spec: ChunkSpec, item: InputItem) -> bytes:
    """The raw bytes of an item's image; OSError (FileNotFoundError when missing) on failure."""
    if spec.items is not None:
        if item.image is None:
            raise FileNotFoundError("no image path")
        with open(item.image, "rb") as handle:
            return handle.read()
    from pipeline.sources.img2dataset import read_tar_image

    return read_tar_image(spec, item)
