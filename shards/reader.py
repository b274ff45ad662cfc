"""Read a shard directory (a local folder, or a URL of one: see `toolbox.urls`) with plain webdataset and yield
decoded samples."""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

from toolbox.errors import UserError
from toolbox.urls import open_stream
from shards.manifest import read_manifest, shard_urls
from shards.schema import Sample, decode_sample

log = logging.getLogger(__name__)


def opened(sources: Iterator[dict[str, Any]], handler: Callable[[Exception], bool]) -> Iterator[dict[str, Any]]:
    """webdataset stage: each `{"url": ...}` with its `stream`, opened wherever it lives (toolbox.urls: a file,
    http(s)://, an fsspec URL, pipe:) and closed once read; a shard that cannot be opened goes to `handler`."""
    for source in sources:
        try:
            stream = open_stream(source["url"])
        except (UserError, OSError, ValueError) as err:
            if handler(err):
                continue
            raise
        try:
            yield {**source, "stream": stream}
        finally:
            stream.close()


def tar_samples(urls: list[str], handler: Callable[[Exception], bool]) -> Any:  # -> webdataset.DataPipeline
    """The raw samples (member name -> bytes, `__key__`, `__url__`) of the tars at `urls`, in order."""
    import webdataset as wds
    from webdataset.tariterators import group_by_keys, tar_file_expander

    return wds.DataPipeline(wds.SimpleShardList(urls), lambda src: opened(src, handler),
                            lambda src: tar_file_expander(src, handler=handler),
                            lambda src: group_by_keys(src, handler=handler))


def iter_samples(
    source: str | os.PathLike[str] | list[str],
    skip_corrupt: bool = False,
) -> Iterator[Sample]:
    """Yield decoded samples from a finished output (checked manifest; a folder or a URL) or a list of tars.

    With `skip_corrupt`, a sample that fails to decode is logged and skipped instead of raising.
    """
    import webdataset as wds

    urls = [str(p) for p in source] if isinstance(source, list) else shard_urls(source, read_manifest(source))
    for raw in tar_samples(urls, wds.reraise_exception):
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


__all__ = ["decode_image", "iter_samples", "tar_samples"]
