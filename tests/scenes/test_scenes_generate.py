"""Generation: determinism, atomic reuse, held-out disjointness, CLI errors."""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import pytest

from scenes import cli, ensure_scenes
from scenes.generate import MANIFEST
from scenes.world import Obj, Scene
from toolbox.errors import UserError

SMALL = {"train_images": 80, "eval_images": 60, "vqa_train_images": 20}
"""Must match `SMALL` in conftest.py (the session fixture's sizes)."""


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def load_scenes(path: Path) -> dict[str, Scene]:
    table = json.loads(path.read_text())
    return {k: Scene(tuple(Obj(o["shape"], o["colour"], o["size"], o["x"], o["y"], (0, 0, 0))
                           for o in v["objects"]), v["background"]) for k, v in table.items()}


def test_layout_and_return_value(scenes_root: Path) -> None:
    captions, images = ensure_scenes(scenes_root, 0, **SMALL)
    assert captions == scenes_root / "train" / "captions.json" and images == scenes_root / "train" / "images"
    for rel in ["README.md", MANIFEST, "eval/captions.json", "eval/retrieval.json", "eval/vqa/train_questions.json",
                "eval/vqa/train_annotations.json", "eval/vqa/val_questions.json", "eval/vqa/val_annotations.json"]:
        assert (scenes_root / rel).is_file(), rel
    pieces = {p.stem for p in (scenes_root / "eval" / "valse").glob("*.json")}
    assert pieces == {"existence", "plurals", "counting", "color", "relations", "actant-swap"}
    assert len(list(images.glob("*.jpg"))) == SMALL["train_images"]
    assert not list(scenes_root.parent.glob(".scenes.*")), "temporary folders left behind"


def test_same_seed_same_bytes(tmp_path: Path, scenes_root: Path) -> None:
    again = tmp_path / "again"
    ensure_scenes(again, 0, **SMALL)
    assert tree_digest(again) == tree_digest(scenes_root)
    other = tmp_path / "other"
    ensure_scenes(other, 1, **SMALL)
    assert tree_digest(other)["train/captions.json"] != tree_digest(scenes_root)["train/captions.json"]


def test_eval_prefix_independent_of_train_size(tmp_path: Path, scenes_root: Path) -> None:
    bigger = tmp_path / "bigger"
    ensure_scenes(bigger, 0, **{**SMALL, "train_images": 120})
    a, b = tree_digest(scenes_root), tree_digest(bigger)
    assert a["eval/retrieval.json"] == b["eval/retrieval.json"]
    assert all(a[k] == b[k] for k in a if k.startswith("train/images/"))


def test_train_and_eval_scenes_disjoint(scenes_root: Path) -> None:
    train = load_scenes(scenes_root / "train" / "scenes.json")
    held = load_scenes(scenes_root / "eval" / "scenes.json")
    evaluation = {k: s for k, s in held.items() if int(k) < 2_000_000}
    vqa_train = {k: s for k, s in held.items() if int(k) >= 2_000_000}
    eval_sigs = {s.signature() for s in evaluation.values()}
    assert len(eval_sigs) == len(evaluation), "evaluation scenes repeat"
    assert not eval_sigs & {s.signature() for s in train.values()}
    assert not eval_sigs & {s.signature() for s in vqa_train.values()}
    assert not set(train) & set(held)


