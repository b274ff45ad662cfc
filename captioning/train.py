"""The captioner's two training stages, each on the run engine (AdamW, schedule, checkpoints with exact resume,
metrics.jsonl, SIGTERM -> Interrupted):

- cross-entropy on the shards' captions of the training images (teacher forcing), the CE model;
- self-critical sequence training (Rennie et al. 2017): per image K sampled captions against the greedy
  caption as baseline, the reward being a probed run's score of the caption; the loss is
  -(r(sample) - r(greedy)) x the sample's log-probability.
Batches are drawn by a seeded `random.Random` whose state is checkpointed, so a resumed stage continues
with the same batches.
"""
from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from captioning.captioner import EOS, PAD, Captioner, token_log_probs
from toolbox.errors import Interrupted
from trainer.engine.distributed import DistInfo
from trainer.engine.engine import Engine, OptimSettings

log = logging.getLogger(__name__)
Reward = Callable[[Tensor, Tensor], Tensor]  # (image rows [B], captioner tokens [B,T]) -> rewards [B]
Step = Callable[[nn.Module, random.Random], tuple[Tensor, dict[str, float]]]


@dataclass(frozen=True)
class StageSettings:
    """One stage's optimisation (CE defaults; SCST: see `scst_defaults`)."""

    steps: int = 1000
    batch_size: int = 64  # captions (CE) or images (SCST)
    lr: float = 5e-4
    min_lr: float | None = 1e-5  # cosine down to it; None: constant after the warm-up
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    samples: int = 5  # SCST: sampled captions per image
    seed: int = 0
    log_every: int = 25
    ckpt_every: int = 250


def scst_defaults(**overrides: Any) -> StageSettings:
    """SCST's settings: a short run at a constant learning rate from the CE model."""
    return StageSettings(**{"steps": 100, "batch_size": 16, "lr": 2e-4, "min_lr": None, "warmup_steps": 0,
                            **overrides})


def caption_tokens(model: Captioner, captions: list[np.ndarray], device: torch.device) -> Tensor:
    """BERT ids ([CLS] ... [SEP]) -> padded local tokens [B,L], cut to the captioner's length (keeping EOS)."""
    cap = model.config.max_len
    rows = [model.to_local(torch.as_tensor(c[:cap], dtype=torch.long)) for c in captions]
    rows = [torch.cat([r[:-1], torch.tensor([EOS])]) if len(c) > cap else r for r, c in zip(rows, captions)]
    return nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=PAD).to(device)


def ce_step(model: Captioner, features: Tensor, captions: list[list[np.ndarray]], batch_size: int,
            device: torch.device) -> Step:
    """One CE step: `batch_size` random (image, one of its captions) pairs, token cross-entropy."""
    def step(net: nn.Module, rng: random.Random) -> tuple[Tensor, dict[str, float]]:
        rows = [rng.randrange(len(captions)) for _ in range(batch_size)]
        tokens = caption_tokens(model, [captions[r][rng.randrange(len(captions[r]))] for r in rows], device)
        logits = net(features[rows].to(device).float(), tokens[:, :-1])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1), ignore_index=PAD), {}
    return step


def scst_loss(model: Captioner, net: nn.Module, features: Tensor, rows: Tensor, reward: Reward,
              samples: int) -> tuple[Tensor, dict[str, float]]:
    """The self-critical loss of the images `rows` ([B] indices into `features`) and its rewards: the mean
    reward of the samples and of the greedy baselines."""
    device = next(model.parameters()).device
    feats = features[rows].to(device).float()
    greedy = model.generate(feats)
    repeated = feats.repeat_interleave(samples, 0)
    sampled = model.generate(repeated, sample=True)
    r_greedy, r_sample = reward(rows, greedy), reward(rows.repeat_interleave(samples), sampled)
    advantage = (r_sample - r_greedy.repeat_interleave(samples)).to(device)
    log_probs, mask = token_log_probs(net, repeated, sampled)
    loss = -(advantage[:, None] * log_probs * mask).sum(1).mean()
    return loss, {"reward": float(r_sample.mean()), "reward_greedy": float(r_greedy.mean())}


def scst_step(model: Captioner, features: Tensor, reward: Reward, batch_size: int, samples: int) -> Step:
    """One SCST step on `batch_size` random images."""
    def step(net: nn.Module, rng: random.Random) -> tuple[Tensor, dict[str, float]]:
        rows = torch.tensor([rng.randrange(len(features)) for _ in range(batch_size)])
        return scst_loss(model, net, features, rows, reward, samples)
    return step


def run_stage(model: nn.Module, step: Step, s: StageSettings, run_dir: Path, device: torch.device,
              identity: Mapping[str, Any], train_mode: bool) -> None:
    """Train `model` in place on the run engine for `s.steps` (resuming from `run_dir`'s checkpoint); dropout on
    only when `train_mode` (SCST samples and scores the captioner as it generates: dropout off)."""
    settings = OptimSettings(lr=s.lr, weight_decay=s.weight_decay, warmup_steps=s.warmup_steps,
                             warmup_lr=s.lr * 0.01, min_lr=s.min_lr, grad_clip=s.grad_clip)
    keys = ("loss", "reward", "reward_greedy") if not train_mode else ("loss",)
    engine = Engine(run_dir, settings, DistInfo(device=device), s.steps, identity, progress_keys=keys)
    torch.manual_seed(s.seed)
    net = engine.attach(model)
    rng = random.Random(s.seed)
    if engine.loop_state is not None:
        rng.setstate(engine.loop_state["rng"])
    model.train(train_mode)
    stopped = False
    try:
        while not engine.done and not stopped:
            with engine.autocast():
                loss, record = step(net, rng)
            engine.update(loss)
            if engine.due(s.log_every):
                engine.log({"step": engine.step, "loss": loss.item(), "lr": engine.lr, **record})
            stopped = engine.stop_requested()
            if stopped or engine.due(s.ckpt_every):
                engine.save({"rng": rng.getstate()})
    finally:
        engine.close()
        model.eval()
    if stopped:
        raise Interrupted(f"stopped by SIGTERM at step {engine.step} of {run_dir}; run the same command again "
                          "to resume")
