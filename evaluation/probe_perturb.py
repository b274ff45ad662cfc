"""Caption perturbations of the probe (after "Probing Cross-modal Semantics Alignment Capability
from the Textual Perspective"), from a caption's words and their UPOS ids. Pure and seeded.

Variants of a caption:
- ``noun_swap``: every noun replaced by another noun of the corpus;
- ``nouns_only``: nouns kept, every other word (punctuation aside) replaced by a random corpus word;
- ``shuffle``: the word order shuffled;
- ``template``: the caption's nouns packed into ``a NOUN of the NOUN [of the NOUN ...]``.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from shards.upos import UPOS_ID

NOUN_IDS: frozenset[int] = frozenset({UPOS_ID["NOUN"]})  # common nouns: the visual ones (names are not)
KEEP_IDS: frozenset[int] = frozenset({UPOS_ID["PUNCT"], UPOS_ID["SPACE"], UPOS_ID["SYM"]})
VARIANTS: tuple[str, ...] = ("noun_swap", "nouns_only", "shuffle", "template")


@dataclass
class Vocabulary:
    """Corpus word lists to draw replacements from (sorted, so a seed gives the same draws)."""

    nouns: list[str]
    others: list[str]

    @classmethod
    def build(cls, captions: Sequence[tuple[Sequence[str], Sequence[int]]]) -> "Vocabulary":
        """Nouns and other words (punctuation aside) of (words, UPOS ids) captions, lower-cased."""
        nouns, others = set(), set()
        for words, upos in captions:
            for w, u in zip(words, upos):
                w = w.lower()
                if int(u) in NOUN_IDS:
                    nouns.add(w)
                elif int(u) not in KEEP_IDS:
                    others.add(w)
        return cls(sorted(nouns), sorted(others - nouns))


def _draw(pool: Sequence[str], avoid: set[str], rng: random.Random) -> str:
    """A random pool word not in `avoid` (falls back to any pool word when all are avoided)."""
    for _ in range(20):
        w = pool[rng.randrange(len(pool))]
        if w not in avoid:
            return w
    return pool[rng.randrange(len(pool))]


def is_probeable(upos: Sequence[int]) -> bool:
    """A caption needs a noun and a non-noun word for every variant to be meaningful."""
    kinds = [int(u) in NOUN_IDS for u in upos if int(u) not in KEEP_IDS]
    return any(kinds) and not all(kinds)


def noun_swap(words: Sequence[str], upos: Sequence[int], vocab: Vocabulary, rng: random.Random) -> list[str]:
    """Replace each noun with a different corpus noun (not one of the caption's own nouns)."""
    own = {w.lower() for w, u in zip(words, upos) if int(u) in NOUN_IDS}
    if not vocab.nouns:
        return list(words)
    return [_draw(vocab.nouns, own, rng) if int(u) in NOUN_IDS else w for w, u in zip(words, upos)]


def nouns_only(words: Sequence[str], upos: Sequence[int], vocab: Vocabulary, rng: random.Random) -> list[str]:
    """Keep nouns (and punctuation); replace every other word with a random corpus non-noun word."""
    if not vocab.others:
        return list(words)
    return [w if int(u) in NOUN_IDS or int(u) in KEEP_IDS else _draw(vocab.others, {w.lower()}, rng)
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


def template(words: Sequence[str], upos: Sequence[int]) -> list[str]:
    """The nouns in order in `a N1 of the N2 of the N3 ...`."""
    nouns = [w for w, u in zip(words, upos) if int(u) in NOUN_IDS]
    out = ["a", nouns[0]] if nouns else ["a"]
    for n in nouns[1:]:
        out += ["of", "the", n]
    return out


def perturb(words: Sequence[str], upos: Sequence[int], vocab: Vocabulary, seed: int) -> dict[str, str]:
    """The original caption and all variants as text, drawn from `random.Random(seed)`."""
    rng = random.Random(seed)
    return {
        "original": " ".join(words),
        "noun_swap": " ".join(noun_swap(words, upos, vocab, rng)),
        "nouns_only": " ".join(nouns_only(words, upos, vocab, rng)),
        "shuffle": " ".join(shuffle(words, upos, rng)),
        "template": " ".join(template(words, upos)),
    }
