"""The fast UPOS path: the attribute_ruler's rules compiled into a lookup give the pipe's UPOS on every token
(random rule sets against spaCy's own ruler; the real model on captions that exercise the word-dependent rules;
all of COCO val2017 when ../shared/data is there), and rules it cannot replace exactly fall back to the pipe."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.tokens import Doc

from pipeline.normalize import clean_caption
from pipeline.tagger import Tagger, fast_path
from pipeline.upos_rules import NotCompilable, compile_upos_rules
from pipeline_testdata import synthetic_captions
from shards.upos import UPOS_ID, UPOS_NAMES

TAGS = ["NN", "VB", "VBZ", "IN", "DT", "WDT", "_SP"]
WORDS = ["that", "is", "do", "thing", "the", "a", "x", " "]
POS = ["NOUN", "PRON", "AUX", "VERB", "SCONJ", "ADP", "DET", "SPACE", "X"]
CAPTIONS = Path(__file__).with_name("upos_captions.txt")


def value_test(values: list[str]) -> st.SearchStrategy:
    """A Matcher attribute test: a value, or IN / NOT_IN lists (the empty string included)."""
    some = st.lists(st.sampled_from([*values, ""]), min_size=1, max_size=3)
    return st.one_of(st.sampled_from(values), st.fixed_dictionaries({"IN": some}),
                     st.fixed_dictionaries({"NOT_IN": some}))


TOKEN = st.fixed_dictionaries({}, optional={"TAG": value_test(TAGS), "LOWER": value_test(WORDS),
                                            "IS_SPACE": st.booleans(), "DEP": value_test(["nsubj", "aux"])})
RULE = st.fixed_dictionaries({"patterns": st.lists(st.lists(TOKEN, min_size=1, max_size=1), min_size=1, max_size=2),
                              "attrs": st.one_of(st.fixed_dictionaries({"POS": st.sampled_from(POS)}),
                                                 st.just({"LEMMA": "x"}))})


def blank_pipeline(rules: list[dict]) -> spacy.language.Language:
    """tagger (labels only: tags are given) + attribute_ruler with `rules`."""
    nlp = spacy.blank("en")
    tagger = nlp.add_pipe("tagger")
    for tag in TAGS:
        tagger.add_label(tag)
    nlp.add_pipe("attribute_ruler").add_patterns(rules)
    return nlp


def token_arrays(docs: list[Doc]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from spacy.attrs import IS_SPACE, LOWER, TAG

    flat = np.concatenate([doc.to_array([TAG, LOWER, IS_SPACE]) for doc in docs])
    return flat[:, 0], flat[:, 1], flat[:, 2]


@pytest.mark.filterwarnings("ignore:.W036")  # a ruler whose rules set nothing but lemmas
@settings(max_examples=200, deadline=None)
@given(st.lists(RULE, max_size=8),
       st.lists(st.tuples(st.sampled_from(WORDS + ["That", "IS", "other"]), st.sampled_from(TAGS)), min_size=1,
                max_size=12))
def test_lookup_equals_spacys_ruler(rules: list[dict], tokens: list[tuple[str, str]]) -> None:
    nlp = blank_pipeline(rules)
    lookup = compile_upos_rules(nlp)
    words, tags = zip(*tokens)
    doc = nlp.get_pipe("attribute_ruler")(Doc(nlp.vocab, words=list(words), tags=list(tags),
                                              spaces=[False] * len(words)))
    expected = [UPOS_ID.get(t.pos_, UPOS_ID["X"]) for t in doc]
    assert lookup(*token_arrays([doc])).tolist() == expected


@pytest.mark.parametrize(("rule", "reason"), [
    ({"patterns": [[{"LOWER": "ice"}, {"LOWER": "cream"}]], "attrs": {"POS": "NOUN"}}, "spans 2 tokens"),
    ({"patterns": [[{"TAG": "NN", "OP": "?"}]], "attrs": {"POS": "NOUN"}}, "tests OP"),
    ({"patterns": [[{"ORTH": "Ice"}]], "attrs": {"POS": "NOUN"}}, "tests ORTH"),
    ({"patterns": [[{"LOWER": {"REGEX": "^ice"}}]], "attrs": {"POS": "NOUN"}}, "predicate REGEX"),
])
def test_rules_it_cannot_replace_are_refused(rule: dict, reason: str) -> None:
    with pytest.raises(NotCompilable, match=reason):
        compile_upos_rules(blank_pipeline([rule]))


def test_rules_that_never_fire_or_set_no_pos_are_skipped() -> None:
    never = {"patterns": [[{"DEP": "expl"}, {"LOWER": "is"}]], "attrs": {"POS": "VERB"}, "index": 1}
    lemma = {"patterns": [[{"LOWER": "ice"}, {"LOWER": "cream"}]], "attrs": {"LEMMA": "ice cream"}}
    assert compile_upos_rules(blank_pipeline([never, lemma])).rules == 0


def test_other_pipes_fall_back_to_the_pipe_with_one_log_line(caplog) -> None:
    nlp = blank_pipeline([{"patterns": [[{"TAG": "NN"}]], "attrs": {"POS": "NOUN"}}])
    nlp.add_pipe("morphologizer", before="attribute_ruler")  # sets POS itself
    with caplog.at_level(logging.INFO, logger="pipeline.tagger"):
        lookup, path = fast_path(nlp)
    assert lookup is None and path.startswith("pipe: pipes ['tagger', 'morphologizer', 'attribute_ruler']")
    assert len(caplog.records) == 1 and "attribute_ruler" in nlp.pipe_names  # the ruler still runs
    nlp.remove_pipe("morphologizer")
    nlp.add_pipe("attribute_ruler", name="second")
    with pytest.raises(NotCompilable, match="only tok2vec"):
        compile_upos_rules(nlp)


@pytest.fixture(scope="module")
def taggers() -> tuple[Tagger, Tagger]:
    fast, pipe = Tagger(), Tagger(fast=False)
    assert fast.info["upos_path"] == "lookup" and pipe.info["upos_path"].startswith("pipe")
    assert "attribute_ruler" not in fast.nlp.pipe_names and fast.info["pipes"] == pipe.info["pipes"]
    return fast, pipe


def assert_same_upos(taggers: tuple[Tagger, Tagger], raw: list[str]) -> int:
    """Every token's UPOS on both paths is the same; returns the number of tokens."""
    texts = [clean_caption(c)[0] for c in raw if c.strip()]
    fast, pipe = (t.word_arrays(texts) for t in taggers)
    for (s1, l1, u1), (s2, l2, u2) in zip(fast, pipe, strict=True):
        assert np.array_equal(s1, s2) and np.array_equal(l1, l2)
        assert np.array_equal(u1, u2), [(UPOS_NAMES[a], UPOS_NAMES[b]) for a, b in zip(u1, u2) if a != b]
    return sum(len(u) for _, _, u in fast)


