"""What the captioner commands (probe-scst, vizer) read from their command lines: the probed runs and the
evaluation images with their references."""
from __future__ import annotations

from pathlib import Path

from evaluation.core.runs import RunInfo, load_run
from toolbox.errors import UserError
from trainer.run_dir import RunDir


def probed_runs(paths: list[str]) -> list[RunInfo]:
    """Each path (once) as a run holding a model, with its run record and report label."""
    runs = []
    for p in dict.fromkeys(paths):
        folder = RunDir(p)
        if not folder.holds_model():
            raise UserError(f"--run {p}: not a finished `posmask pretrain` run (no {folder.model.name} + "
                            f"{folder.model_config.name})")
        runs.append(load_run(folder.path))
    return runs


def eval_inputs(data: str, images: str | None) -> tuple[Path, Path]:
    """The evaluation captions file (COCO format) and its image root: `data` a folder with captions.json and
    images/, or a captions file with `images`."""
    folder = Path(data)
    if folder.is_dir():
        return folder / "captions.json", Path(images) if images else folder / "images"
    if not images:
        raise UserError(f"--data {folder}: a captions file needs --images ROOT (or give a folder with captions.json)")
    return folder, Path(images)
