"""`posmask vision-init`: supervised start for the tiny preset's image encoder (see trainer.vision_init)."""
from __future__ import annotations

import argparse
import logging

HELP = "train the tiny ViT to recognise the scenes' object kinds (the tiny stand-in for ImageNet weights)"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `posmask vision-init`."""
    parser.add_argument("--scenes", required=True, help="a `posmask make-scenes` folder (only train/ is read)")
    parser.add_argument("--out", required=True, help="output folder for vision.safetensors (e.g. runs/vision-tiny)")
    parser.add_argument("--steps", type=int, default=1000, help="optimiser steps (default 1000, 3-5 min on 2 cores)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per step (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--reuse", help="a complete vision init to copy instead of training when its record names "
                        "the same config, scenes and model (e.g. the committed scenes/vision-tiny); otherwise train")


def run(args: argparse.Namespace) -> int:
    """Train (or reuse) and say where the weights are and how well the held-out scenes are classified."""
    from pathlib import Path

    from toolbox.errors import UserError
    from trainer.vision_init import WEIGHTS, VisionInitConfig, ensure_vision_init

    if args.steps < 1 or args.batch_size < 1:
        raise UserError("--steps and --batch-size must be positive")
    out = Path(args.out)
    config = VisionInitConfig(scenes=str(Path(args.scenes)), steps=args.steps, batch_size=args.batch_size,
                              seed=args.seed)
    record = ensure_vision_init(config, out, Path(args.reuse) if args.reuse else None)
    held = record["held_out"]
    log.info("vision init: %s (held-out scenes: %.1f %% of labels right, %.1f %% exactly right); "
             "use it with `posmask pretrain --preset tiny --vision-weights %s`", out / WEIGHTS,
             100 * held["label_accuracy"], 100 * held["exact_match"], out / WEIGHTS)
    return 0
