"""What a report needs to know about a run: its masking method and ratio, its results, its losses."""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

NON_FUNCTIONAL: tuple[str, ...] = ("NOUN", "VERB", "ADJ", "ADV", "PROPN")
FUNCTIONAL: tuple[str, ...] = ("DET", "AUX", "PRON", "ADP")
BASELINES: tuple[str, ...] = ("random", "none", "albef")
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Non-functional", NON_FUNCTIONAL), ("Functional", FUNCTIONAL), ("Baselines", BASELINES))
TASKS: tuple[str, ...] = ("retrieval", "valse", "vqa", "probe")  # each writes RUN/eval/<task>.json


@dataclass
class RunInfo:
    """One run as the report sees it."""

    path: Path
    name: str
    method: str  # NOUN ... ADP, random, none, albef, or e.g. NOUN+VERB
    ratio: float | None
    config: dict[str, Any] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Method with ratio, e.g. `NOUN 0.7`, `random 0.15`, `none`."""
        if self.method in ("none", "albef") or self.ratio is None:
            return self.method
        ratio = f"{self.ratio:g}"
        return f"{self.method} {ratio if '.' in ratio else ratio + '.0'}"

    @property
    def group(self) -> str:
        """The report group of the method (a GROUPS name, or "Other")."""
        for group, methods in GROUPS:
            if self.method in methods:
                return group
        return "Other"

    def sort_key(self) -> tuple[int, int, float, str]:
        """Report order: group, method within the group, ratio, name."""
        order = [m for _, ms in GROUPS for m in ms]
        idx = order.index(self.method) if self.method in order else len(order)
        gidx = [g for g, _ in GROUPS].index(self.group) if self.group != "Other" else len(GROUPS)
        return gidx, idx, self.ratio or 0.0, self.name

    @property
    def shards(self) -> str | None:
        """The shard directory the run trained on, from its config."""
        return self.config.get("shards")


def _method(pos: str, albef: bool) -> str:
    if albef:
        return "albef"
    low = pos.strip().lower()
    if low in ("none", "random"):
        return low
    return "+".join(p.strip().upper() for p in re.split(r"[+,]", pos) if p.strip())


def _from_name(name: str) -> tuple[str, float | None]:
    """Fallback when there is no run_config.json: `tiny-NOUN-0.7` -> (NOUN, 0.7)."""
    parts = name.split("-")
    ratio = None
    if parts and re.fullmatch(r"\d*\.?\d+", parts[-1]):
        ratio = float(parts.pop())
    method = parts[-1] if parts else name
    return _method(method, method.lower() == "albef"), ratio


def load_run(path: str | Path) -> RunInfo:
    """Read run_config.json (method, ratio, shards) and every RUN/eval/<task>.json present."""
    path = Path(path)
    config: dict[str, Any] = {}
    cfg_path = path / "run_config.json"
    if cfg_path.is_file():
        try:
            config = json.loads(cfg_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            log.warning("%s: unreadable (%s)", cfg_path, err)
    if config:
        method = _method(str(config.get("pos", "")), bool(config.get("albef")))
        ratio = None if method == "none" else config.get("ratio")
    else:
        method, ratio = _from_name(path.name)
    info = RunInfo(path, path.name, method, float(ratio) if ratio is not None else None, config)
    for task in TASKS:
        f = path / "eval" / f"{task}.json"
        if f.is_file():
            try:
                info.results[task] = json.loads(f.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as err:
                log.warning("%s: unreadable (%s); skipped", f, err)
    return info


def read_losses(path: Path) -> list[dict[str, Any]]:
    """Records of RUN/metrics.jsonl (a torn last line is ignored); [] when absent."""
    f = path / "metrics.jsonl"
    if not f.is_file():
        return []
    out = []
    for line in f.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
