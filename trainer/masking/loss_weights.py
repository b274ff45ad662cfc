"""Weights of the MLM, ITC and ITM losses (`--loss-weights`, the thesis's "loss scheduling"): fixed
(`mlm=1,itc=1,itm=1`) or a linear ramp over the run (`mlm=0.2~1.0`); an unnamed loss keeps weight 1.
The weight is a function of the step alone, so a resumed run weighs exactly as the uninterrupted one."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from toolbox.errors import UserError

LOSS_NAMES: tuple[str, ...] = ("mlm", "itc", "itm")
VALID = "NAME=W or NAME=START~END (a linear ramp over the run), NAME one of mlm, itc, itm, weights >= 0, " \
        "e.g. mlm=0.2~1.0,itc=1"


@dataclass(frozen=True)
class LossWeights:
    """(start, end) weight of each loss; start == end for a fixed weight."""

    mlm: tuple[float, float] = (1.0, 1.0)
    itc: tuple[float, float] = (1.0, 1.0)
    itm: tuple[float, float] = (1.0, 1.0)

    @property
    def is_default(self) -> bool:
        """True when every loss weighs 1 throughout."""
        return self == LossWeights()

    def at(self, step: int, total_steps: int) -> tuple[float, float, float]:
        """The (mlm, itc, itm) weights of step `step` (0-based): START at step 0, END at the last step."""
        t = min(1.0, max(0.0, step / max(total_steps - 1, 1)))
        return tuple(a + (b - a) * t for a, b in (self.mlm, self.itc, self.itm))  # type: ignore[return-value]

    @property
    def label(self) -> str:
        """The run-folder part, e.g. `mlm0.2to1` or `itc0.5+itm2`; "" when every weight is 1."""
        parts = []
        for name in LOSS_NAMES:
            a, b = getattr(self, name)
            if (a, b) != (1.0, 1.0):
                parts.append(f"{name}{a:g}" + (f"to{b:g}" if b != a else ""))
        return "+".join(parts)

    @property
    def suffix(self) -> str:
        """The part of a run's label and folder that names the weights, `lw-mlm0.2to1`; "" when every weight is 1."""
        return f"lw-{self.label}" if not self.is_default else ""

    def to_dict(self) -> dict[str, list[float]]:
        """The record stored in run_config.json: {name: [start, end]}."""
        return {name: list(getattr(self, name)) for name in LOSS_NAMES}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LossWeights:
        """Inverse of to_dict."""
        return cls(**{name: (float(data[name][0]), float(data[name][1])) for name in LOSS_NAMES if name in data})


def _weight(text: str, entry: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"LOSS_WEIGHTS entry {entry!r}: {text!r} is not a number; valid: {VALID}") from None
    if not value >= 0.0:
        raise UserError(f"LOSS_WEIGHTS entry {entry!r}: weight {value:g} is negative; valid: {VALID}")
    return value


def parse_loss_weights(text: str | None, mlm: bool = True) -> LossWeights:
    """Parse `--loss-weights`; one UserError line listing what is valid when wrong. `mlm`: False when
    the run has no MLM loss (an mlm weight is then refused)."""
    if text is None or not text.strip():
        return LossWeights()
    weights: dict[str, tuple[float, float]] = {}
    for entry in (e.strip() for e in text.split(",")):
        name, eq, value = entry.partition("=")
        name = name.strip().lower()
        if not eq or name not in LOSS_NAMES:
            raise UserError(f"LOSS_WEIGHTS entry {entry!r} is not valid; valid: {VALID}")
        if name in weights:
            raise UserError(f"LOSS_WEIGHTS gives {name} twice; valid: each loss once ({VALID})")
        start, ramp, end = value.partition("~")
        a = _weight(start.strip(), entry)
        weights[name] = (a, _weight(end.strip(), entry) if ramp else a)
    if "mlm" in weights and not mlm:
        raise UserError("LOSS_WEIGHTS sets mlm, but POS=none has no MLM loss; valid: itc and itm weights")
    result = LossWeights(**weights)
    if not any(max(getattr(result, n)) > 0 for n in LOSS_NAMES if mlm or n != "mlm"):
        raise UserError(f"LOSS_WEIGHTS {text!r} weighs every loss 0 throughout; valid: {VALID}")
    return result
