"""Caption normalisation: decode, NFC, control characters to spaces, collapse whitespace, strip."""
from __future__ import annotations

import re
import unicodedata

from pipeline import items as R

_WHITESPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class CaptionRejected(R.Rejected):
    """A caption that cannot be used; `reason` is one of the reject reasons in `pipeline.items`."""


def decode_caption(raw: str | bytes | None) -> str:
    """The caption as text; bytes must be valid UTF-8 (a leading BOM is dropped)."""
    if raw is None:
        raise CaptionRejected(R.MISSING_CAPTION)
    if isinstance(raw, (bytes, bytearray, memoryview)):
        try:
            return bytes(raw).decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise CaptionRejected(R.INVALID_UTF8, f"byte {err.start}") from None
    if not isinstance(raw, str):
        raise CaptionRejected(R.INVALID_CAPTION, f"not text: {type(raw).__name__}")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError as err:  # lone surrogates, e.g. from a JSON "\ud800"
        raise CaptionRejected(R.INVALID_UTF8, f"character {err.start}") from None
    return raw


def normalize_caption(text: str, max_chars: int = 8192) -> tuple[str, bool]:
    """(normalised caption, cut) : NFC, C0/C1 controls -> space, whitespace runs -> one space, strip.

    A caption longer than `max_chars` is cut at the last space before the limit (it will be
    truncated to the wordpiece maximum anyway; this bounds the tagger's work); `cut` says so.
    """
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub(" ", text)
    text = _WHITESPACE.sub(" ", text).strip()
    cut = False
    if len(text) > max_chars:
        space = text.rfind(" ", 0, max_chars + 1)
        text = text[: space if space > 0 else max_chars].rstrip()
        cut = True
    return text, cut


def clean_caption(raw: str | bytes | None, max_chars: int = 8192) -> tuple[str, bool]:
    """Decode and normalise; raise CaptionRejected for missing, undecodable or empty captions."""
    text, cut = normalize_caption(decode_caption(raw), max_chars)
    if not text:
        raise CaptionRejected(R.EMPTY_CAPTION)
    return text, cut
