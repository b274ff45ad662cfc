"""One pre-training step as `trainer.train` runs it, outside the loader (for the sync-count, compile and bf16
tests): the tiny preset's model and objective, the masking op, `step_inputs`, backward, clipping, the engine's
AdamW (fused, as on a GPU) and the metrics window."""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from trainer.config import TrainConfig, preset_config
from trainer.engine.engine import OptimSettings, build_optimizer
from trainer.engine.metrics import MetricsWindow
from trainer.masking.counts import TOTALS
from trainer.masking.masker import Masker
from trainer.masking.spec import parse_mask_spec
from trainer.model.objective import Pretrainer
from trainer.model.posmask import PosMaskModel
from trainer.train import LOSSES, step_inputs

MASK_ID, STEPS = 103, 100


@dataclass
class Step:
    """A model, its optimiser and what one step needs; `run(batch, step)` returns the step's losses."""

    cfg: TrainConfig
    module: Pretrainer
    forward: Callable[..., dict[str, torch.Tensor]]
    optimizer: torch.optim.Optimizer
    masker: Masker
    window: MetricsWindow
    amp: Callable[[], contextlib.AbstractContextManager[Any]]

    def run(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        inputs, counts = step_inputs(batch, self.cfg.mask, self.masker, self.cfg, step, STEPS, STEPS)
        with self.amp():
            out = self.forward(**inputs)
        self.optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        nn.utils.clip_grad_norm_(self.module.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        self.window.add(batch["ids"].shape[0], out, counts)
        return out


def tiny_step(pos: str = "NOUN", seed: int = 0, compile_: Callable[[nn.Module], Any] | None = None,
              amp: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext) -> Step:
    """The tiny preset's step (its hard-negative ramp included: `step_inputs` makes the hardness tensor)."""
    cfg = preset_config("tiny", mask=parse_mask_spec(pos))
    torch.manual_seed(seed)
    module = Pretrainer(PosMaskModel(cfg.model, vision_weights="random"), mlm=True).train()
    optimizer = build_optimizer(module, OptimSettings(lr=cfg.lr, weight_decay=cfg.weight_decay), torch.device("cpu"))
    masker = Masker(cfg.mask, MASK_ID, cfg.model.vocab_size, cfg.mask_probs, total_steps=STEPS)
    window = MetricsWindow(torch.device("cpu"), LOSSES, tuple(TOTALS), TOTALS)
    forward = compile_(module) if compile_ is not None else module
    return Step(cfg, module, forward, optimizer, masker, window, amp)


def batch_of(lengths: list[int], seed: int, pad_to: int | None = None, image_size: int = 64,
             ) -> dict[str, torch.Tensor]:
    """A collated batch as the loader gives it, on the CPU: captions of the given lengths (specials included),
    padded to the longest or to `pad_to`, word tokens alternating NOUN / DET / VERB."""
    g = torch.Generator().manual_seed(seed)
    width = pad_to or max(lengths)
    ids = torch.zeros(len(lengths), width, dtype=torch.long)
    pos = torch.full((len(lengths), width), 255, dtype=torch.uint8)
    word = torch.full((len(lengths), width), -1, dtype=torch.int16)
    mask = torch.zeros(len(lengths), width, dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(1000, 5000, (n,), generator=g)
        ids[row, 0], ids[row, n - 1] = 101, 102
        pos[row, 1:n - 1] = torch.tensor([7, 5, 15])[torch.arange(n - 2) % 3].to(torch.uint8)
        word[row, 1:n - 1] = torch.arange(n - 2, dtype=torch.int16)
        mask[row, :n] = 1
    pixels = torch.randn(len(lengths), 3, image_size, image_size, generator=g)
    return {"pixels": pixels, "ids": ids, "pos": pos, "word": word, "attention_mask": mask,
            "image_ids": torch.arange(len(lengths)) % max(2, len(lengths) - 1)}
