"""The mask spec: which wordpieces are MLM candidates and how they are drawn, parsed once from the
`posmask pretrain` flags (--pos --ratio --whole-word --budget --fallback --curriculum) into a structured
record that run_config.json stores, resumption compares and reports read; the op is trainer/masking/masker.py.

POS forms: `DET`, `NOUN,VERB` (or `NOUN+VERB`), per-class ratios `NOUN:0.5,DET:0.3`, `random`, `none`.
A curriculum is stages of such specs, `DET>DET+NOUN>DET+NOUN+VERB`, of equal length unless a stage
says where it ends (`DET@0.3>NOUN`, a share of the run's steps).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from toolbox.errors import UserError
from shards.upos import NOT_A_WORD, STUDIED_CLASSES, UPOS_ID, UPOS_NAMES

RANDOM = "random"
NONE = "none"
FALLBACKS: tuple[str, ...] = (NONE, RANDOM)
FALLBACK_RATIO = 0.15  # BERT's random 15 %, for a caption with no candidate when FALLBACK=random
DEFAULT_RATIO = {RANDOM: 0.15}  # every POS spec defaults to 0.7, the study's main ratio
DEFAULT_POS_RATIO = 0.7
STAGE_SEP = ">"  # between curriculum stages; `_` in run folder names (shell-safe)


@dataclass(frozen=True)
class MaskSpec:
    """Which wordpieces are MLM candidates, and how they are drawn (see module doc)."""

    classes: tuple[str, ...]  # UPOS names; every word class for `random`; empty for `none`; union of stages
    ratio: float  # the probability every candidate shares; 0.0 when none does (none, budget, per-class ratios)
    name: str  # canonical text, e.g. "DET", "NOUN+VERB", "random", "none", "DET>DET+NOUN"
    ratios: tuple[float, ...] = ()  # per-class probabilities aligned with `classes` (`NOUN:0.5,DET:0.3`)
    whole_word: bool = False  # one draw per word (word.npy); all its wordpieces masked together
    budget: float | None = None  # expected masked share of each caption's word tokens, over its candidates
    fallback: str = NONE  # `random`: a caption without candidates gets random 15 %
    stages: tuple[MaskSpec, ...] = ()  # curriculum stages, each a complete spec
    ends: tuple[float, ...] = ()  # share of the run where each stage but the last ends

    @property
    def mlm(self) -> bool:
        """False for `none`: no MLM forward pass and no MLM loss."""
        return bool(self.classes)

    @property
    def label(self) -> str:
        """The run-folder part (shell-safe): `DET-0.7`, `DET0.3+NOUN0.5`, `NOUN-0.7-w`, `DET-b0.15`,
        `PROPN-0.7-fb`, `cur-DET_DET+NOUN-0.7`, `none`."""
        return self._label("_")

    @property
    def report_label(self) -> str:
        """What was masked, for reports: as `label`, with curriculum stages joined by `>` (`cur-DET>NOUN-0.7`)."""
        return self._label(STAGE_SEP)

    def _label(self, sep: str) -> str:
        if not self.mlm:
            return NONE
        if self.stages:
            rates = {s._rate() for s in self.stages if s.mlm}
            shared = rates.pop() if len(rates) == 1 else ""
            parts = [s._classes_part() if shared else s._label_core() for s in self.stages]
            text = "cur-" + sep.join(_stage_parts(parts, self.ends)) + (f"-{shared}" if shared else "")
        else:
            text = self._label_core()
        return text + ("-w" if self.whole_word else "") + ("-fb" if self.fallback == RANDOM else "")

    def _rate(self) -> str:
        """`0.7` or `b0.15`; "" for per-class ratios."""
        return f"b{self.budget:g}" if self.budget is not None else "" if self.ratios else f"{self.ratio:g}"

    def _classes_part(self) -> str:
        if self.ratios:
            return "+".join(f"{c}{r:g}" for c, r in zip(self.classes, self.ratios))
        return self.name

    def _label_core(self) -> str:
        rate = self._rate()
        return self._classes_part() + (f"-{rate}" if rate and self.mlm else "")

    def table(self, device: torch.device | str = "cpu") -> Tensor:
        """The 256-entry float table indexed by pos id: each class's masking probability (with a budget,
        1.0 marks a candidate); 0 elsewhere and for 255 (special tokens and padding)."""
        table = torch.zeros(256, dtype=torch.float32)
        for k, name in enumerate(self.classes):
            table[UPOS_ID[name]] = 1.0 if self.budget is not None else self.ratios[k] if self.ratios else self.ratio
        table[NOT_A_WORD] = 0.0
        return table.to(device)

    def to_dict(self) -> dict[str, Any]:
        """The structured record stored in run_config.json: classes, ratio, name, and each variant set."""
        out: dict[str, Any] = {"classes": list(self.classes), "ratio": self.ratio, "name": self.name}
        if self.ratios:
            out["ratios"] = list(self.ratios)
        if self.whole_word:
            out["whole_word"] = True
        if self.budget is not None:
            out["budget"] = self.budget
        if self.fallback != NONE:
            out["fallback"] = self.fallback
        if self.stages:
            out.update(stages=[s.to_dict() for s in self.stages], ends=list(self.ends))
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MaskSpec:
        """Inverse of to_dict."""
        budget = data.get("budget")
        return cls(classes=tuple(data["classes"]), ratio=float(data["ratio"]), name=str(data["name"]),
                   ratios=tuple(float(r) for r in data.get("ratios", ())),
                   whole_word=bool(data.get("whole_word", False)),
                   budget=None if budget is None else float(budget), fallback=str(data.get("fallback", NONE)),
                   stages=tuple(cls.from_dict(s) for s in data.get("stages", ())),
                   ends=tuple(float(e) for e in data.get("ends", ())))


def _stage_parts(parts: list[str], ends: tuple[float, ...]) -> list[str]:
    """Stage texts with `@end` on every stage but the last, unless the stages are of equal length."""
    equal = all(abs(end - k / len(parts)) < 1e-6 for k, end in enumerate(ends, 1))
    return parts if equal else [p + f"@{e:g}" for p, e in zip(parts, ends)] + parts[len(ends):]


def _valid_values() -> str:
    return (f"one of the studied classes {', '.join(STUDIED_CLASSES)}, any UPOS name ({', '.join(UPOS_NAMES)}), "
            f"a set (NOUN,VERB), per-class ratios (NOUN:0.5,DET:0.3), '{RANDOM}' or '{NONE}'")


def _number(text: Any, what: str, valid: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise UserError(f"{what} {text!r} is not a number; valid: {valid}") from None


def _probability(value: float, what: str, valid: str) -> float:
    if not 0.0 < value <= 1.0:
        raise UserError(f"{what} {value:g} is outside (0, 1]; valid: {valid}")
    return value


def _parse_classes(text: str, ratio: float | None, budget: float | None) -> MaskSpec:
    """A class, a set or per-class ratios (no modifiers)."""
    per_class: dict[str, float | None] = {}
    for part in (p.strip() for p in text.replace("+", ",").split(",")):
        if not part:
            continue
        name, _, own = part.partition(":")
        name = name.strip().upper()
        if name not in UPOS_ID:
            raise UserError(f"unknown POS {name or part!r}; valid: {_valid_values()}")
        value = None
        if own.strip():
            value = _probability(_number(own.strip(), f"ratio of {name}", "a number in (0, 1]"), f"ratio of {name}",
                                 "CLASS:RATIO with RATIO in (0, 1], e.g. NOUN:0.5,DET:0.3")
        if name in per_class and per_class[name] != value:
            raise UserError(f"POS {text!r} gives {name} twice with different ratios; valid: each class once")
        per_class[name] = value
    if not per_class:
        raise UserError(f"unknown POS {text!r}; valid: {_valid_values()}")
    classes = tuple(sorted(per_class, key=UPOS_ID.__getitem__))
    own_ratios = [per_class[c] for c in classes]
    if budget is not None:
        if any(r is not None for r in own_ratios):
            raise UserError("BUDGET sets each caption's masking rate; per-class ratios (NOUN:0.5) are not allowed "
                            "with it; valid: BUDGET with a class, a set or random")
        return MaskSpec(classes=classes, ratio=0.0, name="+".join(classes), budget=budget)
    common = DEFAULT_POS_RATIO if ratio is None else ratio
    resolved = tuple(common if r is None else r for r in own_ratios)
    if len(set(resolved)) == 1:  # NOUN:0.5,DET:0.5 is DET+NOUN at 0.5, however typed
        return MaskSpec(classes=classes, ratio=resolved[0], name="+".join(classes))
    return MaskSpec(classes=classes, ratio=0.0, name="+".join(classes), ratios=resolved)


def _parse_one(pos: str, ratio: float | None, whole_word: bool, budget: float | None, fallback: str) -> MaskSpec:
    """A spec without curriculum."""
    text = pos.strip()
    if not text:
        raise UserError(f"empty POS; valid: {_valid_values()}")
    if text.lower() == NONE:
        if ratio is not None:
            raise UserError(f"POS=none turns MLM off and takes no RATIO (got {ratio:g}); drop RATIO")
        if whole_word or budget is not None or fallback != NONE:
            raise UserError("POS=none turns MLM off and takes no WHOLE_WORD, BUDGET or FALLBACK; "
                            "valid with them: a POS class, a set or random")
        return MaskSpec(classes=(), ratio=0.0, name=NONE)
    if text.lower() == RANDOM:
        if fallback == RANDOM:
            raise UserError("FALLBACK=random adds nothing to POS=random (every caption has candidates); "
                            "valid: FALLBACK=none with random")
        if budget is not None:
            spec = MaskSpec(classes=tuple(UPOS_NAMES), ratio=0.0, name=RANDOM, budget=budget)
        else:  # every word token is a candidate: the BERT baseline
            spec = MaskSpec(classes=tuple(UPOS_NAMES), ratio=DEFAULT_RATIO[RANDOM] if ratio is None else ratio,
                            name=RANDOM)
    else:
        spec = _parse_classes(text, ratio, budget)
    return replace(spec, whole_word=whole_word, fallback=fallback)


def _parse_curriculum(text: str, ratio: float | None, whole_word: bool, budget: float | None,
                      fallback: str) -> MaskSpec:
    """Stages `A>B>C`, each a POS spec, optionally `A@0.3` (where it ends); modifiers apply to every stage."""
    valid = ("stages separated by '>', each a POS spec (DET, DET+NOUN, NOUN:0.5, random, none), "
             "optionally ending at a share of the run (DET@0.3>NOUN)")
    parts = [p.strip() for p in text.split(STAGE_SEP)]
    if len(parts) < 2:
        raise UserError(f"CURRICULUM {text!r} has one stage; valid: {valid}")
    stages, given = [], []
    for k, part in enumerate(parts, 1):
        body, at, end = part.partition("@")
        if not body.strip():
            raise UserError(f"CURRICULUM {text!r}: stage {k} is empty; valid: {valid}")
        if at and k == len(parts):
            raise UserError(f"CURRICULUM {text!r}: the last stage runs to the end and takes no @; valid: {valid}")
        given.append(_number(end, f"CURRICULUM stage {k} end", "a share of the run in (0, 1)") if at else None)
        is_none = body.strip().lower() == NONE
        try:
            stages.append(_parse_one(body, None if is_none else ratio, whole_word and not is_none,
                                     None if is_none else budget, NONE if is_none else fallback))
        except UserError as err:
            raise UserError(f"CURRICULUM stage {k} ({body.strip()}): {err}") from None
    if not any(s.mlm for s in stages):
        raise UserError(f"CURRICULUM {text!r} masks nothing in any stage; valid: {valid}")
    ends = _resolve_ends(given[:-1], text, valid)
    classes = tuple(sorted({c for s in stages for c in s.classes}, key=UPOS_ID.__getitem__))
    ratios = {s.ratio for s in stages if s.mlm}
    return MaskSpec(classes=classes, ratio=ratios.pop() if len(ratios) == 1 else 0.0,
                    name=STAGE_SEP.join(_stage_parts([s.name for s in stages], ends)),
                    whole_word=whole_word, budget=budget, fallback=fallback, stages=tuple(stages), ends=ends)


def _resolve_ends(given: list[float | None], text: str, valid: str) -> tuple[float, ...]:
    """Where each stage but the last ends; stages without @ share the span between given ends equally."""
    points: list[float | None] = [0.0, *given, 1.0]
    known = [i for i, p in enumerate(points) if p is not None]
    for a, b in zip(known, known[1:]):
        lo, hi = points[a], points[b]
        assert lo is not None and hi is not None
        if not lo < hi:
            raise UserError(f"CURRICULUM {text!r}: stage ends must increase within (0, 1); valid: {valid}")
        for i in range(a + 1, b):
            points[i] = lo + (hi - lo) * (i - a) / (b - a)
    return tuple(round(float(p), 6) for p in points[1:-1])  # type: ignore[arg-type]


def parse_mask_spec(pos: str | None, ratio: float | str | None = None, *, whole_word: bool = False,
                    budget: float | str | None = None, fallback: str | None = None,
                    curriculum: str | None = None) -> MaskSpec:
    """Parse the Makefile's POS, RATIO, WHOLE_WORD, BUDGET, FALLBACK and CURRICULUM into one spec; a bad
    value is one UserError line listing what is valid. RATIO defaults to 0.15 for `random` and 0.7 for a
    POS class; `none` takes no RATIO; BUDGET replaces RATIO; CURRICULUM replaces POS."""
    if ratio is not None:
        ratio = _probability(_number(ratio, "RATIO", "a number in (0, 1]"), "RATIO",
                             "a number in (0, 1], e.g. 0.7, 1.0, 0.15")
    if budget is not None:
        budget = _probability(_number(budget, "BUDGET", "a number in (0, 1]"), "BUDGET",
                              "a share of each caption's word tokens in (0, 1], e.g. 0.15")
        if ratio is not None:
            raise UserError(f"BUDGET sets each caption's masking rate itself; drop RATIO ({ratio:g}) or BUDGET")
    fallback = (fallback or NONE).strip().lower()
    if fallback not in FALLBACKS:
        raise UserError(f"FALLBACK {fallback!r} is not valid; valid: {', '.join(FALLBACKS)} (default none)")
    if curriculum is not None and curriculum.strip():
        if pos is not None and pos.strip():
            raise UserError("CURRICULUM replaces POS (each stage is a POS spec); give one of them")
        return _parse_curriculum(curriculum, ratio, whole_word, budget, fallback)
    return _parse_one(pos or "", ratio, whole_word, budget, fallback)
