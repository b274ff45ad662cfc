"""VALSE-format foils for held-out scenes: one caption and one minimally different false foil.

Pieces (each a function from `(image_id, image_file, scene, seed)` to a VALSE entry or None when
the scene does not allow that foil):

- `existence`: a listed shape becomes a shape type that is absent from the image;
- `plurals`: a singular group is said to be plural ("several red circles") or vice versa;
- `counting`: "exactly N" becomes another number;
- `color`: one group's colour becomes a colour absent from the image;
- `relations`: above/below, left/right swapped;
- `actant-swap`: subject and object of a spatial relation swapped.

A caption and its foil are built from two `random.Random` objects with the same seed; grammar
primitives draw the same random numbers whatever the attribute values, so they differ only where
the foil changes something. Entries carry every key the real VALSE files have (scores that the
real files got from NLI / grammaticality models are fixed by construction here).
"""
from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from scenes.grammar import (
    NAMES,
    NUMBER_WORDS,
    PICTURE_WORDS,
    copula,
    list_phrase,
    noun_phrase,
    relation_phrase,
    there_be,
)
from scenes.world import COLOURS, OPPOSITE, SHAPES, Group, Scene, aligned, group_relations, pick, shuffled

VALID_MTURK = {"foil": 0, "caption": 3, "other": 0}
"""Synthetic foils are false by construction: every entry is in the valid subset (caption >= 2)."""

CONTRADICTION = {"entail": [0.0], "neutral": [0.0], "contradict": [1.0], "pred": ["contradict"]}

Entry = dict[str, Any]
NounSpec = tuple[str, str, str, int, str | None]
"""(shape, colour, size, count, quantity override) for one noun phrase."""


def _listing(specs: Sequence[NounSpec], seed: str) -> str:
    """A whole-scene listing sentence ('There are two red circles and a blue square.') from a seed.

    Every noun phrase names its colour; the same seed and specs give the same sentence.
    """
    rng = random.Random(seed)
    plan = pick(rng, ("there", "there", "shows", "name"))
    name, picture = pick(rng, NAMES), pick(rng, PICTURE_WORDS)
    nps = [noun_phrase(s, c, z, n, rng, quantity=q, colour_p=1.0) for s, c, z, n, q in specs]
    items = list_phrase(nps)
    if plan == "shows":
        text = f"the {picture} shows {items}"
    elif plan == "name":
        text = f"{name} drew {items}"
    else:
        text = f"{there_be(specs[0][3] > 1)} {items}"
    return text[:1].upper() + text[1:] + "."


def _specs(groups: Sequence[Group]) -> list[NounSpec]:
    return [(g.shape, g.colour, g.size, g.count, None) for g in groups]


def _base(piece: str, phenomenon: str, image_id: int, image_file: str, caption: str, foil: str,
          classes: Any, classes_foil: Any) -> Entry:
    return {
        "dataset": "scenes",
        "original_split": "eval",
        "dataset_idx": image_id,
        "image_file": image_file,
        "linguistic_phenomena": phenomenon,
        "caption": caption,
        "foil": foil,
        "classes": classes,
        "classes_foil": classes_foil,
        "mturk": dict(VALID_MTURK),
    }


def _swap_absent(scene: Scene, seed: str, field: int, values: Sequence[str], prefer_big: bool,
                 ) -> tuple[list[Group], int, str, str, str, str] | None:
    """Replace one group's shape (`field` 0) or colour (`field` 1) by a value absent from the image.

    Returns (groups, target index, old value, new value, caption, foil), or None when nothing is absent.
    With `prefer_big`, the target is a big group where there is one (a salient object, as VALSE foils
    salient nouns).
    """
    rng = random.Random(seed + ":choice")
    groups = shuffled(rng, scene.groups)
    present = {(g.shape, g.colour)[field] for g in groups}
    absent = [v for v in values if v not in present]
    if not absent:
        return None
    big = [i for i, g in enumerate(groups) if g.size == "big"] if prefer_big else []
    target = pick(rng, big or range(len(groups)))
    new = pick(rng, absent)
    specs = _specs(groups)
    foiled = list(specs)
    spec = list(specs[target])
    old, spec[field] = spec[field], new
    foiled[target] = tuple(spec)  # type: ignore[assignment]
    return groups, target, str(old), new, _listing(specs, seed), _listing(foiled, seed)


