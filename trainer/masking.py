"""POS-conditional masking: a mask spec (`DET`, `NOUN,VERB`, `random`, `none`) and one vectorised op.

The op runs on the device over a whole batch: `candidates = table[pos]` (a 256-entry boolean lookup
built from the spec), `masked = candidates & (rand < ratio)`, labels -100 elsewhere, and the BERT
80/10/10 replacement. Special tokens and padding carry pos 255, which is never a candidate.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from shards.errors import UserError
from shards.upos import NOT_A_WORD, STUDIED_CLASSES, UPOS_ID, UPOS_NAMES

IGNORE_INDEX = -100
RANDOM = "random"
NONE = "none"
DEFAULT_RATIO = {RANDOM: 0.15}  # every POS spec defaults to 0.7, the study's main ratio
DEFAULT_POS_RATIO = 0.7


@dataclass(frozen=True)
class MaskSpec:
    """Which wordpieces are MLM candidates, and with what probability each is masked."""

    classes: tuple[str, ...]  # UPOS names; every word class for `random`; empty for `none`
    ratio: float  # 0.0 for `none`
    name: str  # canonical text, e.g. "DET", "NOUN+VERB", "random", "none"

    @property
    def mlm(self) -> bool:
        """False for `none`: no MLM forward pass and no MLM loss."""
        return bool(self.classes)

    @property
    def label(self) -> str:
        """Name and ratio as used in run folder names: `DET-0.7`, `random-0.15`, `none`."""
        return f"{self.name}-{self.ratio:g}" if self.mlm else self.name

    def to_dict(self) -> dict[str, Any]:
        """The structured record stored in run_config.json."""
        return {"classes": list(self.classes), "ratio": self.ratio, "name": self.name}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "MaskSpec":
        """Inverse of to_dict."""
        return cls(classes=tuple(data["classes"]), ratio=float(data["ratio"]), name=str(data["name"]))

    def table(self, device: torch.device | str = "cpu") -> Tensor:
        """The 256-entry boolean candidate table indexed by pos id (255 = special/padding: False)."""
        table = torch.zeros(256, dtype=torch.bool)
        for name in self.classes:
            table[UPOS_ID[name]] = True
        table[NOT_A_WORD] = False
        return table.to(device)


def _valid_values() -> str:
    return (f"one of the studied classes {', '.join(STUDIED_CLASSES)}, any UPOS name ({', '.join(UPOS_NAMES)}), "
            f"a comma-separated set (NOUN,VERB), '{RANDOM}' or '{NONE}'")


def parse_mask_spec(pos: str, ratio: float | str | None = None) -> MaskSpec:
    """Parse the Makefile's POS and RATIO; one clear UserError listing the valid values when wrong.

    RATIO defaults to 0.15 for `random` and 0.7 for a POS class; `none` takes no RATIO.
    """
    text = (pos or "").strip()
    if not text:
        raise UserError(f"empty POS; valid: {_valid_values()}")
    if ratio is not None and not isinstance(ratio, float):
        try:
            ratio = float(ratio)
        except ValueError:
            raise UserError(f"RATIO {ratio!r} is not a number; valid: a number in (0, 1]") from None
    if text.lower() == NONE:
        if ratio is not None:
            raise UserError(f"POS=none turns MLM off and takes no RATIO (got {ratio}); drop RATIO")
        return MaskSpec(classes=(), ratio=0.0, name=NONE)
    if ratio is not None and not 0.0 < ratio <= 1.0:
        raise UserError(f"RATIO {ratio} is outside (0, 1]; valid: a number in (0, 1], e.g. 0.7, 1.0, 0.15")
    if text.lower() == RANDOM:
        words = tuple(UPOS_NAMES)  # every word token is a candidate: the BERT baseline
        return MaskSpec(classes=words, ratio=DEFAULT_RATIO[RANDOM] if ratio is None else ratio, name=RANDOM)
    names = [part.strip().upper() for part in text.replace("+", ",").split(",") if part.strip()]
    unknown = [n for n in names if n not in UPOS_ID]
    if unknown or not names:
        raise UserError(f"unknown POS {', '.join(unknown) or text!r}; valid: {_valid_values()}")
    classes = tuple(sorted(set(names), key=UPOS_ID.__getitem__))
    return MaskSpec(classes=classes, ratio=DEFAULT_POS_RATIO if ratio is None else ratio, name="+".join(classes))


@dataclass
class MaskedBatch:
    """Output of the masking op; counts stay on the device (no host sync)."""

    input_ids: Tensor  # [B, L] ids with masked positions replaced
    labels: Tensor  # [B, L] original id at masked positions, IGNORE_INDEX elsewhere
    n_candidates: Tensor  # scalar long
    n_masked: Tensor  # scalar long
    n_words: Tensor  # scalar long: word tokens (pos != 255) in the batch


def mask_tokens(
    ids: Tensor,
    pos: Tensor,
    table: Tensor,
    ratio: float,
    mask_id: int,
    vocab_size: int,
    probs: tuple[float, float] = (0.8, 0.1),
    generator: torch.Generator | None = None,
) -> MaskedBatch:
    """The one vectorised masking op (see module doc). `pos` is uint8/long with 255 for specials and padding."""
    pos = pos.long()
    candidates = table[pos]
    draw = torch.rand(ids.shape, device=ids.device, generator=generator)
    masked = candidates & (draw < ratio)
    labels = torch.where(masked, ids, torch.full_like(ids, IGNORE_INDEX))
    how = torch.rand(ids.shape, device=ids.device, generator=generator)
    p_mask, p_random = probs
    to_mask = masked & (how < p_mask)
    to_random = masked & (how >= p_mask) & (how < p_mask + p_random)
    random_ids = torch.randint(vocab_size, ids.shape, device=ids.device, generator=generator, dtype=ids.dtype)
    input_ids = torch.where(to_mask, torch.full_like(ids, mask_id), ids)
    input_ids = torch.where(to_random, random_ids, input_ids)
    return MaskedBatch(
        input_ids=input_ids,
        labels=labels,
        n_candidates=candidates.sum(),
        n_masked=masked.sum(),
        n_words=(pos != NOT_A_WORD).sum(),
    )


class Masker:
    """A MaskSpec bound to a device and a tokenizer: `masker(ids, pos)` -> MaskedBatch."""

    def __init__(self, spec: MaskSpec, mask_id: int, vocab_size: int,
                 probs: tuple[float, float] = (0.8, 0.1), device: torch.device | str = "cpu") -> None:
        if not (0 <= probs[0] and 0 <= probs[1] and probs[0] + probs[1] <= 1):
            raise UserError(f"mask replacement probabilities {probs} must be >= 0 and sum to <= 1")
        self.spec, self.mask_id, self.vocab_size, self.probs = spec, mask_id, vocab_size, probs
        self.table = spec.table(device)

    def __call__(self, ids: Tensor, pos: Tensor, generator: torch.Generator | None = None) -> MaskedBatch:
        return mask_tokens(ids, pos, self.table, self.spec.ratio, self.mask_id, self.vocab_size,
                           self.probs, generator)
