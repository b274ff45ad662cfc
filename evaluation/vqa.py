"""VQA v2 fine-tuning as classification on the fused [CLS] (thesis Tables 4.3, 4.5).

A two-layer MLP head over an answer vocabulary (the standard 3,129 answers or the top-K training
answers) is trained with soft-score targets (binary cross-entropy, as UNITER/LXMERT), together with
the whole pre-trained model. Thesis settings: batch 32, AdamW lr 2e-5, weight decay 0.02, cosine
schedule over 8 epochs after 1 warm-up epoch. Runs under torchrun (DDP, one process per GPU); the
evaluation split is predicted by all ranks and gathered on rank 0, which scores it with the official
accuracy and writes the predictions in the official results format `[{question_id, answer}]`.
"""
from __future__ import annotations

import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from evaluation.common import autocast, default_workers, image_transform, load_pixels, tokenize
from evaluation.vqa_data import VQASplit, soft_targets
from evaluation.vqa_metric import vqa_accuracy

log = logging.getLogger(__name__)
UNUSED: frozenset[str] = frozenset({"itm_head", "vision_proj", "text_proj", "temp", "mlm_head"})


@dataclass
class VQASettings:
    """Fine-tuning hyper-parameters (defaults: the thesis's)."""

    epochs: float = 8.0
    warmup_epochs: float = 1.0
    batch_size: int = 32  # per process
    lr: float = 2e-5
    head_lr_mult: float = 1.0
    weight_decay: float = 0.02
    min_lr: float = 0.0
    grad_clip: float = 5.0
    seed: int = 42
    workers: int | None = None
    eval_batch_size: int = 64


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


def distributed() -> tuple[int, int]:
    """(rank, world size); initialises the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warm-up to 1, then cosine decay to `min_ratio`."""
    if step < warmup:
        return (step + 1) / max(warmup, 1)
    progress = (step - warmup) / max(total - warmup, 1)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def make_optimizer(model: VQAModel, s: VQASettings, device: torch.device) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases, norms and embeddings-like 1-d parameters; head lr x mult."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        key = (name.startswith("head."), p.ndim >= 2)
        groups.setdefault(key, []).append(p)
    params = [{"params": ps, "weight_decay": s.weight_decay if decay else 0.0,
               "lr": s.lr * (s.head_lr_mult if head else 1.0), "base_lr": s.lr * (s.head_lr_mult if head else 1.0)}
              for (head, decay), ps in groups.items()]
    kwargs = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(params, betas=(0.9, 0.999), **kwargs)


def finetune(model: VQAModel, train: VQASplit, index: dict[str, int], s: VQASettings,
             device: torch.device) -> list[dict[str, float]]:
    """Fine-tune in place; returns the logged loss curve (rank 0)."""
    rank, world = distributed()
    torch.manual_seed(s.seed + rank)
    random.seed(s.seed + rank)
    transform, size = image_transform(model.backbone)
    data = QuestionImages(train, transform, size, index)
    sampler = DistributedSampler(data, shuffle=True, seed=s.seed) if world > 1 else None
    generator = torch.Generator().manual_seed(s.seed)
    workers = default_workers() if s.workers is None else s.workers
    loader = DataLoader(data, batch_size=s.batch_size, shuffle=sampler is None, sampler=sampler,
                        generator=generator, num_workers=workers, collate_fn=collate, drop_last=False,
                        pin_memory=device.type == "cuda", persistent_workers=workers > 0)
    steps_per_epoch = len(loader)
    total = max(1, int(round(s.epochs * steps_per_epoch)))
    warmup = int(round(s.warmup_epochs * steps_per_epoch))
    model.train()
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                                  find_unused_parameters=True)
    opt = make_optimizer(model, s, device)
    max_len = int(model.backbone.config.max_text_len)
    n_answers = len(index)
    curve: list[dict[str, float]] = []
    step, epoch, start = 0, 0, time.time()
    bar = tqdm(total=total, desc="VQA fine-tune", unit="step", disable=rank != 0)
    while step < total:
        if sampler is not None:
            sampler.set_epoch(epoch)
        for _, pixels, questions, targets in loader:
            if step >= total:
                break
            factor = lr_factor(step, warmup, total, s.min_lr / s.lr if s.lr else 0.0)
            for g in opt.param_groups:
                g["lr"] = g["base_lr"] * factor
            ids, mask = tokenize(questions, max_len, device)
            target = dense_targets(targets, n_answers, device)
            with autocast(device):
                logits = net(pixels.to(device, non_blocking=True), ids, mask)
            loss = F.binary_cross_entropy_with_logits(logits.float(), target, reduction="mean") * n_answers
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if s.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)
            opt.step()
            step += 1
            bar.update(1)
            if step % 10 == 0 or step == total:
                curve.append({"step": step, "epoch": step / steps_per_epoch, "loss": float(loss.detach()),
                              "lr": s.lr * factor})
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
        epoch += 1
    bar.close()
    log.info("VQA fine-tuning: %d steps (%d per epoch) in %.0f s", total, steps_per_epoch, time.time() - start)
    model.eval()
    return curve