def existence(image_id: int, image_file: str, scene: Scene, seed: str) -> Entry | None:
    """A present shape (a big one where there is one) becomes a shape type the image does not contain."""
    swapped = _swap_absent(scene, seed, 0, list(SHAPES), prefer_big=True)
    if swapped is None:
        return None
    groups, target, shape, new_shape, caption, foil = swapped
    entry = _base("existence", "existence", image_id, image_file, caption, foil, shape, new_shape)
    entry.update({
        "answer": groups[target].count,
        "split": "test",
        "declarative_statement": caption,
        "declarative_statement_foils": [foil],
        "provenance_of_foils": "absent_shape",
    })
    return entry


def color(image_id: int, image_file: str, scene: Scene, seed: str) -> Entry | None:
    """One group's colour becomes a colour that appears nowhere in the image."""
    swapped = _swap_absent(scene, seed, 1, list(COLOURS), prefer_big=False)
    if swapped is None:
        return None
    _, _, colour, new_colour, caption, foil = swapped
    entry = _base("color", "color", image_id, image_file, caption, foil, colour, new_colour)
    entry["foil_method"] = "absent_colour"
    return entry


def plurals(image_id: int, image_file: str, scene: Scene, seed: str) -> Entry | None:
    """A singular group becomes 'several …s' / 'a number of …s'; a plural one becomes 'exactly one …'."""
    rng = random.Random(seed + ":choice")
    groups = shuffled(rng, scene.groups)
    target = pick(rng, range(len(groups)))
    g = groups[target]
    specs = _specs(groups)
    foiled = list(specs)
    if g.count == 1:
        specs[target] = (g.shape, g.colour, g.size, 1, pick(rng, ("exactly one", "a single", "a")))
        foiled[target] = (g.shape, g.colour, g.size, 2, pick(rng, ("several", "a number of")))
        classes, classes_foil = g.shape, SHAPES[g.shape]
    else:
        specs[target] = (g.shape, g.colour, g.size, g.count, NUMBER_WORDS[g.count])
        foiled[target] = (g.shape, g.colour, g.size, 1, pick(rng, ("exactly one", "a single", "a")))
        classes, classes_foil = SHAPES[g.shape], g.shape
    # Keep the target first so that 'There is' / 'There are' agrees with it.
    order = [target] + [i for i in range(len(groups)) if i != target]
    specs, foiled = [specs[i] for i in order], [foiled[i] for i in order]
    caption, foil = _listing(specs, seed), _listing(foiled, seed)
    entry = _base("plurals", "plurals", image_id, image_file, caption, foil, classes, classes_foil)
    entry.update({
        "foil_method": "singular_plural_swap",
        "grammaticality_scores": [1.0],
        "nli_scores": {k: list(v) for k, v in CONTRADICTION.items()},
        "orig_caption": _listing(_specs([groups[i] for i in order]), seed),
    })
    return entry


def counting(image_id: int, image_file: str, scene: Scene, seed: str) -> Entry | None:
    """'There are exactly N …' with the largest group's N changed to another number (1-4)."""
    rng = random.Random(seed + ":choice")
    groups = shuffled(rng, scene.groups)
    most = max(g.count for g in groups)
    target = pick(rng, [i for i, g in enumerate(groups) if g.count == most])
    g = groups[target]
    new_count = pick(rng, [n for n in NUMBER_WORDS if n != g.count])
    style = pick(rng, ("exactly {}", "exactly {}", "{}"))
    order = [target] + [i for i in range(len(groups)) if i != target]
    specs = [(x.shape, x.colour, x.size, x.count, None) for x in (groups[i] for i in order)]
    foiled = list(specs)
    specs[0] = (g.shape, g.colour, g.size, g.count, style.format(NUMBER_WORDS[g.count]))
    foiled[0] = (g.shape, g.colour, g.size, new_count, style.format(NUMBER_WORDS[new_count]))
    caption, foil = _listing(specs, seed), _listing(foiled, seed)
    entry = _base("counting", "counting", image_id, image_file, caption, foil, g.count, new_count)
    entry.update({"answer": g.count, "split": "test"})
    return entry


