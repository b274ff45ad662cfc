"""`coco` source: an official COCO captions JSON (`images`, `annotations`) plus an image folder.

One sample per caption, key `<label>-<image_id:012d>-<annotation id>`, in the file's annotation order.
An annotation's optional `pair` label (the scenes' minimal pairs) is kept in the sample's json.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pipeline import items as R
from pipeline.items import ChunkSpec, InputItem
from pipeline.sources import safe_key, split_items
from toolbox.errors import UserError

log = logging.getLogger(__name__)

_NOT_AN_ID = (list, dict)  # JSON values that cannot be ids (unhashable)


def load_coco(path: Path) -> dict[str, Any]:
    """Parse and shape-check a COCO captions file; UserError with one clear line otherwise."""
    if not path.exists():
        raise UserError(f"{path}: no such file (expected a COCO captions JSON)")
    if path.is_dir():
        found = sorted(path.glob("captions_*.json")) + sorted(path.glob("annotations/captions_*.json"))
        if len(found) != 1:
            raise UserError(f"{path}: is a folder; pass the captions JSON itself (found {len(found)} captions_*.json)")
        path = found[0]
    try:
        data = json.loads(path.read_bytes())
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror or err})") from None
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: unreadable JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
    if not (isinstance(data, dict) and isinstance(data.get("annotations"), list)
            and isinstance(data.get("images"), list)):
        raise UserError(f"{path}: not a COCO captions file (needs lists 'images' and 'annotations')")
    return data


def default_image_root(captions_json: Path) -> Path | None:
    """Guess the image folder: captions_<split>.json -> <split>/ next to it or one level up, or images/."""
    split = captions_json.stem.removeprefix("captions_")
    here = captions_json.parent
    for candidate in (here / split, here.parent / split, here / "images"):
        if candidate.is_dir():
            return candidate
    return None


def _key(label: str, image_id: Any, ann_id: Any) -> str:
    """`label-000000391895-770337` (integers zero-padded as in COCO file names)."""
    img = f"{image_id:012d}" if isinstance(image_id, int) else safe_key(str(image_id))
    ann = str(ann_id) if isinstance(ann_id, int) else safe_key(str(ann_id))
    return f"{label}-{img}-{ann}"


def coco_items(data: dict[str, Any], image_root: Path | None, label: str, limit: int | None = None) -> list[InputItem]:
    """One InputItem per annotation; bad annotations and duplicate keys are pre-marked as rejects."""
    files: dict[Any, str] = {}
    for image in data["images"]:
        if (isinstance(image, dict) and "id" in image and not isinstance(image["id"], _NOT_AN_ID)
                and isinstance(image.get("file_name"), str)):
            files[image["id"]] = image["file_name"]
    out: list[InputItem] = []
    seen: set[str] = set()
    annotations = data["annotations"] if limit is None else data["annotations"][:limit]
    for n, ann in enumerate(annotations):
        if (not isinstance(ann, dict) or "image_id" not in ann or "id" not in ann
                or isinstance(ann["image_id"], _NOT_AN_ID)):
            out.append(InputItem(f"{label}-annotation{n}", "", None, reject=R.INVALID_CAPTION,
                                 detail="annotation without a usable image_id/id"))
            continue
        image_id = ann["image_id"]
        key = _key(label, image_id, ann["id"])
        item = InputItem(key, str(image_id), ann.get("caption"))
        if isinstance(ann.get("pair"), (str, int)) and not isinstance(ann["pair"], bool):
            item.pair = str(ann["pair"])
        if key in seen:
            item.reject, item.detail = R.DUPLICATE_KEY, f"annotation #{n}"
        elif image_id not in files:
            item.reject, item.detail = R.UNKNOWN_IMAGE_ID, f"image_id {image_id} not in 'images'"
        elif image_root is not None:
            item.image = str(image_root / files[image_id])
        seen.add(key)
        out.append(item)
    return out


def chunks(
    captions_json: Path,
    image_root: Path | None,
    text_only: bool,
    shard_size: int,
    name: str,
    label: str = "coco",
    limit: int | None = None,
) -> list[ChunkSpec]:
    """Input chunks of a COCO captions file."""
    data = load_coco(captions_json)
    if not text_only:
        image_root = image_root or default_image_root(captions_json)
        if image_root is None or not image_root.is_dir():
            problem = f"not found next to {captions_json}" if image_root is None else f"{image_root} is not a folder"
            raise UserError(f"image folder {problem}; pass --images DIR, or --text-only to tag captions without images")
        image_root = image_root.resolve()
    items = coco_items(data, None if text_only else image_root, label, limit)
    log.info("%s: %d captions of %d images", captions_json, len(items), len(data["images"]))
    return split_items(items, shard_size, name, label)
