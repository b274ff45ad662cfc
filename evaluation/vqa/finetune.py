"""VQA v2 fine-tuning as classification on the fused [CLS] (thesis Tables 4.3, 4.5).

A two-layer MLP head over an answer vocabulary (the standard 3,129 answers or the top-K training
answers) is trained with soft-score targets (binary cross-entropy, as UNITER/LXMERT), together with
the whole pre-trained model. Thesis settings: batch 32, AdamW lr 2e-5, weight decay 0.02, 8 epochs in all,
cosine to 1e-6 after a warm-up from 1e-5 of "1 epoch", read by default as ALBEF's `VQA.py` and posmask's
pre-training read it: 1 x 100 iterations (capped at a tenth of the run); `warmup_reading="epochs"` gives the
literal epoch. The fine-tune runs on the trainer's run engine (DDP under
torchrun, one process per GPU; checkpoints and resume); the evaluation split is predicted by all ranks
and gathered on rank 0, which scores it with the official accuracy and writes the predictions in the
official results format `[{question_id, answer}]`.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from evaluation.core.common import default_workers, image_transform, load_pixels, tokenize
from evaluation.vqa.data import VQASplit, soft_targets
from evaluation.vqa.metric import question_scores, vqa_accuracy
from toolbox.errors import Interrupted
from toolbox.progress import progress
from trainer.engine.distributed import DistInfo, gather_objects
from trainer.engine.engine import ITERATIONS_PER_WARMUP_EPOCH, Engine, OptimSettings, autocast, capped_warmup
from trainer.engine.metrics import read_metrics
from trainer.run_dir import RunDir

log = logging.getLogger(__name__)
UNUSED: frozenset[str] = frozenset({"itm_head", "vision_proj", "text_proj", "temp", "mlm_head"})


@dataclass
class VQASettings:
    """Fine-tuning hyper-parameters (defaults: the thesis's: 8 epochs in all, a warm-up of 1 "epoch" from 1e-5,
    then cosine down to 1e-6). `warmup_reading`: "iterations" (default, as pre-training and ALBEF's code: each
    warm-up epoch is 100 iterations, capped at a tenth of the run) or "epochs" (the literal reading)."""

    epochs: float = 8.0
    warmup_epochs: float = 1.0
    warmup_reading: str = "iterations"
    batch_size: int = 32  # per process
    lr: float = 2e-5
    warmup_lr: float = 1e-5
    min_lr: float = 1e-6
    head_lr_mult: float = 1.0
    weight_decay: float = 0.02
    grad_clip: float = 5.0
    seed: int = 42
    workers: int | None = None
    eval_batch_size: int = 64
    log_every: int = 10
    ckpt_every: int = 1000
    report_to: str = "none"  # "tensorboard": events beside the fine-tune's metrics.jsonl


class VQAHead(nn.Module):
    """Linear-GELU-LayerNorm-Linear over the fused [CLS] (the common VQA classifier)."""

    def __init__(self, hidden: int, n_answers: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.GELU(), nn.LayerNorm(2 * hidden),
                                 nn.Linear(2 * hidden, n_answers))
        for m in self.net:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class VQAModel(nn.Module):
    """The pre-trained model plus the answer head."""

    def __init__(self, backbone: nn.Module, n_answers: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = VQAHead(int(backbone.config.hidden_size), n_answers)
        for name, p in backbone.named_parameters():  # pre-training heads play no part here
            if name.split(".")[0] in UNUSED and name != "mlm_head.word_embeddings.weight":
                p.requires_grad_(False)

    def forward(self, pixels: Tensor, ids: Tensor, mask: Tensor) -> Tensor:
        img_tokens, _ = self.backbone.encode_image(pixels)
        txt_tokens, _ = self.backbone.encode_text(ids, mask)
        fused = self.backbone.fuse(txt_tokens, mask, img_tokens)
        return self.head(fused[:, 0])


class QuestionImages(Dataset):
    """(index, pixels, question, sparse soft targets) per question."""

    def __init__(self, split: VQASplit, transform, image_size: int, index: dict[str, int] | None) -> None:
        self.split, self.transform, self.image_size = split, transform, image_size
        self.targets = None
        if index is not None:
            self.targets = [soft_targets(split.annotations.get(int(q["question_id"]), {}), index)
                            for q in split.questions]

    def __len__(self) -> int:
        return len(self.split.questions)

    def __getitem__(self, i: int) -> tuple[int, Tensor, str, dict[int, float]]:
        pixels, ok = load_pixels(self.split.images[i], self.transform, self.image_size)
        if not ok:  # never fatal: a blank image instead
            log.warning("VQA: unreadable image %s; using a blank image", self.split.images[i])
        return i, pixels, str(self.split.questions[i]["question"]), (self.targets[i] if self.targets else {})


def collate(batch: list) -> tuple[Tensor, Tensor, list[str], list[dict[int, float]]]:
    """Stack QuestionImages items into (indices, pixels, questions, targets)."""
    idx, pixels, questions, targets = zip(*batch)
    return torch.tensor(idx), torch.stack(pixels), list(questions), list(targets)


def dense_targets(targets: list[dict[int, float]], n_answers: int, device: torch.device) -> Tensor:
    """Sparse per-question targets -> dense [B, n_answers]."""
    out = torch.zeros(len(targets), n_answers)
    for row, t in enumerate(targets):
        for j, s in t.items():
            out[row, j] = s
    return out.to(device, non_blocking=True)


def epoch_order(n: int, epoch: int, seed: int, rank: int, world: int) -> list[int]:
    """This rank's question indices for one epoch: a seeded permutation, padded so that every rank gets
    the same number (as DistributedSampler), then strided by rank. Resuming slices it."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000 + epoch)).tolist()
    order += order[:(-n) % world]
    return order[rank::world]


