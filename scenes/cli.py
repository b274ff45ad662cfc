"""`posmask make-scenes`: generate the built-in synthetic sample (training + held-out evaluation sets)."""
from __future__ import annotations

import argparse
import logging

HELP = "generate the built-in synthetic scenes: training captions (COCO format) and held-out eval sets"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `posmask make-scenes`."""
    parser.add_argument("--out", required=True, help="folder to generate into (e.g. data/scenes)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed, same bytes (default 0)")
    parser.add_argument("--train-images", type=int, default=None,
                        help="training images, 5 captions each (default 4000)")
    parser.add_argument("--eval-images", type=int, default=None,
                        help="held-out images for retrieval, VALSE pieces and VQA val (default 200)")
    parser.add_argument("--vqa-train-images", type=int, default=None,
                        help="held-out images for VQA fine-tuning questions (default 1000)")
    parser.add_argument("--overwrite", action="store_true",
                        help="regenerate when OUT holds scenes made with other settings")


def run(args: argparse.Namespace) -> int:
    """Generate (or confirm) the scenes folder and print where its parts are."""
    from pathlib import Path

    from scenes.generate import ensure_scenes

    root = Path(args.out)
    captions, images = ensure_scenes(
        root, args.seed, train_images=args.train_images, eval_images=args.eval_images,
        vqa_train_images=args.vqa_train_images, overwrite=args.overwrite, strict_seed=True,
    )
    log.info("training captions: %s (images in %s); evaluation sets: %s; see %s", captions, images,
             root / "eval", root / "README.md")
    return 0
