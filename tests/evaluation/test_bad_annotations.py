"""Malformed annotation files give a one-line UserError, never a traceback from deep inside a loader."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolbox.errors import UserError


def _write(path: Path, obj: object) -> Path:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def test_valse_empty_foil_list(tmp_path):
    from evaluation.valse.evaluate import load_piece

    path = _write(tmp_path / "existence.json", {"1": {"caption": "a cat", "foil": [], "image_file": "x.jpg",
                                                      "mturk": {"caption": 3}}})
    with pytest.raises(UserError, match="lacks caption/foil/image_file"):
        load_piece(path)


def test_valse_non_numeric_caption_votes(tmp_path):
    from evaluation.valse.evaluate import load_piece

    path = _write(tmp_path / "existence.json", {"1": {"caption": "a cat", "foil": "a dog", "image_file": "x.jpg",
                                                      "mturk": {"caption": "yes"}}})
    with pytest.raises(UserError, match="non-numeric mturk.caption 'yes'"):
        load_piece(path)
    assert len(load_piece(path, valid_only=False).entries) == 1


def test_retrieval_image_not_a_string(tmp_path):
    from evaluation.retrieval.evaluate import load_retrieval_set

    path = _write(tmp_path / "r.json", [{"image": ["a.jpg"], "caption": ["a cat"]}])
    with pytest.raises(UserError, match="expected a list"):
        load_retrieval_set(path, tmp_path)


@pytest.mark.parametrize("questions,annotations,message", [
    ([{"image_id": 1, "question": "what?"}], None, "question_id"),
    ([{"image_id": 1, "question": "what?", "question_id": 1}], [{"question_id": 1}], "answers"),
    ([{"image_id": 1, "question": "what?", "question_id": 1}], [{"question_id": "x", "answers": []}], "question_id"),
])
def test_vqa_malformed_files(tmp_path, questions, annotations, message):
    from evaluation.vqa.data import load_split

    q = _write(tmp_path / "q.json", {"questions": questions})
    a = _write(tmp_path / "a.json", {"annotations": annotations}) if annotations is not None else None
    with pytest.raises(UserError, match=message):
        load_split("train", q, a, tmp_path)


@pytest.mark.parametrize("coco", [
    {"images": [{"file_name": "a.jpg"}], "annotations": []},
    {"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 1, "caption": 7}]},
])
def test_probe_malformed_coco(tmp_path, coco):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from evaluation.probe.evaluate import load_probe_items

    pq.write_table(pa.Table.from_pylist([{"key": "coco-1-1", "words": ["a", "cat"], "upos": [5, 7]}]),
                   tmp_path / "captions.parquet")
    with pytest.raises(UserError, match="malformed COCO"):
        load_probe_items(tmp_path, _write(tmp_path / "captions.json", coco), tmp_path)


def test_probe_unreadable_parquet(tmp_path):
    from evaluation.probe.evaluate import load_probe_items

    (tmp_path / "captions.parquet").write_bytes(b"not parquet")
    with pytest.raises(UserError, match="unreadable parquet"):
        load_probe_items(tmp_path, tmp_path / "captions.json", tmp_path)
