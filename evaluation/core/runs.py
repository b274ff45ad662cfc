"""What a report needs to know about a run: its run record (masking, ALBEF flag, shards) and its results."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainer.config import TrainConfig

log = logging.getLogger(__name__)

NON_FUNCTIONAL: tuple[str, ...] = ("NOUN", "VERB", "ADJ", "ADV", "PROPN")
FUNCTIONAL: tuple[str, ...] = ("DET", "AUX", "PRON", "ADP")
BASELINES: tuple[str, ...] = ("random", "none", "albef")
EXTENSIONS = "Extensions"  # runs masked beyond the thesis (variants of the mask, loss weights)
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Non-functional", NON_FUNCTIONAL), ("Functional", FUNCTIONAL), ("Baselines", BASELINES))
TASKS: tuple[str, ...] = ("retrieval", "valse", "vqa", "probe")  # each writes RUN/eval/<task>.json


@dataclass
class RunInfo:
    """One run as the report sees it: its run record (run_config.json, parsed by the trainer) and results."""

    path: Path
    name: str
    record: TrainConfig | None = None  # None: no readable run record
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

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
        """True for a mask or loss schedule beyond the thesis (per-class ratios, whole words, budgets,
        fallback, curricula, loss weights)."""
        if not self.record:
            return False
        m = self.record.mask
        return bool(m.ratios or m.whole_word or m.budget is not None or m.fallback != "none" or m.stages
                    or not self.record.loss_weights.is_default)

    @property
    def label(self) -> str:
        """What was masked, e.g. `NOUN 0.7`, `random 0.15`, `none`, `ALBEF (random 0.15)`; the mask's own label
        for the extensions (`NOUN-0.7-w`, `DET-b0.15`, `cur-DET>NOUN-0.7`, `random-0.15 lw-mlm0.2to1`)."""
        if self.extended:
            weights = self.record.loss_weights
            text = self.record.mask.report_label + ("" if weights.is_default else f" lw-{weights.label}")
        else:
            text = self.method
            if self.ratio is not None:
                ratio = f"{self.ratio:g}"
                text = f"{self.method} {ratio if '.' in ratio else ratio + '.0'}"
        return f"ALBEF ({text})" if self.albef else text

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
    from trainer.config import RUN_CONFIG, read_run_config

    path = Path(path)
    record = read_run_config(path)
    if record is None and (path / RUN_CONFIG).is_file():
        log.warning("%s: unreadable run record; the run is listed under its folder name", path / RUN_CONFIG)
    info = RunInfo(path, path.name, record)
    for task in TASKS:
        f = path / "eval" / f"{task}.json"
        if f.is_file():
            try:
                info.results[task] = json.loads(f.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as err:
                log.warning("%s: unreadable (%s); skipped", f, err)
    return info
