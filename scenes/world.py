"""The scenes world: which shapes, colours and sizes exist, where they sit, and how they relate.

A scene is 1-4 coloured shapes on a plain grey canvas. Objects that share a shape and a colour
always share a size, so a *group* (all objects of one shape and colour) is what captions count
("two small red circles"). Everything is sampled from a `random.Random` passed in, drawing only
through `rng.random()`, so the same seed gives the same scene on every platform.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

T = TypeVar("T")

CANVAS = 128
"""Image side in pixels."""

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 35, 35),
    "green": (30, 165, 55),
    "blue": (35, 75, 230),
    "yellow": (245, 215, 35),
    "white": (250, 250, 250),
    "black": (20, 20, 20),
}
"""Colour words and their RGB values: few, saturated, far apart, all distinct from the grey background."""

SHAPES: dict[str, str] = {"circle": "circles", "square": "squares", "triangle": "triangles", "star": "stars"}
"""Shape nouns, singular to plural."""

SIZE_PX: dict[str, int] = {"big": 52, "small": 30}
"""Bounding-box side of each size class, in pixels."""

SHAPE_COUNT_WEIGHTS: dict[int, float] = {1: 0.35, 2: 0.35, 3: 0.15, 4: 0.15}
"""How many objects a scene has: many easy single-shape scenes, fewer crowded ones."""

DUPLICATE_P = 0.35
"""Chance that a multi-object scene repeats one kind of object (for counting and plurals)."""

JITTER = 3
"""Maximum random offset of an object's centre from its layout slot, in pixels."""

MARGIN = 20
"""Centres must differ by more than this (px) along an axis for left/right/above/below to hold."""

ALIGNED = 12
"""Centres within this (px) along an axis count as the same row / column."""

RELATIONS = ("above", "below", "left", "right")
OPPOSITE = {"above": "below", "below": "above", "left": "right", "right": "left"}


def pick(rng: random.Random, options: Sequence[T]) -> T:
    """Uniform choice that always consumes exactly one `rng.random()` draw."""
    return options[min(int(rng.random() * len(options)), len(options) - 1)]


def weighted(rng: random.Random, options: Sequence[tuple[T, float]]) -> T:
    """Weighted choice over `(value, weight)` pairs with exactly one `rng.random()` draw."""
    total = sum(w for _, w in options)
    u = rng.random() * total
    for value, w in options:
        u -= w
        if u < 0:
            return value
    return options[-1][0]


def shuffled(rng: random.Random, items: Sequence[T]) -> list[T]:
    """A Fisher-Yates shuffle drawing through `pick` (platform-independent)."""
    out = list(items)
    for i in range(len(out) - 1, 0, -1):
        j = pick(rng, range(i + 1))
        out[i], out[j] = out[j], out[i]
    return out


