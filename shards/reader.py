"""Read a shard directory with plain webdataset and yield decoded samples."""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator

from shards.manifest import shard_paths
from shards.schema import Sample, decode_sample

log = logging.getLogger(__name__)


def iter_samples(
    source: str | os.PathLike[str] | list[str],
    skip_corrupt: bool = False,
) -> Iterator[Sample]:
    """Yield decoded samples from a finished output directory (checked manifest) or a list of tar paths.

    With `skip_corrupt`, a sample that fails to decode is logged and skipped instead of raising.
    """
    import webdataset as wds

    urls = [str(p) for p in source] if isinstance(source, list) else [str(p) for p in shard_paths(source)]
    dataset = wds.WebDataset(urls, shardshuffle=False, empty_check=False)
    for raw in dataset:
        try:
            yield decode_sample(raw)
        except (ValueError, KeyError, UnicodeDecodeError) as err:
            if not skip_corrupt:
                raise
            log.warning("skipping corrupt sample %s: %s", raw.get("__key__"), err)


def decode_image(sample: Sample):  # -> PIL.Image.Image
    """The sample's image as an RGB PIL image (decoded lazily: the trainer decodes last)."""
    import io

    from PIL import Image

    if sample.image_bytes is None:
        raise ValueError(f"sample {sample.key} has no image")
    with Image.open(io.BytesIO(sample.image_bytes)) as image:
        return image.convert("RGB")


__all__ = ["decode_image", "iter_samples"]
