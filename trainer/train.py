"""The pre-training loop: DDP, on-device masking, MLM + ITC + ITM, metrics, checkpoints, resume."""
from __future__ import annotations

import contextlib
import inspect
import json
import logging
import math
import signal
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from shards.atomic import atomic_write_json
from shards.errors import UserError
from shards.tokenizer import check_same_vocab, load_tokenizer
from trainer.albef import MomentumQueue
from trainer.checkpoint import load_checkpoint, save_checkpoint, set_rng_state
from trainer.config import TrainConfig
from trainer.data import ShardStream, make_loader, open_shards, steps_per_epoch
from trainer.distributed import DistInfo, all_reduce_sum, is_dist
from trainer.masking import Masker, parse_mask_spec
from trainer.metrics import MetricsLog, flops_per_sample, peak_memory_mb, peak_tflops
from trainer.model import PosMaskModel, save_pretrained
from trainer.objective import Pretrainer
from trainer.plots import plot_losses

log = logging.getLogger(__name__)
RUN_CONFIG = "run_config.json"
MUST_MATCH = ("pos", "ratio", "preset", "batch_size", "albef", "mask_probs", "seed")
EXIT_INTERRUPTED = 143


def lr_at(step: int, cfg: TrainConfig, total: int) -> float:
    """Linear warm-up from warmup_lr to lr, then cosine down to min_lr."""
    warm = min(cfg.warmup_steps, max(1, total // 10))
    if step < warm:
        return cfg.warmup_lr + (cfg.lr - cfg.warmup_lr) * step / warm
    progress = min(1.0, (step - warm) / max(1, total - warm))
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))