@dataclass(frozen=True)
class Obj:
    """One drawn shape: kind, size class, centre (px) and its exact fill colour."""

    shape: str
    colour: str
    size: str
    x: float
    y: float
    rgb: tuple[int, int, int]

    def cell(self) -> tuple[int, int]:
        """Coarse position (row, column) on a 3×3 grid; used for scene signatures and position words."""
        third = CANVAS / 3
        return (min(int(self.y // third), 2), min(int(self.x // third), 2))


@dataclass(frozen=True)
class Group:
    """All objects of one shape and colour (they share a size): what a noun phrase describes."""

    shape: str
    colour: str
    size: str
    members: tuple[Obj, ...]

    @property
    def count(self) -> int:
        return len(self.members)

    @property
    def x(self) -> float:
        return sum(o.x for o in self.members) / self.count

    @property
    def y(self) -> float:
        return sum(o.y for o in self.members) / self.count


@dataclass(frozen=True)
class Scene:
    """A whole image's content."""

    objects: tuple[Obj, ...]
    background: int

    @property
    def groups(self) -> list[Group]:
        """Groups in a stable order (first appearance in `objects`)."""
        order: list[tuple[str, str]] = []
        members: dict[tuple[str, str], list[Obj]] = {}
        for obj in self.objects:
            key = (obj.shape, obj.colour)
            if key not in members:
                order.append(key)
                members[key] = []
            members[key].append(obj)
        return [Group(s, c, members[(s, c)][0].size, tuple(members[(s, c)])) for s, c in order]

    def signature(self) -> tuple[tuple[str, str, str, int, int], ...]:
        """What makes two scenes 'the same' for held-out checks: kinds, sizes and coarse cells."""
        return tuple(sorted((o.shape, o.colour, o.size, *o.cell()) for o in self.objects))

    def to_json(self) -> dict[str, object]:
        """Plain-JSON ground truth (objects with centres), for analyses and tests."""
        return {
            "background": self.background,
            "objects": [
                {"shape": o.shape, "colour": o.colour, "size": o.size, "x": round(o.x, 1), "y": round(o.y, 1)}
                for o in self.objects
            ],
        }


def object_relation(a: Obj | Group, b: Obj | Group, relation: str) -> bool:
    """Whether `a` is `relation` (above/below/left/right) of `b`, judged on centres with a margin."""
    if relation == "above":
        return a.y < b.y - MARGIN
    if relation == "below":
        return a.y > b.y + MARGIN
    if relation == "left":
        return a.x < b.x - MARGIN
    if relation == "right":
        return a.x > b.x + MARGIN
    raise ValueError(f"unknown relation {relation!r}")


def group_relation(a: Group, b: Group, relation: str) -> bool:
    """A relation holds between groups when it holds for every pair of their members."""
    return all(object_relation(x, y, relation) for x in a.members for y in b.members)


def group_relations(a: Group, b: Group) -> list[str]:
    """Every relation (in `RELATIONS` order) that holds from `a` to `b`."""
    return [r for r in RELATIONS if group_relation(a, b, r)]


def aligned(a: Group, b: Group, relation: str) -> bool:
    """True when `a` and `b` share a column (for above/below) or a row (for left/right)."""
    if relation in ("above", "below"):
        return all(abs(x.x - y.x) <= ALIGNED for x in a.members for y in b.members)
    return all(abs(x.y - y.y) <= ALIGNED for x in a.members for y in b.members)


def _slots(rng: random.Random, n: int) -> list[tuple[float, float]]:
    """Layout slot centres for `n` objects; big shapes fit in every slot."""
    q1, mid, q3 = CANVAS * 0.25, CANVAS * 0.5, CANVAS * 0.75
    if n == 1:
        return [(pick(rng, (q1, mid, q3)), pick(rng, (q1, mid, q3)))]
    if n == 2:
        layout = pick(rng, ("row", "column", "diagonal", "antidiagonal"))
        offset = pick(rng, (CANVAS * 0.31, mid, CANVAS * 0.69))
        if layout == "row":
            return [(q1, offset), (q3, offset)]
        if layout == "column":
            return [(offset, q1), (offset, q3)]
        if layout == "diagonal":
            return [(q1, q1), (q3, q3)]
        return [(q3, q1), (q1, q3)]
    cells = [(q1, q1), (q3, q1), (q1, q3), (q3, q3)]
    return shuffled(rng, cells)[:n]


def _kinds(rng: random.Random, n: int) -> list[tuple[str, str, str]]:
    """`n` (shape, colour, size) kinds; a repeated kind only when sampled as a duplicate."""
    if n >= 2 and rng.random() < DUPLICATE_P:
        repeats = pick(rng, range(2, n + 1))
    else:
        repeats = 1
    distinct = n - repeats + 1
    seen: set[tuple[str, str]] = set()
    kinds: list[tuple[str, str, str]] = []
    while len(kinds) < distinct:
        shape, colour, size = pick(rng, list(SHAPES)), pick(rng, list(COLOURS)), pick(rng, list(SIZE_PX))
        if (shape, colour) in seen:
            continue
        seen.add((shape, colour))
        kinds.append((shape, colour, size))
    return [kinds[0]] * repeats + kinds[1:]


def _jitter_rgb(rng: random.Random, rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """A small shade variation that never changes which colour word applies."""
    return tuple(max(0, min(255, c + round((rng.random() - 0.5) * 24))) for c in rgb)  # type: ignore[return-value]


def sample_scene(rng: random.Random) -> Scene:
    """Draw one scene: object count, kinds, layout, jitter, shades and background."""
    n = weighted(rng, list(SHAPE_COUNT_WEIGHTS.items()))
    kinds = shuffled(rng, _kinds(rng, n))
    slots = _slots(rng, n)
    objects = []
    for (shape, colour, size), (x, y) in zip(kinds, slots):
        dx, dy = (rng.random() * 2 - 1) * JITTER, (rng.random() * 2 - 1) * JITTER
        objects.append(Obj(shape, colour, size, x + dx, y + dy, _jitter_rgb(rng, COLOURS[colour])))
    background = 118 + pick(rng, range(21))
    return Scene(tuple(objects), background)


def shape_twin(scene: Scene, rng: random.Random) -> Scene | None:
    """The same scene with one group (all its members) given a shape the scene lacks: a minimal pair.

    When the scene already shows every shape, the new shape is one not yet drawn in that group's
    colour. None when no shape is left (never for the scenes `sample_scene` draws).
    """
    group = pick(rng, scene.groups)
    used = {o.shape for o in scene.objects}
    taken = {(o.shape, o.colour) for o in scene.objects}
    options = [s for s in SHAPES if s not in used] or [s for s in SHAPES if (s, group.colour) not in taken]
    if not options:
        return None
    shape = pick(rng, options)
    objects = tuple(replace(o, shape=shape) if (o.shape, o.colour) == (group.shape, group.colour) else o
                    for o in scene.objects)
    return Scene(objects, scene.background)
