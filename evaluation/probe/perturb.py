"""Caption perturbations of the probe (after "Probing Cross-modal Semantics Alignment Capability
from the Textual Perspective"), from a caption's words and their UPOS ids. Pure and seeded.

Foils of a caption (None where the caption has nothing to perturb; the probe skips and counts those):
- ``swap_<CLASS>`` for each studied class (NOUN VERB ADJ ADV PROPN DET AUX PRON ADP): every word of that
  class replaced by another word of the same class, drawn from the evaluation set's own tagged vocabulary
  (never one of the caption's own words of that class);
- ``noun_swap`` (replace the visual words): the same for the nouns, drawn separately;
- ``nouns_only`` (replace the others): nouns kept, every other word (punctuation aside) replaced by a random
  vocabulary word;
- ``shuffle``: the word order shuffled.
The templates filled with the caption's nouns are in `probe_templates`.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from shards.upos import STUDIED_CLASSES, UPOS_ID

NOUN = UPOS_ID["NOUN"]  # common nouns: the visual words (names are not)
KEEP_IDS: frozenset[int] = frozenset({UPOS_ID["PUNCT"], UPOS_ID["SPACE"], UPOS_ID["SYM"]})
SWAPS: tuple[str, ...] = tuple(f"swap_{c}" for c in STUDIED_CLASSES)
VARIANTS: tuple[str, ...] = SWAPS + ("noun_swap", "nouns_only", "shuffle")


@dataclass
class Vocabulary:
    """The evaluation set's tagged words, to draw replacements from (sorted, so a seed gives the same draws)."""

    by_class: dict[int, list[str]]  # UPOS id -> its words, lower-cased
    others: list[str]  # every word that is neither a noun nor punctuation

    @classmethod
    def build(cls, captions: Sequence[tuple[Sequence[str], Sequence[int]]]) -> "Vocabulary":
        """From (words, UPOS ids) captions."""
        by_class: dict[int, set[str]] = {}
        for words, upos in captions:
            for w, u in zip(words, upos):
                by_class.setdefault(int(u), set()).add(w.lower())
        nouns = by_class.get(NOUN, set())
        others = {w for u, ws in by_class.items() if u != NOUN and u not in KEEP_IDS for w in ws} - nouns
        return cls({u: sorted(ws) for u, ws in sorted(by_class.items())}, sorted(others))

    @property
    def nouns(self) -> list[str]:
        return self.by_class.get(NOUN, [])


def _draw(pool: Sequence[str], avoid: set[str], rng: random.Random) -> str:
    """A random pool word not in `avoid` (the pool must hold one)."""
    while True:
        w = pool[rng.randrange(len(pool))]
        if w not in avoid:
            return w


def pos_swap(words: Sequence[str], upos: Sequence[int], cls: int, vocab: Vocabulary,
             rng: random.Random) -> list[str] | None:
    """Every word of UPOS class `cls` replaced by a vocabulary word of that class that the caption does not
    use in that class; None when the caption has no such word or the vocabulary no other word of the class."""
    own = {w.lower() for w, u in zip(words, upos) if int(u) == cls}
    pool = vocab.by_class.get(cls, [])
    if not own or len(pool) <= len(own.intersection(pool)):
        return None
    return [_draw(pool, own, rng) if int(u) == cls else w for w, u in zip(words, upos)]


def nouns_only(words: Sequence[str], upos: Sequence[int], vocab: Vocabulary,
               rng: random.Random) -> list[str] | None:
    """Keep nouns (and punctuation); replace every other word with a different random non-noun word."""
    if len(vocab.others) < 2:
        return None
    return [w if int(u) == NOUN or int(u) in KEEP_IDS else _draw(vocab.others, {w.lower()}, rng)
            for w, u in zip(words, upos)]


def shuffle(words: Sequence[str], upos: Sequence[int], rng: random.Random) -> list[str]:
    """The words (punctuation dropped) in a random order different from the original when possible."""
    kept = [w for w, u in zip(words, upos) if int(u) not in KEEP_IDS]
    out = list(kept)
    for _ in range(10):
        rng.shuffle(out)
        if out != kept or len(set(kept)) < 2:
            break
    return out


def is_probeable(upos: Sequence[int]) -> bool:
    """A caption needs a noun and a non-noun word for the visual-word variants to be meaningful."""
    kinds = [int(u) == NOUN for u in upos if int(u) not in KEEP_IDS]
    return any(kinds) and not all(kinds)


def nouns_of(words: Sequence[str], upos: Sequence[int]) -> list[str]:
    """The caption's visual words (its common nouns), in order, lower-cased."""
    return [w.lower() for w, u in zip(words, upos) if int(u) == NOUN]


def perturb(words: Sequence[str], upos: Sequence[int], vocab: Vocabulary, seed: int) -> dict[str, str | None]:
    """The original caption and every foil of VARIANTS as text (None: skipped), drawn from `Random(seed)`."""
    rng = random.Random(seed)

    def text(tokens: list[str] | None) -> str | None:
        return None if tokens is None else " ".join(tokens)

    out: dict[str, str | None] = {"original": " ".join(words)}
    for name, cls in zip(SWAPS, STUDIED_CLASSES):
        out[name] = text(pos_swap(words, upos, UPOS_ID[cls], vocab, rng))
    out["noun_swap"] = text(pos_swap(words, upos, NOUN, vocab, rng))
    out["nouns_only"] = text(nouns_only(words, upos, vocab, rng))
    out["shuffle"] = " ".join(shuffle(words, upos, rng))
    return out
