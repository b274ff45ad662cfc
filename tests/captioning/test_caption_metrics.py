"""The SCST probe's caption measures: the trigram LM, BLEU/CIDEr without Java, POS patterns."""
from __future__ import annotations

import random

from captioning.metrics import TrigramLM, coco_scores, pos_pattern, prefix, top, words
from shards.upos import UPOS_ID as U

TEXT = ["a big red circle is on the left of a small blue square .", "there is a green star above the white triangle",
        "two yellow squares sit next to each other on a grey background", "the picture shows one black circle"]


def test_lm_gives_its_training_text_a_lower_perplexity_than_shuffled_text():
    sentences = [words(t) for t in TEXT] * 20
    lm = TrigramLM(sentences)
    rng = random.Random(0)
    shuffled = [rng.sample(s, len(s)) for s in sentences[:4]]
    assert lm.perplexity(sentences[:4]) < 0.5 * lm.perplexity(shuffled)
    assert not lm.known(["zebra"]) and lm.known(words(TEXT[0]))


def test_coco_scores_without_java():
    refs = [[TEXT[0], "a red circle and a blue square"], [TEXT[1]]]
    perfect = coco_scores(refs, [TEXT[0], TEXT[1]])
    poor = coco_scores(refs, ["circle circle circle", "star star"])
    assert perfect["bleu4"] > 90 and perfect["cider"] > poor["cider"] and poor["bleu4"] < 1
    assert len(perfect["cider_per_image"]) == 2


def test_pos_pattern_merges_noun_phrases_and_relations():
    upos = [U[c] for c in ("DET", "ADJ", "NOUN", "AUX", "ADP", "DET", "NOUN", "CCONJ", "VERB", "ADP", "NUM", "NOUN",
                           "PUNCT")]
    assert pos_pattern(upos) == "NP AUX REL NP CCONJ REL NP"
    assert pos_pattern([U["NOUN"], U["NOUN"], U["NOUN"]]) == "NP"
    assert pos_pattern([U["DET"], U["ADJ"]]) == "DET ADJ"  # no noun: not a noun phrase
    listed = [U[c] for c in ("DET", "ADJ", "NOUN", "PUNCT", "DET", "NOUN", "DET", "NOUN", "CCONJ", "NUM", "NOUN")]
    assert pos_pattern(listed) == "NP NP NP CCONJ NP"  # a list of noun phrases stays a list
    assert prefix("A big, red circle.") == "a big red"
    assert top(["a", "b", "a", "a"], 1) == [("a", 75.0)]
