"""The BERT uncased tokenizer from the shipped vocabulary: 30,522 entries, checked sha256, original offsets."""
from __future__ import annotations

from pathlib import Path

import pytest

from toolbox.errors import UserError
from shards.tokenizer import (BERT_VOCAB_SIZE, VOCAB_PATH, VOCAB_SHA256, check_same_vocab, load_tokenizer,
                              read_vocab)

# vocab_sha256 in manifests written before the vocabulary shipped in the repository (then found in an
# installed package): those manifests must stay readable.
EARLIER_MANIFEST_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"


def test_tokenizer_is_bert_uncased_with_original_offsets() -> None:
    tokenizer, info = load_tokenizer()
    assert info.vocab_size == BERT_VOCAB_SIZE and info.lowercase
    assert (info.cls_id, info.sep_id, info.pad_id, info.mask_id, info.unk_id) == (101, 102, 0, 103, 100)
    text = "Café Déjà vu"
    enc = tokenizer(text, return_offsets_mapping=True)
    pieces = tokenizer.convert_ids_to_tokens(enc["input_ids"])
    assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]" and pieces[1] == "cafe"
    assert [text[a:b] for a, b in enc["offset_mapping"][1:-1]][:1] == ["Café"]


def test_manifest_entry_matches_earlier_manifests() -> None:
    _, info = load_tokenizer()
    entry = info.to_manifest()
    assert entry["name"] == "bert-base-uncased" and "vocab_path" not in entry
    assert entry["vocab_sha256"] == VOCAB_SHA256 == EARLIER_MANIFEST_SHA256
    check_same_vocab({"tokenizer": {"vocab_sha256": EARLIER_MANIFEST_SHA256}}, info)


def test_shipped_vocabulary_is_package_data() -> None:
    assert VOCAB_PATH.parent.name == "vocab" and VOCAB_PATH.parent.parent.name == "shards"
    entries = read_vocab()
    assert len(entries) == len(set(entries)) == BERT_VOCAB_SIZE
    assert entries[:1] == ["[PAD]"] and entries[100:104] == ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def test_altered_or_missing_vocabulary_is_refused(tmp_path: Path) -> None:
    altered = tmp_path / "vocab.txt"
    altered.write_bytes(VOCAB_PATH.read_bytes().replace(b"\ncat\n", b"\nkat\n", 1))
    with pytest.raises(UserError, match="was altered"):
        read_vocab(altered)
    with pytest.raises(UserError, match="unreadable"):
        read_vocab(tmp_path / "missing.txt")


def test_vocab_mismatch_is_refused() -> None:
    _, info = load_tokenizer()
    with pytest.raises(UserError, match="vocabulary mismatch"):
        check_same_vocab({"tokenizer": {"vocab_sha256": "0" * 64}}, info)
