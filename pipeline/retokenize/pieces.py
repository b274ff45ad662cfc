"""Any Hugging Face fast tokenizer's tokens for captions whose words are known (their spans and UPOS).

A token takes the UPOS of the word that holds its first character (shards/README.md). The tokenizer's offsets point
into the caption as written, also when it lower-cases or strips accents; a token whose offsets start on a space (a
byte-level `Ġ` or a SentencePiece `▁` that carries it) starts at its first non-space character, and one that holds
nothing else goes with the word that follows it. The tokenizer's own special tokens (its post-processor's: `[CLS]`
... `[SEP]`, `<s>` ... `</s>`, none) get UPOS 255 and word -1. Too long a caption keeps its text and words and
loses its last tokens, cut between words as `tag-shards` cuts (`pipeline.align.cut_point`).
"""
from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.align import cut_point, piece_to_word
from toolbox.errors import UserError
from shards.upos import NOT_A_WORD

SPECIALS: tuple[str, ...] = ("cls", "sep", "pad", "mask", "unk", "bos", "eos")


def load_fast_tokenizer(name_or_path: str):  # -> transformers.PreTrainedTokenizerFast
    """A fast tokenizer from a local folder or a name in the local Hugging Face cache (never downloads)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # one core per worker
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, local_files_only=True)
    except (OSError, ValueError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise UserError(f"--tokenizer {name_or_path}: not a tokenizer folder nor a name in the local Hugging Face "
                        f"cache ({first})") from None
    if not tokenizer.is_fast:
        raise UserError(f"--tokenizer {name_or_path}: {type(tokenizer).__name__} is not a fast tokenizer (its "
                        "offsets are needed); save it with a tokenizer.json")
    return tokenizer


def vocab_sha256(tokenizer: Any) -> str:
    """sha256 of the vocabulary written as a vocab.txt (each entry on its own line, in id order): for BERT, the
    sha256 of its vocab.txt, so shards and models agree on the ids whichever way the tokenizer was loaded."""
    by_id = {i: token for token, i in tokenizer.get_vocab().items()}
    return hashlib.sha256("".join(by_id.get(i, "") + "\n" for i in range(max(by_id) + 1)).encode("utf-8")).hexdigest()


def tokenizer_info(tokenizer: Any, name: str) -> dict[str, Any]:
    """The manifest's `tokenizer` entry: name, vocabulary size and hash, the whole tokenizer's hash, what its
    normaliser does to the text, its special tokens and their ids."""
    normalizer = tokenizer.backend_tokenizer.normalizer
    normal = normalizer.normalize_str if normalizer is not None else (lambda text: text)
    entry: dict[str, Any] = {
        "name": Path(name).name if Path(name).is_dir() else name,
        "vocab_size": len(tokenizer),
        "vocab_sha256": vocab_sha256(tokenizer),
        "tokenizer_sha256": hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode("utf-8")).hexdigest(),
        "lowercase": normal("A") == "a",
        "strips_accents": normal("é") == "e",
        "special_tokens": {k: getattr(tokenizer, f"{k}_token") for k in SPECIALS
                           if getattr(tokenizer, f"{k}_token", None) is not None},
    }
    entry.update({f"{k}_id": getattr(tokenizer, f"{k}_token_id", None) for k in SPECIALS})
    return entry


def first_character(caption: str, start: int, end: int) -> int:
    """Where a token's first non-space character is (`end` when it holds spaces only)."""
    while start < end and caption[start].isspace():
        start += 1
    return start


class Pieces:
    """A tokenizer's tokens of captions, aligned to their words, at most `max_len` tokens with the specials."""

    def __init__(self, tokenizer: Any, max_len: int) -> None:
        self.tokenizer, self.max_len = tokenizer, max_len

    def align(self, captions: Sequence[str], spans: Sequence[Sequence[Sequence[int]]],
              upos: Sequence[Sequence[int]]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, bool] | None]:
        """(ids, pos, word, truncated) of each caption (None when it has no tokens or no words)."""
        encoded = self.tokenizer(list(captions), add_special_tokens=True, return_offsets_mapping=True,
                                 return_special_tokens_mask=True, verbose=False)
        return [self._one(caption, ids, offsets, special, word_spans, word_upos)
                for caption, ids, offsets, special, word_spans, word_upos
                in zip(captions, encoded["input_ids"], encoded["offset_mapping"], encoded["special_tokens_mask"],
                       spans, upos)]

    def _one(self, caption: str, ids: list[int], offsets: list[tuple[int, int]], special: list[int],
             spans: Sequence[Sequence[int]], upos: Sequence[int]) -> tuple[np.ndarray, ...] | None:
        content = [i for i, s in enumerate(special) if not s]
        if not content or not spans:
            return None
        word_starts = np.asarray([a for a, _ in spans], dtype=np.int64)
        starts = np.asarray([first_character(caption, *offsets[i]) for i in content], dtype=np.int64)
        p2w = piece_to_word(word_starts, starts)
        limit = self.max_len - (len(ids) - len(content))
        truncated = len(content) > limit
        kept = set(content[:cut_point(p2w, limit)] if truncated else content)
        rows = [i for i in range(len(ids)) if special[i] or i in kept]
        word_of = dict(zip(content, p2w.tolist()))
        word = np.asarray([word_of.get(i, -1) if not special[i] else -1 for i in rows], dtype=np.int16)
        table = np.asarray(upos, dtype=np.uint8)
        pos = np.where(word >= 0, table[np.maximum(word, 0)], NOT_A_WORD).astype(np.uint8)
        return np.asarray([ids[i] for i in rows], dtype=np.int32), pos, word, truncated


@functools.lru_cache(maxsize=2)
def get_pieces(name_or_path: str, max_len: int) -> Pieces:
    """The process's Pieces for a tokenizer, loaded on first use and kept (one per Ray worker)."""
    return Pieces(load_fast_tokenizer(name_or_path), max_len)