WARMUP_READINGS: tuple[str, ...] = ("iterations", "epochs")


def warmup_steps(s: VQASettings, steps_per_epoch: int, total: int) -> int:
    """The fine-tune's warm-up in optimiser steps, by `s.warmup_reading`."""
    if s.warmup_reading == "epochs":
        return int(round(s.warmup_epochs * steps_per_epoch))
    if s.warmup_reading != "iterations":
        raise ValueError(f"VQA warm-up reading {s.warmup_reading!r}; valid: {', '.join(WARMUP_READINGS)}")
    return capped_warmup(int(round(s.warmup_epochs * ITERATIONS_PER_WARMUP_EPOCH)), total)


def finetune(model: VQAModel, train: VQASplit, index: dict[str, int], s: VQASettings, info: DistInfo,
             run_dir: Path, identity: dict[str, Any]) -> None:
    """Fine-tune in place on the run engine; `run_dir` holds its checkpoint and metrics.jsonl, so a stopped
    fine-tune resumes (and a finished one is not repeated). Raises Interrupted on SIGTERM."""
    transform, size = image_transform(model.backbone)
    data = QuestionImages(train, transform, size, index)
    per_rank = len(epoch_order(len(data), 0, s.seed, info.rank, info.world_size))
    steps_per_epoch = math.ceil(per_rank / s.batch_size)
    total = max(1, int(round(s.epochs * steps_per_epoch)))
    settings = OptimSettings(lr=s.lr, weight_decay=s.weight_decay, warmup_lr=s.warmup_lr, min_lr=s.min_lr,
                             warmup_steps=warmup_steps(s, steps_per_epoch, total), grad_clip=s.grad_clip)
    engine = Engine(run_dir, settings, info, total, identity, report_to=s.report_to)
    torch.manual_seed(s.seed + info.rank)
    net = engine.attach(model, lr_scale={"head.": s.head_lr_mult}, find_unused_parameters=True)
    workers = default_workers() if s.workers is None else s.workers
    max_len, n_answers, device = int(model.backbone.config.max_text_len), len(index), info.device
    model.train()
    stopped = False
    try:
        while not engine.done and not stopped:
            epoch, start = divmod(engine.step, steps_per_epoch)
            mine = epoch_order(len(data), epoch, s.seed, info.rank, info.world_size)[start * s.batch_size:]
            loader = DataLoader(Subset(data, mine), batch_size=s.batch_size, shuffle=False, num_workers=workers,
                                collate_fn=collate, pin_memory=device.type == "cuda")
            for _, pixels, questions, targets in loader:
                ids, mask = tokenize(questions, max_len, device)
                with engine.autocast():
                    logits = net(pixels.to(device, non_blocking=True), ids, mask)
                target = dense_targets(targets, n_answers, device)
                loss = F.binary_cross_entropy_with_logits(logits.float(), target, reduction="mean") * n_answers
                engine.update(loss)
                if engine.due(s.log_every):
                    engine.log({"step": engine.step, "epoch": engine.step / steps_per_epoch, "loss": loss.item(),
                                "lr": engine.lr})
                stopped = engine.stop_requested()
                if stopped or engine.due(s.ckpt_every):
                    engine.save({})
                if stopped or engine.done:
                    break
    finally:
        engine.close()
    if stopped:
        raise Interrupted(f"VQA fine-tuning stopped by SIGTERM at step {engine.step}; run the same command "
                          "again to resume")
    model.eval()


