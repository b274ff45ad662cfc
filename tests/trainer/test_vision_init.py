"""`posmask vision-init`: trains on the scenes' training split, saves weights pretrain can load, reuses, refuses."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from toolbox.errors import UserError
from trainer.config import preset_config
from trainer.model.posmask import PosMaskModel
from trainer.vision_init import RECORD, WEIGHTS, VisionInitConfig, ensure_vision_init, scene_labels


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from scenes import ensure_scenes

    root = tmp_path_factory.mktemp("vision") / "scenes"
    ensure_scenes(root, 0, train_images=60, eval_images=4, vqa_train_images=0)
    return root


def test_labels_are_the_object_kinds_of_each_training_scene(scenes: Path) -> None:
    images, labels, names = scene_labels(scenes)
    assert len(images) == 60 and labels.shape == (60, len(names))
    assert all(" " in n for n in names) and labels.sum(1).min() >= 1  # every scene has an object


@pytest.mark.slow
def test_trains_saves_loads_and_reuses(scenes: Path, tmp_path: Path) -> None:
    config = VisionInitConfig(scenes=str(scenes), steps=40, batch_size=16, held_out=10)
    record = ensure_vision_init(config, tmp_path / "init")
    assert record["final_loss"] < 0.4  # from ~0.69: the multi-label head learned (at least the label priors)
    assert 0 <= record["held_out"]["exact_match"] <= record["held_out"]["label_accuracy"] <= 1
    weights = tmp_path / "init" / WEIGHTS
    model = PosMaskModel(preset_config("tiny").model, vision_weights=str(weights))
    from safetensors.torch import load_file

    saved = load_file(str(weights))
    assert all(torch.equal(v, saved[k]) for k, v in model.vision.state_dict().items())
    stamp = (tmp_path / "init" / RECORD).stat().st_mtime_ns
    assert ensure_vision_init(config, tmp_path / "init") == record
    assert (tmp_path / "init" / RECORD).stat().st_mtime_ns == stamp
    with pytest.raises(UserError, match="other settings"):
        ensure_vision_init(VisionInitConfig(scenes=str(scenes), steps=41, batch_size=16, held_out=10),
                           tmp_path / "init")


def test_refuses_a_folder_that_is_not_scenes(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a complete scenes folder"):
        ensure_vision_init(VisionInitConfig(scenes=str(tmp_path)), tmp_path / "out")


def test_reuse_copies_a_matching_init_and_trains_when_it_was_made_otherwise(scenes: Path, tmp_path: Path) -> None:
    from dataclasses import asdict

    from safetensors.torch import save_file

    from toolbox.atomic import atomic_write_json
    from trainer.vision_init import scenes_identity

    config = VisionInitConfig(scenes=str(scenes), steps=2, batch_size=4, held_out=10)
    committed = tmp_path / "committed"
    committed.mkdir()
    save_file({"w": torch.arange(6.0)}, str(committed / WEIGHTS))
    record = {"config": asdict(config), "scenes": scenes_identity(scenes), "model": asdict(preset_config("tiny").model),
              "held_out": {"label_accuracy": 0.5, "exact_match": 0.1}}
    atomic_write_json(committed / RECORD, record)
    copied = ensure_vision_init(config, tmp_path / "out", reuse=committed)
    assert (tmp_path / "out" / WEIGHTS).read_bytes() == (committed / WEIGHTS).read_bytes()
    assert copied["copied_from"] == str(committed) and not (tmp_path / "out" / "checkpoint.pt").exists()
    assert ensure_vision_init(config, tmp_path / "out", reuse=committed) == copied  # now complete: reused

    atomic_write_json(committed / RECORD, {**record, "model": {**record["model"], "hidden_size": 64}})
    trained = ensure_vision_init(config, tmp_path / "other", reuse=committed)
    assert "copied_from" not in trained and (tmp_path / "other" / "checkpoint.pt").is_file()


def test_the_committed_init_was_made_with_todays_defaults() -> None:
    """scenes/vision-tiny is copied by `make scenes-data` only while it matches; this says when it went stale."""
    import json
    from dataclasses import asdict

    from scenes.generate import GENERATOR_VERSION, ScenesConfig

    committed = Path(__file__).resolve().parents[2] / "scenes" / "vision-tiny"
    record = json.loads((committed / RECORD).read_text(encoding="utf-8"))
    assert record["config"] == asdict(VisionInitConfig(scenes="data/scenes"))
    assert record["scenes"] == {"version": GENERATOR_VERSION, "config": asdict(ScenesConfig())}
    assert record["model"] == asdict(preset_config("tiny").model)
    from safetensors.torch import load_file

    model = PosMaskModel(preset_config("tiny").model, vision_weights=str(committed / WEIGHTS))
    saved = load_file(str(committed / WEIGHTS))
    assert all(torch.equal(v, saved[k]) for k, v in model.vision.state_dict().items())
