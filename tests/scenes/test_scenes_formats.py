"""The evaluation files parse like the real ones (COCO, Flickr30K retrieval, VALSE, VQA v2)."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from scenes.world import COLOURS, OPPOSITE, SHAPES, Group, Obj, group_relation

REAL_VALSE = {  # our piece -> the real file with the same kind of entries
    "existence": "existence",
    "plurals": "plurals",
    "counting": "counting-hard",
    "relations": "relations",
    "actant-swap": "actant-swap",
    "color": "foil-it",
}


def load(path: Path) -> object:
    return json.loads(path.read_text(encoding="utf-8"))


def scene_objects(root: Path) -> dict[int, list[dict[str, object]]]:
    table = load(root / "eval" / "scenes.json")
    return {int(k): v["objects"] for k, v in table.items()}  # type: ignore[union-attr,index]


@pytest.mark.parametrize("split", ["train", "eval"])
def test_coco_captions(scenes_root: Path, split: str) -> None:
    doc = load(scenes_root / split / "captions.json")
    assert isinstance(doc, dict) and {"images", "annotations"} <= set(doc)
    images = {im["id"]: im for im in doc["images"]}
    assert len(images) == len(doc["images"])
    for im in list(images.values())[:10]:
        with Image.open(scenes_root / split / "images" / im["file_name"]) as img:
            assert img.size == (im["width"], im["height"]) and img.mode == "RGB" and img.format == "JPEG"
    assert all((scenes_root / split / "images" / im["file_name"]).is_file() for im in images.values())
    ids = [a["id"] for a in doc["annotations"]]
    assert len(set(ids)) == len(ids)
    per_image = Counter(a["image_id"] for a in doc["annotations"])
    assert set(per_image) == set(images) and set(per_image.values()) == {5}
    assert all(isinstance(a["caption"], str) and a["caption"].strip() for a in doc["annotations"])


def test_retrieval(scenes_root: Path, shared_data_or_none: Path | None) -> None:
    entries = load(scenes_root / "eval" / "retrieval.json")
    assert isinstance(entries, list) and len(entries) == 60
    for e in entries:
        assert set(e) == {"image", "caption"}
        assert (scenes_root / "eval" / "images" / e["image"]).is_file()
        assert len(e["caption"]) == 5 and all(isinstance(c, str) for c in e["caption"])
    if shared_data_or_none is not None:
        real = load(shared_data_or_none / "flickr30k" / "flickr30k_test.json")
        assert set(real[0]) == set(entries[0])  # type: ignore[index]


def test_valse_pieces(scenes_root: Path, shared_data_or_none: Path | None) -> None:
    objects = scene_objects(scenes_root)
    for piece, real_name in REAL_VALSE.items():
        entries = load(scenes_root / "eval" / "valse" / f"{piece}.json")
        assert isinstance(entries, dict) and len(entries) >= 20, piece
        if shared_data_or_none is not None:
            real = load(shared_data_or_none / "valse" / f"{real_name}.json")
            real_keys = set().union(*(set(e) for e in real.values()))  # type: ignore[union-attr]
            for entry in entries.values():
                assert real_keys <= set(entry), (piece, real_keys - set(entry))
        for sample_id, e in entries.items():
            assert {"caption", "foil", "image_file", "dataset", "linguistic_phenomena", "mturk"} <= set(e)
            assert isinstance(e["foil"], str) and e["foil"] != e["caption"], sample_id
            assert e["mturk"]["caption"] >= 2 and set(e["mturk"]) == {"foil", "caption", "other"}
            assert (scenes_root / "eval" / "images" / e["image_file"]).is_file()
            objs = objects[e["dataset_idx"]]
            if piece == "color":
                assert e["classes_foil"] in COLOURS and e["classes_foil"] not in {o["colour"] for o in objs}
                assert e["classes_foil"] in e["foil"].split() and e["classes"] in e["caption"].split()
            if piece == "existence":
                assert e["classes_foil"] in SHAPES and e["classes_foil"] not in {o["shape"] for o in objs}
            if piece == "counting":
                assert e["classes"] != e["classes_foil"] and e["answer"] == e["classes"]


def test_caption_and_foil_differ_minimally(scenes_root: Path) -> None:
    for piece in ("color", "existence"):
        for e in load(scenes_root / "eval" / "valse" / f"{piece}.json").values():  # type: ignore[union-attr]
            a, b = e["caption"].split(), e["foil"].split()
            assert len(a) == len(b) and sum(x != y for x, y in zip(a, b)) == 1, e


def test_relation_foils_are_false(scenes_root: Path) -> None:
    objects = scene_objects(scenes_root)

    def group(objs: list[dict[str, object]], colour: str, shape: str) -> Group:
        members = tuple(Obj(o["shape"], o["colour"], o["size"], o["x"], o["y"], (0, 0, 0))  # type: ignore[arg-type]
                        for o in objs if o["colour"] == colour and o["shape"] == shape)
        return Group(shape, colour, members[0].size, members)

    for piece in ("relations", "actant-swap"):
        for e in load(scenes_root / "eval" / "valse" / f"{piece}.json").values():  # type: ignore[union-attr]
            objs = objects[e["dataset_idx"]]
            if piece == "relations":
                assert OPPOSITE[e["classes"]] == e["classes_foil"]
            else:
                a = group(objs, *e["classes"].split())
                b = group(objs, *e["classes_foil"].split())
                assert any(group_relation(a, b, r) and not group_relation(b, a, r) for r in OPPOSITE)


def test_vqa(scenes_root: Path) -> None:
    seen_images: dict[str, set[int]] = {}
    for subtype in ("train", "val"):
        questions = load(scenes_root / "eval" / "vqa" / f"{subtype}_questions.json")
        annotations = load(scenes_root / "eval" / "vqa" / f"{subtype}_annotations.json")
        assert questions["data_subtype"] == subtype and questions["task_type"] == "Open-Ended"  # type: ignore[index]
        qs, anns = questions["questions"], annotations["annotations"]  # type: ignore[index]
        assert len(qs) == len(anns) > 0
        qids = [q["question_id"] for q in qs]
        assert len(set(qids)) == len(qids) and qids == [a["question_id"] for a in anns]
        for q in qs:
            assert set(q) == {"image_id", "question", "question_id"} and q["question"].endswith("?")
            assert (scenes_root / "eval" / "images" / f"{q['image_id']:012d}.jpg").is_file()
        for a in anns:
            assert {"question_id", "image_id", "question_type", "answer_type", "multiple_choice_answer",
                    "answers"} <= set(a)
            assert a["answer_type"] in {"yes/no", "number", "other"}
            assert len(a["answers"]) == 10
            assert [x["answer_id"] for x in a["answers"]] == list(range(1, 11))
            assert all(set(x) == {"answer", "answer_confidence", "answer_id"} for x in a["answers"])
            assert Counter(x["answer"] for x in a["answers"]).most_common(1)[0][0] == a["multiple_choice_answer"]
        types = Counter(a["answer_type"] for a in anns)
        assert set(types) == {"yes/no", "number", "other"}
        yes_no = Counter(a["multiple_choice_answer"] for a in anns if a["answer_type"] == "yes/no")
        assert abs(yes_no["yes"] - yes_no["no"]) <= 0.2 * sum(yes_no.values())
        seen_images[subtype] = {q["image_id"] for q in qs}
    assert not seen_images["train"] & seen_images["val"]
    retrieval_images = {int(e["image"][:-4]) for e in load(scenes_root / "eval" / "retrieval.json")}  # type: ignore
    assert seen_images["val"] == retrieval_images


@pytest.fixture(scope="session")
def shared_data_or_none() -> Path | None:
    """../shared/data when present (format comparison with the real files), else None."""
    shared = Path(__file__).resolve().parents[3] / "shared" / "data"
    return shared if shared.is_dir() else None