def _related_pair(scene: Scene, rng: random.Random) -> tuple[Group, str, Group] | None:
    groups = scene.groups
    pairs = [(a, r, b) for a in groups for b in groups if a is not b for r in group_relations(a, b)]
    return pick(rng, pairs) if pairs else None


def _relation_sentence(subj: Group, subj_np: str, rel: str, obj_np: str, is_aligned: bool, seed: str) -> str:
    rng = random.Random(seed + ":verb")
    cop = copula(subj.count > 1, rng)
    words = relation_phrase(rel, rng, is_aligned=is_aligned)
    text = f"{subj_np} {cop} {words} {obj_np}"
    return text[:1].upper() + text[1:] + "."


def _described_pair(scene: Scene, seed: str) -> tuple[Group, str, Group, str, str, bool] | None:
    """A related pair of groups with their noun phrases: (a, relation, b, a_np, b_np, is_aligned)."""
    pair = _related_pair(scene, random.Random(seed + ":choice"))
    if pair is None:
        return None
    a, rel, b = pair
    np_rng = random.Random(seed + ":np")
    a_np = noun_phrase(a.shape, a.colour, a.size, a.count, np_rng, colour_p=1.0)
    b_np = noun_phrase(b.shape, b.colour, b.size, b.count, np_rng, colour_p=1.0)
    return a, rel, b, a_np, b_np, aligned(a, b, rel)


def relations(image_id: int, image_file: str, scene: Scene, seed: str) -> Entry | None:
    """'A is above B' becomes 'A is below B' (left/right likewise)."""
    described = _described_pair(scene, seed)
    if described is None:
        return None
    a, rel, b, a_np, b_np, is_aligned = described
    caption = _relation_sentence(a, a_np, rel, b_np, is_aligned, seed)
    foil = _relation_sentence(a, a_np, OPPOSITE[rel], b_np, is_aligned, seed)
    entry = _base("relations", "relations", image_id, image_file, caption, foil, rel, OPPOSITE[rel])
    entry.update({
        "foil_method": "opposite_relation",
        "grammaticality_scores": [1.0],
        "nli_scores": {k: list(v) for k, v in CONTRADICTION.items()},
        "key": f"relations:scenes:{image_id}",
    })
    return entry


def actant_swap(image_id: int, image_file: str, scene: Scene, seed: str) -> Entry | None:
    """'A is above B' becomes 'B is above A'."""
    described = _described_pair(scene, seed)
    if described is None:
        return None
    a, rel, b, a_np, b_np, is_aligned = described
    caption = _relation_sentence(a, a_np, rel, b_np, is_aligned, seed)
    foil = _relation_sentence(b, b_np, rel, a_np, is_aligned, seed)
    entry = _base("actant-swap", "actant swap", image_id, image_file, caption, foil,
                  f"{a.colour} {a.shape}", f"{b.colour} {b.shape}")
    return entry


PIECES: dict[str, Callable[[int, str, Scene, str], Entry | None]] = {
    "existence": existence,
    "plurals": plurals,
    "counting": counting,
    "color": color,
    "relations": relations,
    "actant-swap": actant_swap,
}
"""Piece name (file stem under `eval/valse/`) → entry builder."""


def build_pieces(items: Sequence[tuple[int, str, Scene]], seed: int) -> dict[str, dict[str, Entry]]:
    """All pieces for `(image_id, image_file, scene)` items: `{piece: {sample_id: entry}}`."""
    out: dict[str, dict[str, Entry]] = {}
    for piece, build in PIECES.items():
        entries: dict[str, Entry] = {}
        for image_id, image_file, scene in items:
            entry = build(image_id, image_file, scene, f"{seed}:valse:{piece}:{image_id}")
            if entry is not None:
                entries[f"{piece}:scenes:{image_id}"] = entry
        out[piece] = entries
    return out
