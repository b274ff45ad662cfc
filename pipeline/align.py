"""Word (spaCy token) <-> wordpiece alignment, and consistent truncation to a maximum length.

A wordpiece takes the UPOS of the spaCy token that contains its first character; offsets come
from the fast tokenizer's offsets (start of each piece), which point into the original (not
lower-cased, not accent-stripped) caption, so they compare directly with spaCy's `token.idx`.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shards.schema import TaggedCaption
from shards.upos import NOT_A_WORD


def piece_to_word(word_starts: np.ndarray, piece_starts: np.ndarray) -> np.ndarray:
    """Index of the word whose span holds each piece's first character (words sorted by start)."""
    return np.maximum(np.searchsorted(word_starts, piece_starts, side="right") - 1, 0)


def cut_point(p2w: np.ndarray, limit: int) -> int:
    """How many of the pieces (`p2w`: their word indices, more than `limit`) to keep: `limit`, or fewer so that
    the cut falls between words (a word is split only when it alone exceeds the limit)."""
    keep = limit
    if p2w[keep] == p2w[keep - 1]:  # the cut falls inside a word: drop that word entirely
        first = int(np.searchsorted(p2w, p2w[keep], side="left"))
        if first > 0:
            keep = first
    return keep


def align_caption(
    caption: str,
    word_starts: np.ndarray,
    word_lengths: np.ndarray,
    word_upos: np.ndarray,
    piece_ids: Sequence[int],
    piece_starts: Sequence[int],
    max_len: int,
    cls_id: int,
    sep_id: int,
    cut: bool = False,
) -> TaggedCaption | None:
    """The schema's TaggedCaption for one caption, truncated to `max_len` wordpieces incl. specials.

    Truncation keeps whole words where it can (a word is never split unless it alone exceeds the
    limit) and cuts the caption text, words, UPOS and spans at the same point, so that the sample
    is self-consistent. Returns None when the caption yields no wordpieces at all.
    """
    n_pieces = len(piece_ids)
    if n_pieces == 0 or len(word_starts) == 0:
        return None
    p2w = piece_to_word(word_starts, np.asarray(piece_starts, dtype=np.int64))
    limit = max_len - 2
    truncated = cut
    if n_pieces > limit:
        truncated = True
        keep = cut_point(p2w, limit)
        p2w = p2w[:keep]
        piece_ids = piece_ids[:keep]
        n_words = int(p2w[-1]) + 1
        word_starts, word_lengths, word_upos = word_starts[:n_words], word_lengths[:n_words], word_upos[:n_words]
        caption = caption[: int(word_starts[-1] + word_lengths[-1])]
    n = len(p2w)
    ids = np.empty(n + 2, dtype=np.int32)
    ids[0], ids[1:-1], ids[-1] = cls_id, piece_ids, sep_id
    word = np.full(n + 2, -1, dtype=np.int16)
    word[1:-1] = p2w
    pos = np.full(n + 2, NOT_A_WORD, dtype=np.uint8)
    pos[1:-1] = word_upos[p2w]
    ends = word_starts + word_lengths
    spans = list(zip(word_starts.tolist(), ends.tolist()))
    return TaggedCaption(
        caption=caption,
        words=[caption[a:b] for a, b in spans],
        upos=word_upos.tolist(),
        spans=spans,
        ids=ids,
        pos=pos,
        word=word,
        truncated=truncated,
    )
