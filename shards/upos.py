"""The fixed universal POS id table of schema 1 (never reorder: ids are stored in shards)."""
from __future__ import annotations

from toolbox.errors import UserError

UPOS_NAMES: tuple[str, ...] = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM",
    "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X", "SPACE",
)
UPOS_ID: dict[str, int] = {name: i for i, name in enumerate(UPOS_NAMES)}
NOT_A_WORD = 255  # pos.npy value of special tokens ([CLS], [SEP]) and padding: never masked
STUDIED_CLASSES: tuple[str, ...] = ("NOUN", "VERB", "ADJ", "ADV", "PROPN", "DET", "AUX", "PRON", "ADP")


def upos_id(name: str) -> int:
    """Id of a UPOS name (case-insensitive); a clear error for unknown names."""
    key = name.strip().upper()
    if key not in UPOS_ID:
        raise UserError(f"unknown UPOS class {name!r}; valid: {', '.join(UPOS_NAMES)}")
    return UPOS_ID[key]

