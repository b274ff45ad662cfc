"""`posmask pretrain`: parse flags into a TrainConfig, launch torchrun when asked for several processes, train."""
from __future__ import annotations

import argparse
import logging
import os

from shards.errors import UserError

HELP = "pre-train the fused model with POS-conditional MLM + ITC + ITM on tagged shards (torchrun DDP)"
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `posmask pretrain` (the Makefile passes --pos --ratio --preset --shards --gpus --run ...)."""
    add = parser.add_argument
    add("--pos", required=True, help="UPOS class (DET), a set (NOUN,VERB), 'random' or 'none'")
    add("--ratio", type=float, help="masking probability per candidate, in (0, 1]; default 0.15 for random, "
                                    "0.7 for POS classes; not allowed with none")
    add("--preset", choices=("thesis", "tiny"), default="thesis", help="model and training defaults")
    add("--shards", required=True, help="a finished `posmask tag-shards` output directory")
    add("--run", help="run directory (default runs/PRESET-POS-RATIO[-albef]); resumes when it holds a checkpoint")
    add("--gpus", type=int, default=1, help="GPUs on this node; >1 launches torchrun (NCCL)")
    add("--nproc", type=int, help="CPU processes; >1 launches torchrun with Gloo (tests, laptops)")
    add("--epochs", type=int)
    add("--max-steps", type=int, help="stop after this many optimiser steps")
    add("--batch-size", type=int, help="per process (thesis: 64)")
    add("--lr", type=float)
    add("--warmup-steps", type=int)
    add("--hard-negative-warmup", type=int, metavar="STEPS",
        help="ramp the share of hard ITM negatives 0 -> 1 over STEPS, the rest uniform "
             "(thesis 0 = all hard, tiny 1000)")
    add("--vision-weights", help="local weights file, a timm hub name in the local HF cache, or 'random'")
    add("--albef", action="store_true", help="ALBEF momentum distillation (EMA 0.995, alpha 0.4) + ITC queue")
    add("--queue-size", type=int, help="ALBEF ITC queue length (thesis 65,536)")
    add("--seed", type=int)
    add("--workers", type=int, help="data-loader worker processes per rank")
    add("--shuffle-buffer", type=int)
    add("--log-every", type=int)
    add("--ckpt-every", type=int)
    add("--compile", action="store_true", help="torch.compile the model (GPU)")
    add("--peak-tflops", type=float, help="the accelerator's dense bf16 peak, for MFU in metrics.jsonl "
                                          "(default: guessed from the GPU name)")
    add("--fp32", action="store_true", help="no bf16 autocast on GPU (reference timings)")
    add("--cpu", action="store_true", help="train on CPU even if a GPU is present")


def run(args: argparse.Namespace) -> int:
    """Validate, maybe relaunch under torchrun, then train."""
    import torch

    from trainer.config import preset_config
    from trainer.distributed import launch_torchrun, setup, teardown, under_torchrun
    from trainer.masking import parse_mask_spec
    from trainer.train import train

    spec = parse_mask_spec(args.pos, args.ratio)  # fail fast, before any launch
    cuda = torch.cuda.is_available() and not args.cpu
    if args.gpus < 1:
        raise UserError("--gpus must be >= 1")
    if args.gpus > 1 and not cuda:
        raise UserError(f"--gpus {args.gpus} but no CUDA GPU is visible; use --nproc N for CPU processes")
    if args.gpus > 1 and cuda and args.gpus > torch.cuda.device_count():
        raise UserError(f"--gpus {args.gpus} but only {torch.cuda.device_count()} GPUs are visible")
    nproc = args.gpus if cuda else (args.nproc or 1)
    if nproc > 1 and not under_torchrun():
        return launch_torchrun(nproc, args.argv)
    if not os.path.isdir(args.shards):
        raise UserError(f"--shards {args.shards}: no such directory (run `make tag-shards` first)")
    cfg = preset_config(
        args.preset, mask=spec, shards=args.shards, run=args.run, epochs=args.epochs,
        max_steps=args.max_steps, batch_size=args.batch_size, lr=args.lr, warmup_steps=args.warmup_steps,
        hard_negative_warmup=args.hard_negative_warmup,
        vision_weights=args.vision_weights, albef=args.albef or None, queue_size=args.queue_size, seed=args.seed,
        workers=args.workers, shuffle_buffer=args.shuffle_buffer, log_every=args.log_every,
        ckpt_every=args.ckpt_every, compile=args.compile or None, amp=False if args.fp32 else None,
        peak_tflops=args.peak_tflops)
    for name in ("epochs", "max_steps", "batch_size", "log_every", "ckpt_every", "queue_size"):
        value = getattr(cfg, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1 (got {value})")
    if args.workers is not None and args.workers < 0:
        raise UserError("--workers must be >= 0")
    info = setup(cuda)
    try:
        return train(cfg, info)
    finally:
        teardown()