@torch.no_grad()
def predict(model: VQAModel, split: VQASplit, vocab: list[str], device: torch.device, batch_size: int = 64,
            workers: int | None = None) -> dict[int, str]:
    """{question_id: answer} for a split; all ranks predict a share, rank 0 gets the union."""
    rank, world = distributed()
    transform, size = image_transform(model.backbone)
    data = QuestionImages(split, transform, size, None)
    indices = list(range(rank, len(data), world))
    subset = torch.utils.data.Subset(data, indices)
    workers = default_workers() if workers is None else workers
    loader = DataLoader(subset, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=collate)
    max_len = int(model.backbone.config.max_text_len)
    model.eval()
    preds: dict[int, str] = {}
    for idx, pixels, questions, _ in tqdm(loader, desc=f"VQA predict {split.name}", unit="batch", disable=rank != 0):
        ids, mask = tokenize(questions, max_len, device)
        with autocast(device):
            logits = model(pixels.to(device, non_blocking=True), ids, mask)
        best = logits.float().argmax(dim=1).cpu().tolist()
        for i, a in zip(idx.tolist(), best):
            preds[int(split.questions[i]["question_id"])] = vocab[a]
    if world > 1:
        gathered: list[Any] = [None] * world
        dist.all_gather_object(gathered, preds)
        preds = {k: v for part in gathered for k, v in part.items()}
    return preds


def run_vqa(backbone: nn.Module, train: VQASplit, evals: VQASplit, vocab: list[str], s: VQASettings,
            device: torch.device) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Fine-tune, predict the evaluation split, score it when annotated. Returns (result, predictions)."""
    index = {a: i for i, a in enumerate(vocab)}
    covered = [bool(soft_targets(train.annotations.get(int(q["question_id"]), {}), index)) for q in train.questions]
    log.info("VQA: %d train / %d %s questions, %d answers (%.1f%% of training questions have one in the list)",
             len(train.questions), len(evals.questions), evals.name, len(vocab), 100 * np.mean(covered or [0]))
    model = VQAModel(backbone, len(vocab)).to(device)
    curve = finetune(model, train, index, s, device)
    preds = predict(model, evals, vocab, device, s.eval_batch_size, s.workers)
    result: dict[str, Any] = {
        "task": "vqa", "settings": asdict(s), "n_answers": len(vocab), "n_train": len(train.questions),
        "eval_split": evals.name, "n_eval": len(evals.questions), "train_curve": curve,
        "missing_images": {"train": len(train.missing_images), evals.name: len(evals.missing_images)},
    }
    if evals.annotations:
        anns = [evals.annotations[int(q["question_id"])] for q in evals.questions
                if int(q["question_id"]) in evals.annotations]
        result["metrics"] = vqa_accuracy(preds, anns)
        m = result["metrics"]
        if distributed()[0] == 0:
            log.info("VQA %s accuracy: overall %.2f  %s", evals.name, m["overall"],
                     "  ".join(f"{t} {v:.2f}" for t, v in m["per_answer_type"].items()))
    predictions = [{"question_id": q, "answer": a} for q, a in sorted(preds.items())]
    return result, predictions
