"""Caption grammar: varied English sentences that say what is visible in a scene.

Every caption mentions every group of objects (colour and shape words dominate), in one of several
sentence plans: existential ("There are ..."), agentive with a painter's name (PROPN), a list, or
a chain of spatial relations; optional framing ("In Anna's drawing, ...") and a closing remark
("They are clearly visible."). Across a corpus spaCy's tagger finds NOUN, VERB, ADJ, ADV, PROPN,
DET, AUX, PRON, ADP, NUM, CCONJ and PUNCT. The primitives (`noun_phrase`, `copula`,
`relation_phrase`, `list_phrase`) are shared with the foil and question builders.
"""
from __future__ import annotations

import random
from collections.abc import Sequence

from scenes.world import SHAPES, Group, Scene, aligned, group_relations, pick, shuffled, weighted

NAMES = ("Anna", "Tom", "Maria", "Lena", "David", "Sofia", "Peter", "Emma", "Jonas", "Laura", "Oliver", "Clara")
"""Painters: the proper nouns of the corpus."""

MAX_WORDS_BEFORE_CLOSING = 12
"""Longer captions get no closing remark (the tiny preset keeps 30 wordpieces)."""

NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}
SIZE_WORDS = {"big": (("big", 0.75), ("large", 0.25)), "small": (("small", 0.75), ("little", 0.25))}
PICTURE_WORDS = ("picture", "image", "drawing", "painting")

RELATION_WORDS: dict[str, tuple[str, ...]] = {
    "above": ("above", "above", "over"),
    "below": ("below", "below", "under", "beneath"),
    "left": ("left of", "to the left of", "on the left of"),
    "right": ("right of", "to the right of", "on the right of"),
}
"""How a spatial relation is worded (`directly` may be added when the two are aligned)."""

COPULAS: tuple[tuple[tuple[str, str], float], ...] = (
    (("is", "are"), 0.42),
    (("sits", "sit"), 0.12),
    (("is sitting", "are sitting"), 0.1),
    (("is placed", "are placed"), 0.1),
    (("is drawn", "are drawn"), 0.1),
    (("appears", "appear"), 0.06),
    (("can be seen", "can be seen"), 0.05),
    (("is located", "are located"), 0.05),
)
"""Linking verbs as (singular, plural): AUX and VERB tokens."""

POSITION_WORDS: dict[tuple[int, int], tuple[str, ...]] = {
    (0, 0): ("in the top left corner", "at the top left"),
    (0, 1): ("at the top", "near the top"),
    (0, 2): ("in the top right corner", "at the top right"),
    (1, 0): ("on the left", "on the left side"),
    (1, 1): ("in the middle", "in the center"),
    (1, 2): ("on the right", "on the right side"),
    (2, 0): ("in the bottom left corner", "at the bottom left"),
    (2, 1): ("at the bottom", "near the bottom"),
    (2, 2): ("in the bottom right corner", "at the bottom right"),
}


def count_words(count: int, rng: random.Random) -> str:
    """A determiner / quantifier phrase for `count` objects ("a", "one", "exactly two", "2", ...)."""
    if count == 1:
        return weighted(rng, (("a", 0.74), ("one", 0.12), ("exactly one", 0.07), ("a single", 0.07)))
    word = NUMBER_WORDS[count]
    return weighted(
        rng,
        ((word, 0.68), (f"exactly {word}", 0.12), (str(count), 0.06), ("several", 0.08), ("a number of", 0.06)),
    )


def size_word(size: str, rng: random.Random) -> str:
    """'big'/'large' or 'small'/'little', sometimes with an intensifier (ADV)."""
    word = weighted(rng, SIZE_WORDS[size])
    return weighted(rng, ((word, 0.85), (f"very {word}", 0.1), (f"quite {word}", 0.05)))


def noun_phrase(
    shape: str,
    colour: str,
    size: str,
    count: int,
    rng: random.Random,
    *,
    definite: bool = False,
    quantity: str | None = None,
    size_p: float = 0.55,
    colour_p: float = 0.96,
) -> str:
    """'two small red circles', 'a blue square', 'the big star', ...

    Draws the same number of random numbers whatever the attribute values, so a foil built from
    the same `rng` state differs from its caption only in the changed attribute.
    """
    det = count_words(count, rng)
    if quantity is not None:
        det = quantity
    if definite:
        det = "the" if count == 1 else f"the {NUMBER_WORDS[count]}"
    with_size = rng.random() < size_p
    size_text = size_word(size, rng)
    with_colour = rng.random() < colour_p or not with_size
    noun = SHAPES[shape] if count > 1 else shape
    words = [det]
    if with_size:
        words.append(size_text)
    if with_colour:
        words.append(colour)
    words.append(noun)
    return " ".join(words)


