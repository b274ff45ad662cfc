"""What a report needs to know about a run: its run record (masking, ALBEF flag, shards) and its results."""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evaluation.core.items import ItemScores
    from trainer.config import TrainConfig

from trainer.run_dir import EVAL_TASKS, RunDir

log = logging.getLogger(__name__)

NON_FUNCTIONAL: tuple[str, ...] = ("NOUN", "VERB", "ADJ", "ADV", "PROPN")
FUNCTIONAL: tuple[str, ...] = ("DET", "AUX", "PRON", "ADP")
BASELINES: tuple[str, ...] = ("random", "none", "albef")
EXTENSIONS = "Extensions"  # runs masked beyond the thesis (variants of the mask, loss weights)
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Non-functional", NON_FUNCTIONAL), ("Functional", FUNCTIONAL), ("Baselines", BASELINES))


@dataclass
class RunInfo:
    """One run as the report sees it: its run record (parsed by the trainer), its results, and where its per-item
    scores and training records come from (its folder, or a study's evidence: evaluation.report.evidence)."""

    path: Path
    name: str
    record: TrainConfig | None = None  # None: no readable run record
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    item_source: Callable[[], dict[str, ItemScores]] | None = None  # None: the folder's item files
    step_source: Callable[[], dict[int, dict[str, Any]]] | None = None  # None: the folder's metrics log

    def items(self) -> dict[str, ItemScores]:
        """Every metric's per-item scores (evaluation.core.items)."""
        if self.item_source is not None:
            return self.item_source()
        from evaluation.core.items import metric_items

        return metric_items(RunDir(self.path).eval)

    def step_records(self) -> dict[int, dict[str, Any]]:
        """The training log's records by step (trainer.engine.metrics.read_step_records)."""
        if self.step_source is not None:
            return self.step_source()
        from trainer.engine.metrics import read_step_records

        return read_step_records(RunDir(self.path).metrics)

    @property
    def method(self) -> str:
        """The mask's canonical name (NOUN, NOUN+VERB, random, none), or the folder name without a record."""
        return self.record.mask.name if self.record else self.name

    @property
    def ratio(self) -> float | None:
        """The masking ratio; None for `none` and without a record."""
        return self.record.mask.ratio if self.record and self.record.mask.mlm else None

    @property
    def albef(self) -> bool:
        return bool(self.record and self.record.albef)

    @property
    def config(self) -> dict[str, Any]:
        """The run record as a plain dict ({} without one)."""
        return self.record.to_dict() if self.record else {}

    @property
    def extended(self) -> bool:
        """True for a mask or loss schedule beyond the thesis (TrainConfig.extended)."""
        return bool(self.record and self.record.extended)

    @property
    def label(self) -> str:
        """The method's name in reports (TrainConfig.label), or the folder name without a run record."""
        return self.record.label if self.record else self.name

    @property
    def group(self) -> str:
        """The report group of the method (a GROUPS name, Extensions, or "Other")."""
        if self.extended:
            return EXTENSIONS
        key = "albef" if self.albef else self.method
        return next((group for group, methods in GROUPS if key in methods), "Other")

    def sort_key(self) -> tuple[int, int, float, str]:
        """Report order: group, method within the group, ratio, name."""
        order = [m for _, ms in GROUPS for m in ms]
        key = "albef" if self.albef else self.method
        idx = order.index(key) if key in order else len(order)
        names = [g for g, _ in GROUPS] + [EXTENSIONS]
        gidx = names.index(self.group) if self.group in names else len(names)
        return gidx, idx, self.ratio or 0.0, self.name

    @property
    def shards(self) -> str | None:
        """The shard directory the run trained on, from its record."""
        return self.record.shards if self.record else None


def load_run(path: str | Path) -> RunInfo:
    """Read the run record and every RUN/eval/<task>.json present."""
    from trainer.config import read_run_config

    folder = RunDir(path)
    record = read_run_config(folder.path)
    if record is None and folder.run_config.is_file():
        log.warning("%s: unreadable run record; the run is listed under its folder name", folder.run_config)
    info = RunInfo(folder.path, folder.path.name, record)
    for task in EVAL_TASKS:
        f = folder.eval.result(task)
        if f.is_file():
            try:
                info.results[task] = json.loads(f.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as err:
                log.warning("%s: unreadable (%s); skipped", f, err)
    return info
