"""`posmask pretrain`: parse flags into a TrainConfig, launch torchrun when asked for several processes, train."""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from collections.abc import Callable
from typing import Any

from toolbox.errors import UserError
from trainer.engine.launch import add_launch_options

HELP = "pre-train the fused model with POS-conditional MLM + ITC + ITM on tagged shards (torchrun DDP)"
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `posmask pretrain` (the Makefile passes --pos --ratio --preset --shards --gpus --run ...)."""
    add = parser.add_argument
    add("--pos", help="UPOS class (DET), a set (NOUN,VERB), per-class ratios (NOUN:0.5,DET:0.3), 'random' or 'none'; "
                     "required unless --curriculum")
    add("--ratio", type=float, help="masking probability per candidate, in (0, 1]; default 0.15 for random, "
                                    "0.7 for POS classes; not allowed with none")
    add("--preset", choices=("thesis", "tiny"), default="thesis", help="model and training defaults")
    add("--shards", help="a finished `posmask tag-shards` output: a folder, or a URL of one (http(s)://, any fsspec "
                         "URL such as s3://bucket/out, or 'pipe:CMD' with {} for the file's path in the output); "
                         "several separated by :: or commas, brace-expanded (mixed in proportion to their sizes); "
                         "required unless --config")
    add("--config", metavar="FILE", help="a run config written by `posmask study` (TrainConfig as JSON), instead of "
                                         "the configuration flags (only --gpus, --nproc, --cpu and the machine flags "
                                         "may go with it)")
    add("--run", help="run directory (default runs/PRESET-POS-RATIO[-albef]); resumes when it holds a checkpoint")
    add("--gpus", type=int, default=1, help="GPUs on this node; >1 launches torchrun (NCCL)")
    add("--nproc", type=int, help="CPU processes; >1 launches torchrun with Gloo (tests, laptops)")
    add("--epochs", type=int)
    add("--max-steps", type=int, help="stop after this many optimiser steps")
    add("--batch-size", type=int, help="per process (thesis: 64)")
    add("--lr", type=float)
    add("--warmup-steps", type=int, help="linear warm-up steps, capped at 10%% of the run (thesis preset 500: the "
                                         "thesis's 'first 5 epochs' read as ALBEF's code does, 5 x 100 iterations)")
    add("--warmup-epochs", type=float, help="warm up over this many epochs instead (the literal reading: 5)")
    add("--hard-negative-warmup", type=int, metavar="STEPS",
        help="ramp the share of hard ITM negatives 0 -> 1 over STEPS, the rest uniform (thesis 0 = all hard)")
    add("--hard-negative-share", type=float, metavar="SHARE",
        help="ramp them in over this share of the run's steps instead (tiny 0.5: scales with --max-steps)")
    add("--vision-weights", help="local weights file, a timm hub name in the local HF cache, or 'random'")
    add("--albef", action="store_true", help="ALBEF momentum distillation (EMA 0.995, alpha 0.4) + ITC queue")
    add("--queue-size", type=int, help="ALBEF ITC queue length (thesis 65,536)")
    add("--seed", type=int)
    add("--workers", type=int, help="data-loader worker processes per rank")
    add("--decode", choices=("cpu", "gpu"), help="where the training images are decoded and cropped: cpu (the "
        "loader workers, default) or gpu (batched on the CUDA device; the workers only read tars; CPU without CUDA)")
    add("--shuffle-buffer", type=int)
    add("--log-every", type=int)
    add("--ckpt-every", type=int)
    add("--compile", action="store_true", help="torch.compile the model (GPU)")
    add("--peak-tflops", type=float, help="the accelerator's dense bf16 peak, for MFU in the metrics log "
                                          "(default: guessed from the GPU name)")
    add("--fp32", action="store_true", help="no bf16 autocast on GPU (reference timings)")
    add("--cpu", action="store_true", help="train on CPU even if a GPU is present")
    add("--report-to", choices=("none", "tensorboard"),
        help="tensorboard: also write TensorBoard event files beside metrics.jsonl "
             "(pip install 'posmask[tensorboard]')")
    add("--verify-shards", action="store_true", help="check every shard's sha256 against the manifest before "
                                                      "training (reads each shard once); sizes are always checked")
    add("--allow-damaged-shards", action="store_true",
        help="train on shards whose size or sha256 differs from the manifest's (one warning each)")
    add_reference_options(parser)
    add_launch_options(parser)
    add_masking_options(parser)


def add_masking_options(parser: argparse.ArgumentParser) -> None:
    """Masking beyond the thesis (trainer/README.md, "Masking spec"): whole words, budgets, fallback,
    curricula, loss weights."""
    g = parser.add_argument_group("masking variants")
    g.add_argument("--whole-word", action="store_true",
                   help="one draw per word (word.npy): all its wordpieces are masked together")
    g.add_argument("--budget", metavar="SHARE",
                   help="frequency-matched masking: each caption masks SHARE of its word tokens in expectation, "
                        "spread over its candidates (capped at all of them); replaces --ratio")
    g.add_argument("--fallback", metavar="none|random",
                   help="random: a caption with no candidate gets random 15%% masking (default none)")
    g.add_argument("--curriculum", metavar="STAGES",
                   help="stages of equal length, each a POS spec, e.g. 'DET>DET+NOUN>DET+NOUN+VERB'; "
                        "'DET@0.3>NOUN' ends the first stage at 30%% of the steps; replaces --pos")
    g.add_argument("--loss-weights", metavar="WEIGHTS",
                   help="weights of mlm, itc, itm: fixed 'mlm=1,itc=1,itm=1' or a linear ramp over the run "
                        "'mlm=0.2~1.0' (default 1 each)")


def add_reference_options(parser: argparse.ArgumentParser) -> None:
    """Choices where posmask and ALBEF's code differ (trainer/README.md, "Differences from ALBEF")."""
    g = parser.add_argument_group("reference-compatible options")
    g.add_argument("--augment", choices=("crop", "albef"),
                   help="crop (default): RandomResizedCrop at the preset's scale (thesis 0.5-1, tiny 0.8-1); albef: "
                        "ALBEF's pre-training augmentation, RandomResizedCrop 0.2-1 + horizontal flip + RandAugment")
    g.add_argument("--decay-groups", choices=("posmask", "albef"),
                   help="parameters without weight decay; posmask (default): 0-d and 1-d tensors and ViT's "
                        "pos_embed/cls_token; albef: 1-d tensors and biases only")
    g.add_argument("--mlm-mean", choices=("global", "rank"),
                   help="MLM loss across ranks; global (default): every masked token of the global batch weighs "
                        "the same; rank: mean per rank, then DDP's mean (ALBEF)")