def group_phrase(group: Group, rng: random.Random, **kwargs: object) -> str:
    """`noun_phrase` for a group."""
    return noun_phrase(group.shape, group.colour, group.size, group.count, rng, **kwargs)  # type: ignore[arg-type]


def copula(plural: bool, rng: random.Random) -> str:
    """A linking verb agreeing with the subject ('is', 'are sitting', 'sits', ...)."""
    singular, plural_form = weighted(rng, COPULAS)
    return plural_form if plural else singular


def relation_phrase(relation: str, rng: random.Random, *, is_aligned: bool = False) -> str:
    """'above', 'directly above', 'to the left of', ..."""
    words = pick(rng, RELATION_WORDS[relation])
    if is_aligned and rng.random() < 0.25:
        return f"directly {words}"
    return words


def list_phrase(items: Sequence[str]) -> str:
    """'A', 'A and B', 'A, B and C'."""
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def there_be(first_plural: bool) -> str:
    """'there is' / 'there are', agreeing with the first listed item (as people write)."""
    return "there are" if first_plural else "there is"


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def position_phrase(group: Group, rng: random.Random) -> str | None:
    """Where a lone group sits: 'in the top left corner', 'side by side', ... or None."""
    if group.count == 1:
        return pick(rng, POSITION_WORDS[group.members[0].cell()])
    ys = [o.y for o in group.members]
    xs = [o.x for o in group.members]
    if max(ys) - min(ys) <= 12:
        return pick(rng, ("side by side", "next to each other", "in a row"))
    if max(xs) - min(xs) <= 12:
        return pick(rng, ("one above the other", "stacked on top of each other"))
    return None


def _relation_chain(groups: Sequence[Group], rng: random.Random) -> list[tuple[int, str, int]] | None:
    """An order of mention where each group after the first relates to an earlier one.

    Returns `(subject index, relation, object index)` triples, or None when some group relates
    to none of the others (then a list is used instead).
    """
    order = shuffled(rng, range(len(groups)))
    chain: list[tuple[int, str, int]] = []
    first, rest = order[0], order[1:]
    mentioned = [first]
    while rest:
        progress = False
        for idx in list(rest):
            options = [(idx, r, m) for m in mentioned for r in group_relations(groups[idx], groups[m])]
            if options:
                chain.append(pick(rng, options))
                mentioned.append(idx)
                rest.remove(idx)
                progress = True
                break
        if not progress:
            return None
    return chain


def _relation_sentence(groups: Sequence[Group], chain: list[tuple[int, str, int]], rng: random.Random) -> str:
    """'A big red circle is above a blue square, and a green star is left of the blue square.'"""
    parts: list[str] = []
    named: dict[int, str] = {}
    for n, (subj, rel, obj) in enumerate(chain):
        g_subj, g_obj = groups[subj], groups[obj]
        subj_np = group_phrase(g_subj, rng)
        if obj in named:
            obj_np = group_phrase(g_obj, rng, definite=True, size_p=0.2)
        else:
            obj_np = group_phrase(g_obj, rng)
        rel_words = relation_phrase(rel, rng, is_aligned=aligned(g_subj, g_obj, rel))
        clause = f"{subj_np} {copula(g_subj.count > 1, rng)} {rel_words} {obj_np}"
        named.setdefault(subj, subj_np)
        named.setdefault(obj, obj_np)
        if n == 0:
            parts.append(clause)
        else:
            joiner = weighted(rng, ((", and ", 0.6), (". ", 0.25), (", while ", 0.15)))
            if joiner == ". ":
                clause = _capitalise(clause)
            parts.append(joiner + clause)
    return "".join(parts)