def test_fast_path_equals_the_pipe_on_captions_that_need_the_words(taggers, tmp_path: Path) -> None:
    scenes = pytest.importorskip("scenes")
    captions_json, _ = scenes.ensure_scenes(tmp_path / "scenes", seed=0, train_images=60, eval_images=4,
                                            vqa_train_images=4)
    raw = [a["caption"] for a in json.loads(Path(captions_json).read_text(encoding="utf-8"))["annotations"]]
    committed = CAPTIONS.read_text(encoding="utf-8").splitlines()
    assert assert_same_upos(taggers, committed + synthetic_captions(300, seed=5) + raw) > 5000
    # the committed captions need the lower-case forms: with every word unknown to the rules the UPOS differ
    lookup = taggers[0].lookup
    docs = list(taggers[0].nlp.pipe([clean_caption(c)[0] for c in committed]))
    tags, lowers, spaces = token_arrays(docs)
    by_tag_only = lookup(tags, np.zeros_like(lowers), spaces)
    changed = {UPOS_NAMES[u] for u, t in zip(lookup(tags, lowers, spaces), by_tag_only) if u != t}
    assert {"AUX", "SCONJ", "PRON"} <= changed


@pytest.mark.slow
def test_fast_path_equals_the_pipe_on_all_of_coco_val2017(taggers, shared_data: Path) -> None:
    data = json.loads((shared_data / "coco" / "captions_val2017.json").read_text(encoding="utf-8"))
    assert assert_same_upos(taggers, [a["caption"] for a in data["annotations"]]) > 250_000