RUNNER_OPTIONS = ("gpus", "nproc", "cpu", "config", "nnodes", "node_rank", "master_addr", "master_port")
"""Where a run's processes run, not what it computes: what may go with --config (set per run by a study)."""


def option_defaults(add: Callable[[argparse.ArgumentParser], None] | None = None) -> dict[str, Any]:
    """Every option of a subcommand (default: `posmask pretrain`) by dest name, with its default."""
    parser = argparse.ArgumentParser(add_help=False)
    (add or add_arguments)(parser)
    return vars(parser.parse_args([]))


def build_config(args: argparse.Namespace):  # -> trainer.config.TrainConfig
    """The run record these flags describe: parsed, resolved against the preset and checked (nothing runs;
    `posmask study` builds each run's config with it)."""
    from trainer.config import preset_config
    from trainer.masking.loss_weights import parse_loss_weights
    from trainer.masking.spec import parse_mask_spec

    if not args.shards:
        raise UserError("--shards is required (a `posmask tag-shards` output), unless --config gives the run")

    spec = parse_mask_spec(args.pos, args.ratio, whole_word=args.whole_word, budget=args.budget,
                           fallback=args.fallback, curriculum=args.curriculum)
    loss_weights = parse_loss_weights(args.loss_weights, spec.mlm)
    cfg = preset_config(
        args.preset, mask=spec, shards=args.shards, run=args.run, epochs=args.epochs,
        max_steps=args.max_steps, batch_size=args.batch_size, lr=args.lr, warmup_steps=args.warmup_steps,
        warmup_epochs=args.warmup_epochs,
        hard_negative_warmup=args.hard_negative_warmup,
        hard_negative_share=args.hard_negative_share,
        vision_weights=args.vision_weights, albef=args.albef or None, queue_size=args.queue_size, seed=args.seed,
        workers=args.workers, shuffle_buffer=args.shuffle_buffer, log_every=args.log_every,
        ckpt_every=args.ckpt_every, compile=args.compile or None, amp=False if args.fp32 else None,
        loss_weights=loss_weights,
        peak_tflops=args.peak_tflops, augment=args.augment, decay_groups=args.decay_groups, mlm_mean=args.mlm_mean,
        decode=args.decode, report_to=args.report_to, verify_shards=args.verify_shards or None,
        allow_damaged_shards=args.allow_damaged_shards or None)
    for name in ("epochs", "max_steps", "batch_size", "log_every", "ckpt_every", "queue_size"):
        value = getattr(cfg, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1 (got {value})")
    if args.workers is not None and args.workers < 0:
        raise UserError("--workers must be >= 0")
    if args.warmup_epochs is not None and (args.warmup_steps is not None or args.warmup_epochs < 0):
        raise UserError("--warmup-epochs is a number >= 0 and replaces --warmup-steps; give one of them")
    if args.hard_negative_warmup is not None:
        if args.hard_negative_share is not None or args.hard_negative_warmup < 0:
            raise UserError("--hard-negative-warmup is a number of steps >= 0 and replaces --hard-negative-share; "
                            "give one of them")
        cfg = dataclasses.replace(cfg, hard_negative_share=None)  # steps given: the preset's share is not used
    return cfg


def config_of(args: argparse.Namespace):  # -> trainer.config.TrainConfig
    """The run's config: the --config file as written (nothing else may configure the run then), or the flags."""
    from trainer.config import TrainConfig

    if args.config is None:
        return build_config(args)
    defaults = option_defaults()
    given = sorted(k for k, v in vars(args).items() if k in defaults and k not in RUNNER_OPTIONS
                   and v != defaults[k])
    if given:
        raise UserError(f"--config {args.config} gives the whole run; drop --{given[0].replace('_', '-')}")
    return TrainConfig.load(args.config)


def run(args: argparse.Namespace) -> int:
    """Validate, maybe relaunch under torchrun, then train."""
    import torch

    from toolbox.devices import pick_device
    from trainer.engine.distributed import setup, teardown
    from trainer.engine.launch import launch_from_args, launch_torchrun, under_torchrun
    from trainer.train import train

    cfg = config_of(args)  # fail fast, before any launch
    cuda = pick_device("cpu" if args.cpu else None).type == "cuda"
    if args.gpus < 1:
        raise UserError("--gpus must be >= 1")
    if args.gpus > 1 and not cuda:
        raise UserError(f"--gpus {args.gpus} but no CUDA GPU is visible; use --nproc N for CPU processes")
    if args.gpus > 1 and cuda and args.gpus > torch.cuda.device_count():
        raise UserError(f"--gpus {args.gpus} but only {torch.cuda.device_count()} GPUs are visible")
    launch = launch_from_args(args, args.gpus if cuda else (args.nproc or 1))
    if launch.multiprocess and not under_torchrun():
        return launch_torchrun(launch, args.argv)
    from toolbox.urls import is_remote
    from trainer.data.stream import split_outputs

    missing = [p for p in split_outputs(cfg.shards) if not is_remote(p) and not os.path.isdir(p)]
    if missing:
        raise UserError(f"--shards {missing[0]}: no such directory (run `make tag-shards` first)")
    info = setup(cuda)
    try:
        return train(cfg, info)
    finally:
        teardown()
