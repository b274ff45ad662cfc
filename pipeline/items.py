"""Plain data passed between the driver, the sources and the Ray workers (all picklable)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Reject reasons (stable strings: they appear in rejects.parquet and the manifest).
EMPTY_CAPTION = "empty_caption"
INVALID_UTF8 = "invalid_utf8"
INVALID_CAPTION = "invalid_caption"
NO_TOKENS = "no_wordpieces"
DUPLICATE_KEY = "duplicate_key"
MISSING_IMAGE = "missing_image"
UNREADABLE_IMAGE = "unreadable_image"
EMPTY_IMAGE = "empty_image"
NOT_AN_IMAGE = "not_an_image"
CORRUPT_IMAGE = "corrupt_image"
IMAGE_TOO_LARGE = "image_too_large"
IMAGE_FILE_TOO_LARGE = "image_file_too_large"
UNKNOWN_IMAGE_ID = "unknown_image_id"
MISSING_CAPTION = "missing_caption"
MALFORMED_ROW = "malformed_row"
CORRUPT_INPUT = "corrupt_input"


class Rejected(ValueError):
    """An input that cannot be used; `reason` is one of the reject reasons above."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass
class InputItem:
    """One input caption (and where its image is) as a source lists it, before any checking.

    `caption` is str, or bytes still to be decoded as UTF-8; `image` is a path (str) for file-based
    sources, or None when the source streams images itself (img2dataset) or in text-only mode.
    `reject` pre-marks an input the driver already knows is bad (e.g. a duplicate key).
    """

    key: str
    image_id: str
    caption: str | bytes | None
    image: str | None = None
    reject: str | None = None
    detail: str = ""
    pair: str | None = None  # minimal-pair label, kept in the sample's json (see shards.schema)


@dataclass
class ChunkSpec:
    """Input chunk i -> output shard i. Either `items` (file sources), `path` (an img2dataset tar to stream) or
    `url` (a tag-shards tar to retokenize)."""

    index: int
    name: str  # output tar name, e.g. "coco-000003.tar"
    source: str  # label stored with every sample ("coco", "scenes", "img2dataset", ...)
    items: list[InputItem] | None = None
    path: str | None = None
    n_items: int | None = None  # known size, for the progress bar
    url: str | None = None  # retokenize: the input shard (a path or a URL) that becomes output shard i
    taken: dict[str, str] = field(default_factory=dict)  # keys an earlier input tar holds -> that tar's name


@dataclass
class Reject:
    """One input that was not written, and why."""

    key: str
    source: str
    reason: str
    detail: str = ""


@dataclass
class ShardResult:
    """What a worker reports for one finished shard (also stored as its resume marker)."""

    index: int
    name: str
    samples: int
    bytes: int
    sha256: str
    read: int
    truncated: int
    rejects: list[Reject] = field(default_factory=list)
    word_hist: list[int] = field(default_factory=list)
    piece_hist: list[int] = field(default_factory=list)
    tagger: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    worker_pid: int = 0
    worker_rss_mb: float = 0.0
    finished: float = 0.0  # wall-clock time.time() when the shard was done
