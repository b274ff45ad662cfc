"""Shared test fixtures: paths, the skip rule for ../shared/data, and a tiny scenes-style eval set."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
COLORS = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 180, 60), "yellow": (230, 210, 40)}
SHAPES = ("square", "circle")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip the test cleanly when this clone has none."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent")
    return SHARED_DATA


def _draw(color: str, shape: str, path: Path) -> None:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (48, 48), (245, 245, 245))
    draw = ImageDraw.Draw(image)
    box = (10, 10, 38, 38)
    (draw.rectangle if shape == "square" else draw.ellipse)(box, fill=COLORS[color])
    image.save(path)


@pytest.fixture(scope="session")
def tiny_eval(tmp_path_factory) -> Path:
    """A scenes-style eval folder: images/, retrieval.json, valse/, vqa/, captions.json, tags/captions.parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from shards.upos import UPOS_ID

    root = tmp_path_factory.mktemp("scenes") / "eval"
    (root / "images").mkdir(parents=True)
    scenes = [(i, c, s) for i, (c, s) in enumerate((c, s) for c in COLORS for s in SHAPES)]
    for i, c, s in scenes:
        _draw(c, s, root / "images" / f"{i:06d}.png")
    other = {c: next(o for o in COLORS if o != c) for c in COLORS}
    (root / "retrieval.json").write_text(json.dumps([
        {"image": f"{i:06d}.png", "caption": [f"a {c} {s}", f"one {c} {s} on a white background"]}
        for i, c, s in scenes]))
    (root / "valse").mkdir()
    color = {f"color_{i}": {"dataset": "scenes", "image_file": f"{i:06d}.png", "caption": f"a {c} {s}",
                            "foil": f"a {other[c]} {s}", "linguistic_phenomena": "color",
                            "mturk": {"foil": 0, "caption": 3, "other": 0}} for i, c, s in scenes}
    color["color_missing"] = dict(color["color_0"], image_file="nope.png")
    color["color_invalid"] = dict(color["color_1"], mturk={"foil": 2, "caption": 1, "other": 0})
    (root / "valse" / "color.json").write_text(json.dumps(color))
    existence = {f"ex_{i}": {"dataset": "scenes", "image_file": f"{i:06d}.png", "caption": f"there is a {s}.",
                             "foil": "there are no shapes.", "mturk": {"foil": 0, "caption": 3, "other": 0}}
                 for i, c, s in scenes}
    (root / "valse" / "existence.json").write_text(json.dumps(existence))
    (root / "vqa").mkdir()
    for split, part in (("train", scenes), ("val", scenes[:4])):
        questions, annotations = [], []
        for i, c, s in part:
            for j, (q, a, t) in enumerate(((f"what color is the {s}?", c, "other"),
                                           (f"is there a {s}?", "yes", "yes/no"),
                                           ("how many shapes are there?", "one", "number"))):
                qid = i * 10 + j
                questions.append({"image_id": i, "question": q, "question_id": qid})
                annotations.append({"image_id": i, "question_id": qid, "answer_type": t, "question_type": "what",
                                    "multiple_choice_answer": a,
                                    "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": k + 1}
                                                for k in range(10)]})
        (root / "vqa" / f"{split}_questions.json").write_text(json.dumps({"questions": questions}))
        (root / "vqa" / f"{split}_annotations.json").write_text(json.dumps({"annotations": annotations}))
    images = [{"id": i, "file_name": f"{i:06d}.png", "width": 48, "height": 48} for i, _, _ in scenes]
    anns = [{"id": 100 + i, "image_id": i, "caption": f"A {c} {s} sits on a white table."} for i, c, s in scenes]
    (root / "captions.json").write_text(json.dumps({"images": images, "annotations": anns}))
    u = UPOS_ID
    rows = [{"key": f"scenes-{i:012d}-{100 + i}", "source": "scenes", "image_id": str(i),
             "caption": f"a {c} {s} sits on a white table.",
             "words": ["a", c, s, "sits", "on", "a", "white", "table", "."],
             "upos": [u["DET"], u["ADJ"], u["NOUN"], u["VERB"], u["ADP"], u["DET"], u["ADJ"], u["NOUN"], u["PUNCT"]]}
            for i, c, s in scenes]
    (root / "tags").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), root / "tags" / "captions.parquet")
    return root


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow tests first (a stable sort): under `make test`'s xdist workers the modules holding them are handed out
    before the rest, and the short modules fill in at the end (docs/demo.md, "The tests")."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