def test_training_scenes_come_in_shape_minimal_pairs(scenes_root: Path) -> None:
    train = load_scenes(scenes_root / "train" / "scenes.json")
    annotations = json.loads((scenes_root / "train" / "captions.json").read_text())["annotations"]
    by_pair: dict[str, list[dict]] = {}
    for ann in annotations:
        if "pair" in ann:
            by_pair.setdefault(ann["pair"], []).append(ann)
    assert by_pair and all(len(v) == 2 for v in by_pair.values())
    twins = {(a["image_id"], b["image_id"]) for a, b in by_pair.values()}
    assert len(twins) >= 0.9 * SMALL["train_images"] / 2
    shape_words = {"circle", "square", "triangle", "star", "circles", "squares", "triangles", "stars"}
    only_shape_words = 0
    for first, second in twins:
        assert second == first + 1
        a, b = train[str(first)].objects, train[str(second)].objects
        changed = [(x, y) for x, y in zip(a, b) if x.shape != y.shape]
        assert changed and all(x.colour == y.colour and (x.x, x.y) == (y.x, y.y) for x, y in zip(a, b))
        assert len({(x.shape, x.colour) for x, _ in changed}) == 1, "exactly one group changes shape"
        assert len({y.shape for _, y in changed}) == 1
    for ann_a, ann_b in by_pair.values():
        words_a, words_b = ann_a["caption"].rstrip(".").split(), ann_b["caption"].rstrip(".").split()
        if len(words_a) == len(words_b):
            diff = {w for x, y in zip(words_a, words_b) if x != y for w in (x, y)}
            only_shape_words += bool(diff) and {w.strip(",.") for w in diff} <= shape_words
    assert only_shape_words >= 0.8 * len(by_pair), "twin captions should differ in the shape words alone"


def test_reuse_and_config_checks(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "s"
    tiny = {"train_images": 5, "eval_images": 4, "vqa_train_images": 2}
    ensure_scenes(root, 0, **tiny)
    stamp = (root / MANIFEST).stat().st_mtime_ns
    ensure_scenes(root)  # defaults: reuse whatever is complete
    ensure_scenes(root, 7)  # another seed alone: warn, reuse
    assert "seed" in caplog.text
    assert (root / MANIFEST).stat().st_mtime_ns == stamp
    with pytest.raises(UserError, match="--overwrite"):
        ensure_scenes(root, 7, strict_seed=True)
    with pytest.raises(UserError, match="train_images"):
        ensure_scenes(root, 0, train_images=6)
    ensure_scenes(root, 0, overwrite=True, **{**tiny, "train_images": 6})
    assert json.loads((root / MANIFEST).read_text())["config"]["train_images"] == 6


def test_refuses_foreign_folder_and_cleans_stale_temporaries(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not a complete scenes folder"):
        ensure_scenes(foreign, train_images=3, eval_images=3, vqa_train_images=0)
    assert (foreign / "notes.txt").read_text() == "mine"
    stale = tmp_path / ".s.tmp-999999999"  # a pid that cannot be running
    (stale / "train").mkdir(parents=True)
    ensure_scenes(tmp_path / "s", train_images=3, eval_images=3, vqa_train_images=0)
    assert not stale.exists()
    assert not list(tmp_path.glob(".s.*"))


def test_interrupted_generation_leaves_no_complete_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scenes import generate

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(generate.foils, "build_pieces", boom)
    with pytest.raises(RuntimeError):
        ensure_scenes(tmp_path / "s", train_images=3, eval_images=3, vqa_train_images=0)
    assert not (tmp_path / "s").exists()
    assert not list(tmp_path.iterdir())


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return cli.run(parser.parse_args(argv))


def test_cli(tmp_path: Path) -> None:
    assert cli.HELP
    out = tmp_path / "cli"
    assert run_cli(["--out", str(out), "--train-images", "4", "--eval-images", "3", "--vqa-train-images", "1"]) == 0
    assert (out / MANIFEST).is_file()
    assert run_cli(["--out", str(out), "--train-images", "4", "--eval-images", "3", "--vqa-train-images", "1"]) == 0
    with pytest.raises(UserError):
        run_cli(["--out", str(out), "--seed", "3"])
    for bad in (["--train-images", "0"], ["--eval-images", "-1"], ["--vqa-train-images", "-2"]):
        with pytest.raises(UserError):
            run_cli(["--out", str(tmp_path / "bad"), *bad])
    assert not (tmp_path / "bad").exists()
