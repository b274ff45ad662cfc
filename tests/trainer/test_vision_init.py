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