def build_optimizer(model: nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """AdamW; no weight decay on norms, biases, the temperature and positional/class tokens."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        skip = p.ndim < 2 or name.endswith(("pos_embed", "cls_token", "reg_token"))
        (no_decay if skip else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.999), fused=device.type == "cuda")


def check_resumable(run_dir: Path, cfg: TrainConfig) -> None:
    """Refuse to resume a run dir made with different masking or model settings."""
    path = run_dir / RUN_CONFIG
    if not path.is_file():
        return
    old = json.loads(path.read_text(encoding="utf-8"))
    new = cfg.to_dict()
    def same(a: Any, b: Any) -> bool:
        return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)

    diff = [k for k in MUST_MATCH if not same(old.get(k), new.get(k))]
    if not same(old.get("model"), new["model"]):
        diff.append("model")
    if diff:
        raise UserError(f"{run_dir} holds a run with other settings ({', '.join(diff)}: "
                        f"{ {k: old.get(k) for k in diff if k != 'model'} }); use another --run or the same settings")


class StopFlag:
    """Set by SIGTERM; the loop checkpoints and exits at the next step boundary."""

    def __init__(self) -> None:
        self.stop = False
        self._previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.stop:  # a second SIGTERM: give up on the checkpoint and exit now
            raise SystemExit(EXIT_INTERRUPTED)
        self.stop = True

    def restore(self) -> None:
        signal.signal(signal.SIGTERM, self._previous)

    def agreed(self, device: torch.device) -> bool:
        """True when any rank was signalled (collective under DDP)."""
        if not is_dist():
            return self.stop
        flag = torch.tensor([float(self.stop)], device=device)
        return bool(all_reduce_sum(flag).item() > 0)


def train(cfg: TrainConfig, dist_info: DistInfo) -> int:
    """Run (or resume) pre-training into cfg.run; returns 0, or 143 when stopped by SIGTERM."""
    device, rank, world, main = dist_info.device, dist_info.rank, dist_info.world_size, dist_info.is_main
    run_dir = Path(cfg.run)
    shards = open_shards(cfg.shards)
    _, tok = load_tokenizer()
    check_same_vocab(shards.manifest, tok)
    cfg.model.vocab_size, cfg.model.pad_id = tok.vocab_size, tok.pad_id
    spec = parse_mask_spec(cfg.pos, cfg.ratio if cfg.pos.lower() != "none" else None)
    ckpt = load_checkpoint(run_dir)
    if ckpt is not None:
        check_resumable(run_dir, cfg)

    torch.manual_seed(cfg.seed)  # identical init on every rank
    model = PosMaskModel(cfg.model, vision_weights="random" if ckpt else cfg.vision_weights)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / RUN_CONFIG, cfg.to_dict())
    albef = MomentumQueue(model, cfg.momentum, cfg.queue_size, cfg.model.embed_dim) if cfg.albef else None
    module = Pretrainer(model, spec.mlm, albef).to(device)
    optimizer = build_optimizer(model, cfg, device)
    spe = steps_per_epoch(shards.total, world, cfg.batch_size)
    total = spe * cfg.epochs if cfg.max_steps is None else min(spe * cfg.epochs, cfg.max_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_at(s, cfg, total) / cfg.lr)
    torch.manual_seed(cfg.seed + 1000 * rank)  # per-rank randomness (masking, negatives, dropout)
    step, stats = 0, {"empty_mlm_batches": 0, "corrupt_samples": 0}
    if ckpt is not None:
        module.load_state_dict(ckpt["module"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        step, stats = ckpt["step"], ckpt["stats"]
        if ckpt["world_size"] != world or ckpt["workers"] != cfg.workers:
            log.warning("resuming with %d ranks x %d workers (was %d x %d): the data order will differ",
                        world, cfg.workers, ckpt["world_size"], ckpt["workers"])
        if len(ckpt["rng"]) == world:
            set_rng_state(ckpt["rng"][rank])
        log.info("resumed from %s at step %d", run_dir / "checkpoint.pt", step)
    if main:
        log.info("mask %s ratio %.2f | %d samples, %d steps/epoch x %d ranks x batch %d, %d steps total",
                 spec.name, spec.ratio, shards.total, spe, world, cfg.batch_size, total)

    net: nn.Module = module
    if is_dist():
        ddp = nn.parallel.DistributedDataParallel
        no_buffer_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(ddp).parameters
                          else {"broadcast_buffers": False})  # ALBEF queues are updated identically on all ranks
        net = ddp(module, device_ids=[device.index] if device.type == "cuda" else None,
                  find_unused_parameters=not spec.mlm, **no_buffer_sync)
    forward = torch.compile(net) if cfg.compile else net
    masker = Masker(spec, tok.mask_id, tok.vocab_size, cfg.mask_probs, device)
    cuda = device.type == "cuda"
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if cuda and cfg.amp else contextlib.nullcontext())
    image_tokens = (cfg.model.image_size // model.vision.patch_embed.patch_size[0]) ** 2 + 1
    flops = flops_per_sample(model, image_tokens, cfg.model.max_text_len, spec.mlm)
    peak = peak_tflops(device, cfg.peak_tflops)
    metrics = MetricsLog(run_dir / "metrics.jsonl", main, total)
    stop = StopFlag()
    check_every = 1 if not cuda else min(cfg.log_every, 10)
    interrupted = False
    module.train()

    window: dict[str, Any] = {}
    def reset_window() -> None:
        window.update(t0=time.perf_counter(), wait=0.0, steps=0, samples=0,
                      sums=torch.zeros(5, device=device), counts=torch.zeros(3, device=device))
    reset_window()
    worker_corrupt: dict[int, int] = {}
    base_corrupt = stats["corrupt_samples"]

    try:
        while step < total and not interrupted:
            epoch, start = divmod(step, spe)
            stream = ShardStream(shards.urls, rank, world, epoch, cfg.seed, cfg.batch_size, cfg.model.image_size,
                                 cfg.model.max_text_len, tok.pad_id, cfg.shuffle_buffer, cfg.crop_scale,
                                 skip_batches=start, pad_to=cfg.model.max_text_len if cfg.compile else None)
            batches = iter(make_loader(stream, cfg.workers, pin_memory=cuda))
            base_corrupt, worker_corrupt = base_corrupt + sum(worker_corrupt.values()), {}  # fresh workers
            for index in range(start, spe):
                if step >= total:
                    break
                t_wait = time.perf_counter()
                batch = next(batches)
                window["wait"] += time.perf_counter() - t_wait
                worker_corrupt[(index - start) % max(1, cfg.workers)] = int(batch.pop("corrupt"))
                batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                inputs = dict(pixels=batch["pixels"], ids=batch["ids"], attention_mask=batch["attention_mask"],
                              image_ids=batch["image_ids"])
                if spec.mlm:
                    masked = masker(batch["ids"], batch["pos"])
                    inputs.update(mlm_ids=masked.input_ids, mlm_labels=masked.labels)
                    window["counts"] += torch.stack([masked.n_masked, masked.n_words, (masked.n_masked == 0).long()])
                else:
                    window["counts"][1] += (batch["pos"] != 255).sum()
                if cfg.albef:  # schedules go in as tensors: torch.compile does not recompile per value
                    inputs["alpha"] = torch.tensor(cfg.alpha * min(1.0, step / spe), device=device)
                if cfg.hard_negative_warmup:
                    inputs["hardness"] = torch.tensor(min(1.0, step / cfg.hard_negative_warmup), device=device)
                with autocast:
                    out = forward(**inputs)
                optimizer.zero_grad(set_to_none=True)
                out["loss"].backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
                scheduler.step()
                step += 1
                window["steps"] += 1
                window["samples"] += batch["ids"].shape[0]
                window["sums"] += torch.stack([out[k].float() for k in ("mlm", "itc", "itm", "itm_acc", "temp")])

                if step % cfg.log_every == 0 or step == total:
                    stats["corrupt_samples"] = base_corrupt + sum(worker_corrupt.values())
                    record = _record(window, step, epoch, scheduler, grad_norm, stats, world, device, flops, peak)
                    metrics.write(record)
                    reset_window()
                if step % check_every == 0 and stop.agreed(device):
                    interrupted = True
                if interrupted or step % cfg.ckpt_every == 0 or step == total:
                    stats["corrupt_samples"] = base_corrupt + sum(worker_corrupt.values())
                    save_checkpoint(run_dir, _state(module, optimizer, scheduler, step, stats, world, cfg), main)
                if interrupted:
                    break
            del batches
    finally:
        stop.restore()
        metrics.close()
    if interrupted:
        log.warning("stopped by SIGTERM at step %d; run the same command again to resume", step)
        return EXIT_INTERRUPTED
    if main:
        if ckpt is not None and ckpt["step"] >= total:
            log.info("run already finished at step %d", total)
        save_pretrained(model, run_dir)
        plot_losses(run_dir / "metrics.jsonl", run_dir / "losses.png", title=f"{cfg.preset} {spec.name} {spec.ratio}")
        atomic_write_json(run_dir / "summary.json", {"steps": step, "mask": spec.name, "ratio": spec.ratio, **stats})
        log.info("done: %s (model.safetensors, config.json, losses.png)", run_dir)
    return 0


def _state(module: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, step: int,
           stats: dict[str, int], world: int, cfg: TrainConfig) -> dict[str, Any]:
    return {"module": module.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "step": step, "stats": dict(stats), "world_size": world, "workers": cfg.workers, "config": cfg.to_dict()}


def _record(window: dict[str, Any], step: int, epoch: int, scheduler: Any, grad_norm: torch.Tensor,
            stats: dict[str, int], world: int, device: torch.device, flops: float, peak: float | None
            ) -> dict[str, Any]:
    """One metrics.jsonl line, averaged over the logging window and over ranks (one host sync)."""
    sums = all_reduce_sum(window["sums"].clone()) / (window["steps"] * world)
    counts = all_reduce_sum(window["counts"].clone())
    empty = int(counts[2].item())
    stats["empty_mlm_batches"] += empty
    elapsed = max(time.perf_counter() - window["t0"], 1e-9)
    per_rank = window["samples"] / elapsed
    mlm, itc, itm, acc, temp = sums.tolist()
    record = {
        "step": step, "epoch": epoch, "lr": scheduler.get_last_lr()[0],
        "loss": mlm + itc + itm, "mlm": mlm, "itc": itc, "itm": itm, "itm_acc": acc, "temp": temp,
        "grad_norm": float(grad_norm), "masked_share": float(counts[0] / counts[1].clamp(min=1)),
        "masked_tokens": int(counts[0]), "empty_mlm_batches": stats["empty_mlm_batches"],
        "corrupt_samples": stats["corrupt_samples"],
        "samples_per_s": per_rank * world, "data_wait_share": window["wait"] / elapsed,
        "peak_mem_mb": peak_memory_mb(device), "time": time.time(),
    }
    if peak:
        record["mfu"] = flops * per_rank / (peak * 1e12)
    return record
