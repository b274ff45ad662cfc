"""The probe's perturbations: what each variant keeps and changes, and that they are seeded."""
from __future__ import annotations

from evaluation.probe_perturb import Vocabulary, is_probeable, perturb, shuffle, template
from shards.upos import UPOS_ID as U

WORDS = ["a", "red", "circle", "is", "left", "of", "the", "square", "."]
UPOS = [U["DET"], U["ADJ"], U["NOUN"], U["AUX"], U["ADV"], U["ADP"], U["DET"], U["NOUN"], U["PUNCT"]]
CORPUS = [(WORDS, UPOS), (["two", "blue", "stars", "near", "Maria"],
                          [U["NUM"], U["ADJ"], U["NOUN"], U["ADP"], U["PROPN"]])]


def test_vocabulary_splits_nouns_from_other_words():
    v = Vocabulary.build(CORPUS)
    assert v.nouns == ["circle", "square", "stars"]
    assert "maria" in v.others and "." not in v.others and "circle" not in v.others


def test_variants():
    v = Vocabulary.build(CORPUS)
    out = perturb(WORDS, UPOS, v, seed=1)
    assert out["original"] == "a red circle is left of the square ."
    swapped = out["noun_swap"].split()
    assert swapped[2] == "stars" and swapped[7] == "stars"  # the only noun not in the caption
    assert [w for i, w in enumerate(swapped) if i not in (2, 7)] == [w for i, w in enumerate(WORDS) if i not in (2, 7)]
    kept = out["nouns_only"].split()
    assert kept[2] == "circle" and kept[7] == "square" and kept[8] == "."
    assert all(kept[i] != WORDS[i] for i in (0, 1, 3, 4, 5, 6))
    assert sorted(out["shuffle"].split()) == sorted(WORDS[:-1]) and out["shuffle"] != " ".join(WORDS[:-1])
    assert out["template"] == "a circle of the square"
    assert perturb(WORDS, UPOS, v, seed=1) == out  # seeded
    assert any(perturb(WORDS, UPOS, v, seed=s)["shuffle"] != out["shuffle"] for s in range(2, 6))


def test_edge_cases():
    import random

    assert template(["dogs"], [U["NOUN"]]) == ["a", "dogs"]
    assert shuffle(["x"], [U["NOUN"]], random.Random(0)) == ["x"]
    assert is_probeable(UPOS)
    assert not is_probeable([U["NOUN"], U["PUNCT"]])  # nothing to replace around the noun
    assert not is_probeable([U["DET"], U["ADJ"]])  # no noun
