"""The seed's five caption templates (its Table 7), filled with visual words, and the visual-word count curve
(its Figure 3). Pure and seeded.

    UNITER   a NOUN of the NOUN NOUN ...
    ROSITA   a image image that is a a NOUN but a a NOUN ...
    ViLBERT  a NOUN that the NOUN at the NOUN ...
    CLIP     a image image of NOUN near a NOUN ...
    LXMERT   a NOUN of a NOUN of a NOUN ...

A template is the words before the first noun, the words between the first and the second noun, and the
words before every later noun.
"""
from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Template:
    head: str  # before the first noun
    second: str  # between the first and the second noun
    rest: str  # before each later noun


TEMPLATES: dict[str, Template] = {
    "UNITER": Template("a", "of the", ""),
    "ROSITA": Template("a image image that is a a", "but a a", "but a a"),
    "ViLBERT": Template("a", "that the", "at the"),
    "CLIP": Template("a image image of", "near a", "near a"),
    "LXMERT": Template("a", "of a", "of a"),
}
TEMPLATE_VARIANTS: tuple[str, ...] = tuple(f"tpl_{name}" for name in TEMPLATES)
COUNTS: tuple[int, ...] = (3, 4, 5, 6, 7)  # visual words in the count curve
COUNT_TEMPLATE = "LXMERT"
COUNT_VARIANTS: tuple[str, ...] = tuple(f"count_{k}" for k in COUNTS)


def render(name: str, nouns: Sequence[str]) -> str | None:
    """Template `name` filled with `nouns` in order; None without a noun."""
    if not nouns:
        return None
    t = TEMPLATES[name]
    words = t.head.split() + [nouns[0]]
    for i, noun in enumerate(nouns[1:]):
        words += (t.second if i == 0 else t.rest).split() + [noun]
    return " ".join(words)


def templates(nouns: Sequence[str]) -> dict[str, str | None]:
    """Every template filled with the caption's nouns, as `tpl_<NAME>`."""
    return {f"tpl_{name}": render(name, nouns) for name in TEMPLATES}


def union_nouns(captions: Iterable[Sequence[str]]) -> list[str]:
    """The nouns of all of an image's reference captions, each once, in order of first appearance."""
    return list(dict.fromkeys(n for nouns in captions for n in nouns))


def count_captions(nouns: Sequence[str], seed: int) -> dict[str, str | None]:
    """`count_<k>`: k of the image's nouns (a seeded draw, nested: the k+1 nouns hold the k, kept in their
    order) in the LXMERT template, for each k of COUNTS; None where the image has fewer than k nouns."""
    order = list(range(len(nouns)))
    random.Random(seed).shuffle(order)
    return {f"count_{k}": render(COUNT_TEMPLATE, [nouns[i] for i in sorted(order[:k])]) if len(nouns) >= k
            else None for k in COUNTS}
