"""The probe's foils: a POS swap changes exactly the words of its class and keeps everything else; the other
variants keep and change what they say; all are seeded."""
from __future__ import annotations

import random

import pytest

from evaluation.probe.perturb import (SWAPS, Vocabulary, is_probeable, nouns_only, perturb, pos_swap,
                                      shuffle)
from shards.upos import STUDIED_CLASSES
from shards.upos import UPOS_ID as U


def _tagged(text: str) -> tuple[list[str], list[int]]:
    pairs = [t.rsplit("/", 1) for t in text.split()]
    return [w for w, _ in pairs], [U[p] for _, p in pairs]


# every studied class at least once, some twice
WORDS, UPOS = _tagged("there/PRON is/AUX a/DET red/ADJ circle/NOUN and/CCONJ Maria/PROPN quickly/ADV draws/VERB "
                      "it/PRON on/ADP the/DET square/NOUN ./PUNCT")
CORPUS = [(WORDS, UPOS), _tagged(
    "we/PRON can/AUX see/VERB this/DET big/ADJ blue/ADJ star/NOUN near/ADP David/PROPN very/ADV clearly/ADV ./PUNCT"),
    _tagged("they/PRON are/AUX painting/VERB each/DET small/ADJ triangle/NOUN below/ADP Anna/PROPN here/ADV")]


def test_vocabulary_by_class():
    v = Vocabulary.build(CORPUS)
    assert v.nouns == ["circle", "square", "star", "triangle"]
    assert v.by_class[U["DET"]] == ["a", "each", "the", "this"]
    assert v.by_class[U["PROPN"]] == ["anna", "david", "maria"]
    assert "maria" in v.others and "." not in v.others and "circle" not in v.others


@pytest.mark.parametrize("cls", STUDIED_CLASSES)
def test_pos_swap_changes_exactly_the_words_of_its_class(cls):
    v = Vocabulary.build(CORPUS)
    own = {w.lower() for w, u in zip(WORDS, UPOS) if u == U[cls]}
    for seed in range(20):
        foil = pos_swap(WORDS, UPOS, U[cls], v, random.Random(seed))
        assert foil is not None and len(foil) == len(WORDS)
        for w, u, f in zip(WORDS, UPOS, foil):
            if u == U[cls]:  # replaced by another word of the class, never one the caption uses in it
                assert f in v.by_class[U[cls]] and f not in own
            else:
                assert f == w  # everything else kept, position by position


def test_pos_swap_skips_captions_without_the_class_or_without_an_alternative():
    v = Vocabulary.build(CORPUS)
    assert pos_swap(WORDS, UPOS, U["NUM"], v, random.Random(0)) is None  # no NUM in the caption
    lone = Vocabulary.build([(["a", "circle"], [U["DET"], U["NOUN"]])])
    assert pos_swap(["a", "circle"], [U["DET"], U["NOUN"]], U["NOUN"], lone, random.Random(0)) is None


def test_variants():
    v = Vocabulary.build(CORPUS)
    out = perturb(WORDS, UPOS, v, seed=1)
    assert out["original"] == " ".join(WORDS)
    assert set(out) == {"original", *SWAPS, "noun_swap", "nouns_only", "shuffle"}
    swapped = out["noun_swap"].split()
    assert {swapped[4], swapped[12]} <= {"star", "triangle"}
    assert [w for i, w in enumerate(swapped) if i not in (4, 12)] == [w for i, w in enumerate(WORDS) if i not in (4, 12)]
    kept = out["nouns_only"].split()
    assert kept[4] == "circle" and kept[12] == "square" and kept[13] == "."
    assert all(kept[i] != WORDS[i].lower() for i in range(len(WORDS)) if i not in (4, 12, 13))
    assert sorted(out["shuffle"].split()) == sorted(WORDS[:-1]) and out["shuffle"] != " ".join(WORDS[:-1])
    assert perturb(WORDS, UPOS, v, seed=1) == out  # seeded
    assert any(perturb(WORDS, UPOS, v, seed=s)["shuffle"] != out["shuffle"] for s in range(2, 6))


def test_edge_cases():
    assert shuffle(["x"], [U["NOUN"]], random.Random(0)) == ["x"]
    assert nouns_only(["a", "dog"], [U["DET"], U["NOUN"]], Vocabulary({}, ["a"]), random.Random(0)) is None
    assert is_probeable(UPOS)
    assert not is_probeable([U["NOUN"], U["PUNCT"]])  # nothing to replace around the noun
    assert not is_probeable([U["DET"], U["ADJ"]])  # no noun