def _scene_clause(groups: Sequence[Group], rng: random.Random) -> tuple[str, bool]:
    """The main statement about all groups, and whether it can take a framing prefix."""
    relation_p = {2: 0.65, 3: 0.45}.get(len(groups), 0.3)
    if len(groups) >= 2 and rng.random() < relation_p:
        chain = _relation_chain(groups, rng)
        if chain is not None:
            return _relation_sentence(groups, chain, rng), True
    nps = [group_phrase(g, rng) for g in groups]
    where = position_phrase(groups[0], rng) if len(groups) == 1 else None
    if where is not None and rng.random() < 0.45:
        where = None
    tail = f" {where}" if where else ""
    items = list_phrase(nps)
    plan = weighted(
        rng,
        (("there", 0.34), ("shows", 0.16), ("name", 0.18), ("see", 0.1), ("fragment", 0.1), ("copula", 0.12)),
    )
    name = pick(rng, NAMES)
    verb = weighted(rng, (("drew", 0.45), ("painted", 0.3), ("has drawn", 0.15), ("made", 0.1)))
    picture = pick(rng, PICTURE_WORDS)
    if plan == "copula" and len(groups) == 1 and where:
        return f"{items} {copula(groups[0].count > 1, rng)} {where}", True
    if plan == "shows":
        return f"the {picture} {pick(rng, ('shows', 'contains', 'has'))} {items}{tail}", False
    if plan == "name":
        return f"{name} {verb} {items}{tail}", False
    if plan == "see":
        return f"we can {pick(rng, ('see', 'spot'))} {items}{tail}", True
    if plan == "fragment":
        return f"{items}{tail} on a {pick(rng, ('grey', 'gray', 'plain grey'))} background", False
    return f"{there_be(groups[0].count > 1)} {items}{tail}", True


def _closing(scene: Scene, groups: Sequence[Group], rng: random.Random) -> str:
    """An optional visual remark: total count, visibility, background, or one group's size."""
    n = len(scene.objects)
    options = ["background", "nothing"]
    if n >= 2:
        options += ["total", "total", "visible"]
    else:
        options += ["visible"]
    unique_shapes = [g for g in groups if sum(h.shape == g.shape for h in groups) == 1]
    if unique_shapes:
        options += ["size", "size"]
    choice = pick(rng, options)
    if choice == "total":
        return pick(rng, (f"There are {NUMBER_WORDS[n]} shapes in total.", f"Altogether, there are {n} shapes.",
                          f"In total, {NUMBER_WORDS[n]} shapes are shown."))
    if choice == "visible":
        pronoun = "They are" if n >= 2 else "It is"
        return f"{pronoun} {pick(rng, ('clearly visible', 'easily visible', 'very easy to see', 'easy to see'))}."
    if choice == "size":
        g = pick(rng, unique_shapes)
        noun = SHAPES[g.shape] if g.count > 1 else g.shape
        verb = "are" if g.count > 1 else "is"
        return f"The {noun} {verb} {size_word(g.size, rng)}."
    if choice == "background":
        return pick(rng, ("The background is plain grey.", "The background is empty and grey.",
                          "It has a grey background."))
    return pick(rng, ("Nothing else is visible.", "There is nothing else.", "Nothing else is there."))


def caption(scene: Scene, rng: random.Random) -> str:
    """One random caption of the scene."""
    groups = shuffled(rng, scene.groups)
    clause, can_frame = _scene_clause(groups, rng)
    frame = weighted(rng, (("", 0.72), ("name", 0.14), ("picture", 0.08), ("here", 0.06)))
    if can_frame and frame == "name":
        clause = f"In {pick(rng, NAMES)}'s {pick(rng, PICTURE_WORDS)}, {clause}"
    elif can_frame and frame == "picture":
        clause = f"In this {pick(rng, PICTURE_WORDS)}, {clause}"
    elif can_frame and frame == "here":
        clause = f"Here, {clause}"
    text = _capitalise(clause)
    if rng.random() < 0.08 and "." not in text:
        return text  # a COCO-style fragment without a full stop
    text += "."
    if rng.random() < 0.35 and len(text.split()) <= MAX_WORDS_BEFORE_CLOSING:
        text += " " + _closing(scene, groups, rng)
    return text


def captions(scene: Scene, rng: random.Random, n: int = 5, attempts: int = 40) -> list[str]:
    """`n` captions of the scene, distinct where the grammar allows."""
    out: list[str] = []
    for _ in range(attempts):
        text = caption(scene, rng)
        if text not in out:
            out.append(text)
        if len(out) == n:
            return out
    while len(out) < n:
        out.append(caption(scene, rng))
    return out
