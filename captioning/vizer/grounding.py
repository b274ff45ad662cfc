"""Grounding against the scenes' ground truth: are the shapes and colours a caption names in the image, and
which of the image's objects does it name?

A mention is a shape noun (singular or plural) with the colour word among the adjectives right before it, if
any ("a very little green star" -> (star, green); "the circles" -> (circle, no colour)). A mention is true
when the image has an object of that shape (and that colour, when one is named). An object is mentioned when
a mention has its shape and either its colour or no colour. Precision: true mentions / mentions; recall:
mentioned objects / objects; both summed over the images (micro averages).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from captioning.metrics import words
from scenes.world import COLOURS, SHAPES

NOUNS: dict[str, str] = {**{s: s for s in SHAPES}, **{p: s for s, p in SHAPES.items()}}
MODIFIERS: frozenset[str] = frozenset(COLOURS) | {"big", "large", "small", "little", "very", "really", "quite",
                                                  "rather", "tiny", "huge"}


@dataclass(frozen=True)
class Grounding:
    """One caption's counts."""

    mentions: int
    true_mentions: int
    objects: int
    mentioned_objects: int


def mentions(text: str) -> list[tuple[str, str | None]]:
    """(shape, colour or None) of each shape noun of the caption."""
    tokens = words(text)
    out = []
    for i, word in enumerate(tokens):
        if word not in NOUNS:
            continue
        colour, j = None, i - 1
        while j >= 0 and tokens[j] in MODIFIERS:
            colour = tokens[j] if tokens[j] in COLOURS and colour is None else colour
            j -= 1
        out.append((NOUNS[word], colour))
    return out


def ground(text: str, objects: Sequence[dict]) -> Grounding:
    """The caption's counts against the image's objects (`scenes.json` entries: shape, colour, size, ...)."""
    said = mentions(text)

    def matches(m: tuple[str, str | None], o: dict) -> bool:
        return m[0] == o["shape"] and m[1] in (None, o["colour"])

    return Grounding(len(said), sum(any(matches(m, o) for o in objects) for m in said), len(objects),
                     sum(any(matches(m, o) for m in said) for o in objects))
