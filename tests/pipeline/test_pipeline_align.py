"""Alignment properties (hypothesis): random and real captions, specials, [UNK], accents, truncation."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import spacy_alignments
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.normalize import normalize_caption
from pipeline.tagger import Tagger
from pipeline_testdata import synthetic_captions
from shards.upos import NOT_A_WORD, UPOS_ID

ALPHABET = st.sampled_from(list(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'\"-()&/%$#@"
    "éèêëáàâäíóöúüñçßøåÉÖÜ" "東京大阪猫犬" "🚲🐶😀👍🏽" "שלוםمرحبا" "\u200b\u00a0\t\n" "ﬁ™½"
))


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return Tagger(max_len=64)


def check_tagged(tagger: Tagger, caption: str, max_len: int = 64) -> None:
    """Every invariant of one caption's alignment."""
    text, cut = normalize_caption(caption)
    if not text:
        return
    [tc] = tagger.tag([text], [cut])
    if tc is None:  # only characters the tokenizer drops
        assert tagger.tokenizer(text, add_special_tokens=False)["input_ids"] == []
        return
    check_invariants(tagger, tc, max_len)


def check_invariants(tagger: Tagger, tc, max_len: int = 64) -> None:
    """The schema's invariants and the alignment rule for one TaggedCaption."""
    tc.validate()
    assert len(tc.ids) == len(tc.pos) == len(tc.word) <= max_len
    assert tc.ids[0] == tagger.tokenizer_info.cls_id and tc.ids[-1] == tagger.tokenizer_info.sep_id
    assert tc.pos[0] == tc.pos[-1] == NOT_A_WORD and tc.word[0] == tc.word[-1] == -1
    assert np.all(tc.word[1:-1] >= 0) and np.all(np.diff(tc.word[1:-1]) >= 0)
    assert [tc.caption[a:b] for a, b in tc.spans] == tc.words
    assert tc.pos[1:-1].tolist() == [tc.upos[w] for w in tc.word[1:-1]]
    enc = tagger.tokenizer(tc.caption, add_special_tokens=False, return_offsets_mapping=True)
    n = len(tc.ids) - 2
    assert enc["input_ids"][:n] == tc.ids[1:-1].tolist()  # the stored text re-tokenises to the stored ids
    if not tc.truncated:
        assert len(enc["input_ids"]) == n
    for (start, _), w in zip(enc["offset_mapping"][:n], tc.word[1:-1]):
        a, b = tc.spans[w]
        assert a <= start < b, (tc.caption, start, tc.words[w])  # the word holding the piece's first char


@settings(max_examples=int(os.environ.get("POSMASK_HYPOTHESIS_EXAMPLES", 300)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=ALPHABET, max_size=300))
def test_random_captions(tagger: Tagger, caption: str) -> None:
    check_tagged(tagger, caption)


# Printable ASCII only: BERT's normaliser then only lower-cases (no accents to strip, no [UNK], nothing
# dropped), so the wordpieces spell exactly the lower-cased words, which is what the oracle needs.
ORACLE_ALPHABET = st.sampled_from(list(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'\"-()&/%$#@*+=<>[]_~`^|{}\\"
))


@settings(max_examples=int(os.environ.get("POSMASK_HYPOTHESIS_EXAMPLES", 300)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=ORACLE_ALPHABET, max_size=60))
def test_word_of_each_piece_agrees_with_spacy_alignments(tagger: Tagger, caption: str) -> None:
    """An independent oracle: spacy-alignments aligns two tokenisations of one text by their characters
    (a diff, knowing nothing of offsets). It is exact when both spell the same characters: hence ASCII
    text (see ORACLE_ALPHABET), and at most 60 characters, so at most 62 pieces: nothing is truncated."""
    text, cut = normalize_caption(caption)
    if not text:
        return
    [tc] = tagger.tag([text], [cut])
    pieces = [p.removeprefix("##") for p in tagger.tokenizer.convert_ids_to_tokens(tc.ids[1:-1].tolist())]
    words = [w.lower() for w in tc.words]
    assert not tc.truncated and "".join(pieces) == "".join(words)  # where the oracle is well-defined
    _, piece_words = spacy_alignments.get_alignments(words, pieces)
    # a piece may overlap two spaCy tokens ("don" of "do" + "n't"); it belongs to the one holding its first char
    assert tc.word[1:-1].tolist() == [min(ws) for ws in piece_words]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["a", "dog", "unbelievably", "東京", "José", "🚲", "the", "extraordinarily"]),
                min_size=1, max_size=80), st.integers(min_value=3, max_value=40))
def test_truncation_keeps_whole_words(tagger: Tagger, caption_words: list[str], max_len: int) -> None:
    saved, tagger.max_len = tagger.max_len, max_len
    try:
        check_tagged(tagger, " ".join(caption_words), max_len)
    finally:
        tagger.max_len = saved


def test_synthetic_captions(tagger: Tagger) -> None:
    for caption in synthetic_captions(300, seed=3):
        check_tagged(tagger, caption)


def test_padding_left_on_the_shared_tokenizer_does_not_reach_the_tagger(tagger: Tagger) -> None:
    """Evaluation pads batches with the same (cached) tokenizer; the Rust side keeps that setting."""
    tagger.tokenizer(["a", "a man rides a horse"], padding="longest")
    check_tagged(tagger, "A man rides a brown horse past the old café.")


def test_unk_and_accents_keep_their_word(tagger: Tagger) -> None:
    [tc] = tagger.tag(["José rides a café bike 🚲 in 東京."])
    pieces = tagger.tokenizer.convert_ids_to_tokens(tc.ids.tolist())
    by_piece = {p: tc.words[w] for p, w in zip(pieces, tc.word.tolist()) if w >= 0}
    assert by_piece["jose"] == "José" and by_piece["cafe"] == "café"
    assert by_piece["[UNK]"] == "🚲" and by_piece["東"] == "東京" and by_piece["京"] == "東京"
    assert tc.upos[tc.words.index("José")] == UPOS_ID["PROPN"]


def test_wordpieces_of_one_word_share_its_upos(tagger: Tagger) -> None:
    [tc] = tagger.tag(["An unbelievably colourful skateboarder."])
    pieces = tagger.tokenizer.convert_ids_to_tokens(tc.ids.tolist())
    assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]" and len(pieces) > len(tc.words) + 2
    assert len(set(tc.pos[tc.word == 1].tolist())) == 1 and tc.pos[tc.word == 1][0] == UPOS_ID["ADV"]


def test_long_caption_is_truncated_consistently(tagger: Tagger) -> None:
    text, cut = normalize_caption("A very long caption about a dog " * 400)
    [tc] = tagger.tag([text], [cut])
    assert tc.truncated and len(tc.ids) <= 64 and tc.caption == " ".join(tc.words)
    assert tc.word.max() == len(tc.words) - 1


def test_real_coco_captions(tagger: Tagger, shared_data) -> None:
    data = json.loads((shared_data / "coco" / "captions_val2017.json").read_text(encoding="utf-8"))
    captions = [a["caption"] for a in data["annotations"][::10]]  # 2,500 real captions
    texts = [normalize_caption(c)[0] for c in captions]
    for tc in tagger.tag(texts):
        assert tc is not None
        check_invariants(tagger, tc)
