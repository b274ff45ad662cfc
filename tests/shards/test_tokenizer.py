"""The offline BERT uncased tokenizer: found without network, 30,522 entries, offsets into the original text."""
from __future__ import annotations

import pytest

from shards.errors import UserError
from shards.tokenizer import BERT_VOCAB_SIZE, check_same_vocab, load_tokenizer


def test_tokenizer_is_bert_uncased_with_original_offsets() -> None:
    tokenizer, info = load_tokenizer()
    assert info.vocab_size == BERT_VOCAB_SIZE and info.lowercase
    assert (info.cls_id, info.sep_id, info.pad_id, info.mask_id, info.unk_id) == (101, 102, 0, 103, 100)
    text = "Café Déjà vu"
    enc = tokenizer(text, return_offsets_mapping=True)
    pieces = tokenizer.convert_ids_to_tokens(enc["input_ids"])
    assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]" and pieces[1] == "cafe"
    assert [text[a:b] for a, b in enc["offset_mapping"][1:-1]][:1] == ["Café"]


def test_vocab_mismatch_is_refused() -> None:
    _, info = load_tokenizer()
    check_same_vocab({"tokenizer": {"vocab_sha256": info.vocab_sha256}}, info)
    with pytest.raises(UserError, match="vocabulary mismatch"):
        check_same_vocab({"tokenizer": {"vocab_sha256": "0" * 64}}, info)
