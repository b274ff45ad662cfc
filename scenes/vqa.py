"""VQA v2-format questions and annotations about scenes: yes/no, number and other answers.

Per image up to two questions of each answer type, yes/no balanced: "Is there a red circle?",
"Is the red circle above the blue square?", "How many circles are there?", "How many red shapes
are there?", "What color is the star?", "What shape is the blue object?", "What size is the
green square?". Each annotation has ten human-style answers; a few number answers spell the
number out ("two" next to "2"), which VQA answer normalisation maps together.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from scenes.grammar import NUMBER_WORDS
from scenes.world import COLOURS, OPPOSITE, RELATIONS, SHAPES, Scene, group_relation, pick, shuffled

QUESTIONS_PER_TYPE = 2
REL_TEXT = {"above": "above", "below": "below", "left": "left of", "right": "right of"}

QA = tuple[str, str, str, str]
"""(question, answer, answer_type, question_type)."""


def _yes_no(scene: Scene, rng: random.Random) -> list[QA]:
    groups = scene.groups
    present = {(g.shape, g.colour) for g in groups}
    yes: list[QA] = []
    no: list[QA] = []
    for g in groups:
        yes.append((f"Is there a {g.colour} {g.shape}?", "yes", "yes/no", "is there a"))
    for shape in SHAPES:
        has = any(g.shape == shape for g in groups)
        (yes if has else no).append((f"Are there any {SHAPES[shape]}?", "yes" if has else "no", "yes/no",
                                     "are there any"))
    for g in groups:  # plausible absent combinations: same shape other colour, same colour other shape
        for colour in COLOURS:
            if (g.shape, colour) not in present:
                no.append((f"Is there a {colour} {g.shape}?", "no", "yes/no", "is there a"))
        for shape in SHAPES:
            if (shape, g.colour) not in present:
                no.append((f"Is there a {g.colour} {shape}?", "no", "yes/no", "is there a"))
    singles = [g for g in groups if g.count == 1]
    for a in singles:
        for b in singles:
            if a is b:
                continue
            for rel in RELATIONS:
                if group_relation(a, b, rel):
                    text = f"Is the {a.colour} {a.shape} {{}} the {b.colour} {b.shape}?"
                    yes.append((text.format(REL_TEXT[rel]), "yes", "yes/no", "is the"))
                    no.append((text.format(REL_TEXT[OPPOSITE[rel]]), "no", "yes/no", "is the"))
        for size in ("big", "small"):
            answer = "yes" if a.size == size else "no"
            (yes if answer == "yes" else no).append((f"Is the {a.colour} {a.shape} {size}?", answer, "yes/no",
                                                     "is the"))
    out = []
    if yes:
        out.append(pick(rng, yes))
    if no:
        out.append(pick(rng, no))
    return out


def _number(scene: Scene, rng: random.Random) -> list[QA]:
    groups = scene.groups
    options: list[QA] = [("How many shapes are there?", str(len(scene.objects)), "number", "how many")]
    for shape in SHAPES:
        n = sum(g.count for g in groups if g.shape == shape)
        if n or rng.random() < 0.3:
            options.append((f"How many {SHAPES[shape]} are there?", str(n), "number", "how many"))
    for colour in sorted({g.colour for g in groups}):
        n = sum(g.count for g in groups if g.colour == colour)
        options.append((f"How many {colour} shapes are there?", str(n), "number", "how many"))
    return _distinct(options, rng, QUESTIONS_PER_TYPE)


def _other(scene: Scene, rng: random.Random) -> list[QA]:
    groups = scene.groups
    options: list[QA] = []
    for g in groups:
        if sum(h.shape == g.shape for h in groups) == 1:
            if g.count == 1:
                options.append((f"What color is the {g.shape}?", g.colour, "other", "what color is the"))
            else:
                options.append((f"What color are the {SHAPES[g.shape]}?", g.colour, "other", "what color are the"))
        if sum(h.colour == g.colour for h in groups) == 1 and g.count == 1:
            options.append((f"What shape is the {g.colour} object?", g.shape, "other", "what shape is the"))
        if g.count == 1:
            options.append((f"What size is the {g.colour} {g.shape}?", g.size, "other", "what size is the"))
    return _distinct(options, rng, QUESTIONS_PER_TYPE)


def _distinct(options: Sequence[QA], rng: random.Random, k: int) -> list[QA]:
    return shuffled(rng, options)[:k]


def _answers(answer: str, answer_type: str, rng: random.Random) -> list[dict[str, Any]]:
    """Ten answers; for some number questions one annotator spells the number out."""
    words = [answer] * 10
    if answer_type == "number" and int(answer) in NUMBER_WORDS and rng.random() < 0.3:
        words[pick(rng, range(10))] = NUMBER_WORDS[int(answer)]
    return [{"answer": w, "answer_confidence": "yes", "answer_id": i + 1} for i, w in enumerate(words)]


def questions_for(image_id: int, scene: Scene, seed: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """`(question, annotation)` records for one image, question ids `image_id * 1000 + k`."""
    rng = random.Random(seed)
    qas = _yes_no(scene, rng) + _number(scene, rng) + _other(scene, rng)
    out = []
    for k, (question, answer, answer_type, question_type) in enumerate(qas):
        qid = image_id * 1000 + k
        out.append((
            {"image_id": image_id, "question": question, "question_id": qid},
            {
                "question_id": qid,
                "image_id": image_id,
                "question_type": question_type,
                "answer_type": answer_type,
                "multiple_choice_answer": answer,
                "answers": _answers(answer, answer_type, rng),
            },
        ))
    return out


def build_split(items: Sequence[tuple[int, Scene]], subtype: str, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The official questions and annotations files for `(image_id, scene)` items."""
    questions, annotations = [], []
    for image_id, scene in items:
        for q, a in questions_for(image_id, scene, f"{seed}:vqa:{image_id}"):
            questions.append(q)
            annotations.append(a)
    info = {"description": "posmask synthetic scenes, VQA v2 format", "version": "1.0"}
    licence = {"name": "generated data", "url": ""}
    return (
        {"info": info, "task_type": "Open-Ended", "data_type": "scenes", "data_subtype": subtype,
         "license": licence, "questions": questions},
        {"info": info, "data_type": "scenes", "data_subtype": subtype, "license": licence,
         "annotations": annotations},
    )
