"""Writers for the real on-disk formats: COCO captions and Flickr30K/COCO retrieval lists."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from scenes.world import CANVAS

CAPTION_ID_STRIDE = 10
"""Annotation id = image_id * 10 + caption index (so keys read `coco-<image_id>-<id>`)."""


def image_file(image_id: int) -> str:
    """COCO 2017-style file name: the image id, zero-padded to 12 digits."""
    return f"{image_id:012d}.jpg"


def coco_captions(items: Sequence[tuple[int, Sequence[str]]], description: str,
                  pairs: Mapping[int, int] | None = None) -> dict[str, Any]:
    """An official COCO captions document for `(image_id, captions)` items.

    `pairs` maps an image id to the id of its minimal-pair partner: caption j of both images then
    carries the extra annotation field `pair` = `"<partner id>-<j>"` (tag-shards keeps it in the shards).
    """
    pairs = pairs or {}
    partner_of = {**pairs, **{b: b for b in pairs.values()}}
    images, annotations = [], []
    for image_id, texts in items:
        if len(texts) > CAPTION_ID_STRIDE:
            raise ValueError(f"at most {CAPTION_ID_STRIDE} captions per image")
        images.append({"id": image_id, "file_name": image_file(image_id), "width": CANVAS, "height": CANVAS})
        for j, text in enumerate(texts):
            annotation: dict[str, Any] = {"id": image_id * CAPTION_ID_STRIDE + j, "image_id": image_id,
                                          "caption": text}
            if image_id in partner_of:
                annotation["pair"] = f"{partner_of[image_id]}-{j}"
            annotations.append(annotation)
    return {
        "info": {"description": description, "version": "1.0"},
        "licenses": [],
        "type": "captions",
        "images": images,
        "annotations": annotations,
    }


def retrieval_list(items: Sequence[tuple[int, Sequence[str]]]) -> list[dict[str, Any]]:
    """Flickr30K/COCO retrieval format: `[{image: path under the image root, caption: [...]}]`."""
    return [{"image": image_file(image_id), "caption": list(texts)} for image_id, texts in items]
