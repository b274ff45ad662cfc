"""The run-folder contract: the name of every file of a run folder and of its `eval/`, and what "finished" means.
Every reader and writer of a run folder (the trainer, the evaluation, the report, the captioner, the study) takes
its paths from here.

    RUN/
      run_config.json     the run record (TrainConfig.to_dict() and what it resolved to for this run)
      checkpoint.pt       the run engine's checkpoint (every training loop: resume)
      metrics.jsonl       one record per logging step (every training loop)
      events.out.tfevents.*   the same records as TensorBoard events (`--report-to tensorboard`; `events` is
                          their folder: the run folder itself, so `tensorboard --logdir` a study shows every run)
      model.safetensors   the trained model; config.json, its architecture
      losses.png          the loss curves
      summary.json        written last by pre-training: the run is finished
      eval/
        TASK.json         a task's summary (retrieval, valse, vqa, probe)
        TASK items file   its per-item scores (ITEM_FILES)
        vqa_predictions_SPLIT.json, vqa_finetune/   the VQA predictions and the fine-tune's own run folder
        scst_REWARD/      the SCST probe's captioner trained on this run's reward
        study_TASK.json   a study's stamp of the command that made TASK.json (.failed: node 0's attempt failed)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RUN_CONFIG = "run_config.json"
CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
EVENTS_PREFIX = "events.out.tfevents."  # TensorBoard's own name for its event files
MODEL_WEIGHTS = "model.safetensors"
MODEL_CONFIG = "config.json"
LOSS_PLOT = "losses.png"
SUMMARY = "summary.json"
EVAL_DIR = "eval"
EVAL_TASKS: tuple[str, ...] = ("retrieval", "valse", "vqa", "probe")
ITEM_FILES: dict[str, str] = {"retrieval": "retrieval_items.json", "valse": "valse_entries.json",
                              "vqa": "vqa_items.json", "probe": "probe_items.json"}
VQA_FINETUNE = "vqa_finetune"


@dataclass(frozen=True)
class EvalDir:
    """A results folder: a run's `eval/`, or the folder `posmask eval --out` names."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def result(self, task: str) -> Path:
        """A task's summary, `TASK.json`."""
        return self.path / f"{task}.json"

    def items(self, task: str) -> Path:
        """A task's per-item scores."""
        return self.path / ITEM_FILES[task]

    def vqa_predictions(self, split: str) -> Path:
        return self.path / f"vqa_predictions_{split}.json"

    @property
    def vqa_finetune(self) -> Path:
        """The VQA fine-tune's own run folder (its checkpoint and metrics.jsonl)."""
        return self.path / VQA_FINETUNE

    def scst(self, reward: str) -> Path:
        """The SCST probe's captioner trained on this run's `reward` (itm or itc)."""
        return self.path / f"scst_{reward}"

    def study_stamp(self, task: str) -> Path:
        return self.path / f"study_{task}.json"

    def study_failed(self, task: str) -> Path:
        return self.path / f"study_{task}.failed"


@dataclass(frozen=True)
class RunDir:
    """A run folder and the paths of its files."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def run_config(self) -> Path:
        return self.path / RUN_CONFIG

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def events(self) -> Path:
        """The folder of the TensorBoard event files (`EVENTS_PREFIX`*): the run folder, beside metrics.jsonl."""
        return self.path

    @property
    def model(self) -> Path:
        return self.path / MODEL_WEIGHTS

    @property
    def model_config(self) -> Path:
        return self.path / MODEL_CONFIG

    @property
    def losses(self) -> Path:
        return self.path / LOSS_PLOT

    @property
    def summary(self) -> Path:
        return self.path / SUMMARY

    @property
    def eval(self) -> EvalDir:
        return EvalDir(self.path / EVAL_DIR)

    def holds_model(self) -> bool:
        """True when the folder holds a loadable model (weights and architecture): a run or a model folder."""
        return self.model.is_file() and self.model_config.is_file()

    def finished(self) -> bool:
        """True when pre-training finished: `summary.json`, written after the model, is there, and so is the
        model."""
        return self.summary.is_file() and self.holds_model()
