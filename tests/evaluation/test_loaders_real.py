"""Loaders against the real annotation files in ../shared/data (skipped when absent)."""
from __future__ import annotations

import json

import pytest

from evaluation.retrieval.evaluate import load_retrieval_set
from evaluation.valse.evaluate import PIECE_SOURCE, load_valse
from evaluation.vqa.data import answer_vocab

pytestmark = pytest.mark.shared_data


def test_all_valse_pieces_load_and_valid_subset(shared_data):
    pieces = load_valse(shared_data / "valse")
    assert sorted(p.name for p in pieces) == sorted(PIECE_SOURCE)
    assert sum(p.total for p in pieces) == 8782
    assert sum(len(p.entries) for p in pieces) == 7702
    for p in pieces:
        assert p.source == PIECE_SOURCE[p.name]
        assert all(e.caption and e.foil and e.image_file for e in p.entries)
    all_entries = load_valse(shared_data / "valse", valid_only=False)
    assert sum(len(p.entries) for p in all_entries) == 8782


def test_valse_piece_sources_match_readme(shared_data):
    pieces = {p.name: p for p in load_valse(shared_data / "valse")}
    assert pieces["existence"].entries[0].image_file.startswith("v7w_")
    assert pieces["foil-it"].entries[0].image_file.startswith("COCO_val2014_")
    assert {e.source for e in pieces["relations"].entries} == {"coco2017"}


def test_flickr30k_test_counts(shared_data):
    data = load_retrieval_set(shared_data / "flickr30k" / "flickr30k_test.json", "/nonexistent", check_images=False)
    assert len(data.images) == 1000 and len(data.texts) == 5000
    assert all(len(t) == 5 for t in data.img2txt)
    assert data.txt2img[data.img2txt[10][3]] == 10


def test_flickr30k_missing_images_are_listed_not_fatal(shared_data, tmp_path):
    from PIL import Image

    entries = json.loads((shared_data / "flickr30k" / "flickr30k_test.json").read_text())[:3]
    (tmp_path / "flickr30k-images").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / entries[0]["image"])
    data = load_retrieval_set(shared_data / "flickr30k" / "flickr30k_test.json", tmp_path)
    assert len(data.images) == 1 and len(data.texts) == 5 and len(data.missing) == 999


def test_standard_answer_list(shared_data):
    vocab = answer_vocab(shared_data / "vqa" / "answers_3129.json", None)
    assert len(vocab) == 3129 and vocab[0] == "" and len(set(vocab)) == 3129