@torch.no_grad()
def predict(model: VQAModel, split: VQASplit, vocab: list[str], info: DistInfo, batch_size: int = 64,
            workers: int | None = None) -> dict[int, str]:
    """{question_id: answer} for a split; all ranks predict a share, rank 0 gets the union."""
    transform, size = image_transform(model.backbone)
    data = QuestionImages(split, transform, size, None)
    subset = Subset(data, list(range(info.rank, len(data), info.world_size)))
    workers = default_workers() if workers is None else workers
    loader = DataLoader(subset, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=collate)
    max_len, device = int(model.backbone.config.max_text_len), info.device
    model.eval()
    preds: dict[int, str] = {}
    for idx, pixels, questions, _ in progress(loader, desc=f"VQA predict {split.name}", unit="batch",
                                              disable=not info.is_main):
        ids, mask = tokenize(questions, max_len, device)
        with autocast(device):
            logits = model(pixels.to(device, non_blocking=True), ids, mask)
        best = logits.float().argmax(dim=1).cpu().tolist()
        for i, a in zip(idx.tolist(), best):
            preds[int(split.questions[i]["question_id"])] = vocab[a]
    return {k: v for part in gather_objects(preds) for k, v in part.items()}


def run_vqa(backbone: nn.Module, train: VQASplit, evals: VQASplit, vocab: list[str], s: VQASettings,
            info: DistInfo, run_dir: Path, backbone_id: str
            ) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, object]]]:
    """Fine-tune (checkpointed in `run_dir`), predict the evaluation split, score it when annotated.
    `backbone_id` names the pre-trained weights (a resume must start from the same). Returns
    (result, predictions in the official results format, per-question scores when annotated)."""
    index = {a: i for i, a in enumerate(vocab)}
    covered = [bool(soft_targets(train.annotations.get(int(q["question_id"]), {}), index)) for q in train.questions]
    log.info("VQA: %d train / %d %s questions, %d answers (%.1f%% of training questions have one in the list)",
             len(train.questions), len(evals.questions), evals.name, len(vocab), 100 * np.mean(covered or [0]))
    torch.manual_seed(s.seed)  # the head's init: the process's own RNG starts at a random seed
    model = VQAModel(backbone, len(vocab)).to(info.device)
    identity = {"settings": asdict(s), "backbone": backbone_id, "answers": vocab,
                "train_questions": [int(q["question_id"]) for q in train.questions]}
    finetune(model, train, index, s, info, run_dir, identity)
    preds = predict(model, evals, vocab, info, s.eval_batch_size, s.workers)
    result: dict[str, Any] = {
        "task": "vqa", "settings": asdict(s), "n_answers": len(vocab), "n_train": len(train.questions),
        "eval_split": evals.name, "n_eval": len(evals.questions),
        "train_curve": read_metrics(RunDir(run_dir).metrics),
        "missing_images": {"train": len(train.missing_images), evals.name: len(evals.missing_images)},
    }
    items: list[dict[str, object]] = []
    if evals.annotations:
        anns = [evals.annotations[int(q["question_id"])] for q in evals.questions
                if int(q["question_id"]) in evals.annotations]
        result["metrics"] = vqa_accuracy(preds, anns)
        items = question_scores(preds, anns)
        m = result["metrics"]
        if info.is_main:
            log.info("VQA %s accuracy: overall %.2f  %s", evals.name, m["overall"],
                     "  ".join(f"{t} {v:.2f}" for t, v in m["per_answer_type"].items()))
    predictions = [{"question_id": q, "answer": a} for q, a in sorted(preds.items())]
    return result, predictions, items
