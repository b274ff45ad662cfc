"""`posmask probe-scst`: which captions does a pre-trained run reward? A captioner over the frozen features of
one fixed image encoder is trained with cross-entropy on the tagged shards (shared by every probed run), then
fine-tuned with SCST on each run's ITM match probability (or ITC similarity); the report scores every
captioner with every run and describes what the captioners learned to say (`scst_report`)."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from captioning.inputs import eval_inputs, probed_runs
from evaluation.core.defaults import SCENES_EVAL
from toolbox.errors import UserError
from trainer.run_dir import RunDir

HELP = "probe a run with a captioner trained by SCST on its ITM (or ITC) score; report what it learned to say"
DEFAULT_OUT = "report/probe-scst"
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `posmask probe-scst`."""
    parser.add_argument("--run", nargs="+", required=True, metavar="RUN",
                        help="pre-trained run(s) to probe: an SCST captioner is trained on each one's score")
    parser.add_argument("--reward", choices=("itm", "itc"), default="itm",
                        help="itm (default): the ITM match probability; itc: the ITC cosine similarity")
    parser.add_argument("--scorers", nargs="*", default=[], metavar="RUN",
                        help="more runs that only score the captions (columns of Table 2)")
    parser.add_argument("--shards", help="tag-shards output(s) the captioner trains on (default: the first run's)")
    parser.add_argument("--data", default=SCENES_EVAL, help="evaluation images and references: a folder with "
                        f"captions.json (COCO format) and images/, or a COCO captions file with --images "
                        f"(default {SCENES_EVAL})")
    parser.add_argument("--images", help="image root of a --data captions file")
    parser.add_argument("--captioner", help="the CE captioner's folder (default runs/captioner-PRESET)")
    parser.add_argument("--vision-weights", help="the fixed image encoder's weights (default: tiny "
                        "runs/vision-tiny/vision.safetensors, thesis the ImageNet-21k ViT)")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"report folder (default {DEFAULT_OUT})")
    parser.add_argument("--ce-steps", type=int, default=1000, help="CE optimiser steps (default 1000)")
    parser.add_argument("--scst-steps", type=int, default=100, help="SCST optimiser steps (default 100)")
    parser.add_argument("--scst-lr", type=float, default=2e-4, help="SCST learning rate, constant (default 2e-4)")
    parser.add_argument("--scst-samples", type=int, default=5, help="sampled captions per image (default 5)")
    parser.add_argument("--scst-images", type=int, default=1000, help="training images SCST samples (default 1000)")
    parser.add_argument("--max-images", type=int, help="training images of the CE captioner (default all)")
    parser.add_argument("--eval-images", type=int, help="evaluation images (default all)")
    parser.add_argument("--examples", type=int, default=8, help="images in Table 3 (default 8)")
    parser.add_argument("--device", help="torch device (default: cuda when present, else cpu)")
    parser.add_argument("--seed", type=int, default=0, help="seed of both stages (default 0)")


def _check(args: argparse.Namespace) -> None:
    for name in ("ce_steps", "scst_steps", "scst_samples", "scst_images", "max_images", "eval_images", "examples"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1 (got {value})")
    if args.scst_lr <= 0:
        raise UserError(f"--scst-lr must be > 0 (got {args.scst_lr})")


def run(args: argparse.Namespace) -> int:
    """Train or reuse the captioners, evaluate them, write the report."""
    _check(args)
    probed = probed_runs(args.run)
    presets = {r.record.preset if r.record else None for r in probed}
    if len(presets) != 1 or None in presets:
        raise UserError("--run: every probed run needs its run record and the same preset (one captioner serves "
                        f"them all); got {sorted(map(str, presets))}")
    preset = presets.pop()
    scorers = probed_runs([str(r.path) for r in probed] + args.scorers)
    labels = {r.path: r.label if [x.label for x in scorers].count(r.label) == 1 else f"{r.label} ({r.path.name})"
              for r in scorers}  # Table 2's column of each run
    captions_json, image_root = eval_inputs(args.data, args.images)
    if not captions_json.is_file():
        raise UserError(f"--data: no {captions_json}")

    from captioning.data import frozen_encoder, shard_dirs
    from captioning.train import StageSettings, scst_defaults
    from toolbox.devices import pick_device
    from captioning.scst.evaluate import evaluate
    from captioning.scst.probe import ensure_scst
    from captioning.stages import ensure_ce
    from captioning.scst.report import CE, mean_score, write_report

    shards = args.shards or probed[0].shards
    shard_dirs(shards)  # before any work
    device = pick_device(args.device)
    encoder = frozen_encoder(preset, args.vision_weights)
    ce_dir = Path(args.captioner or f"runs/captioner-{preset}")
    records = {CE: ensure_ce(ce_dir, preset, encoder, shards, StageSettings(steps=args.ce_steps, seed=args.seed),
                             args.max_images, device)}
    captioners = {CE: ce_dir}
    trained_with = {}
    scst = scst_defaults(steps=args.scst_steps, lr=args.scst_lr, samples=args.scst_samples, seed=args.seed)
    for r in probed:
        name = f"SCST-{args.reward} ({labels[r.path]})"
        captioners[name] = RunDir(r.path).eval.scst(args.reward)
        records[name] = ensure_scst(captioners[name], ce_dir, r.path, args.reward, encoder, shards, scst,
                                    args.scst_images, device)
        trained_with[name] = (labels[r.path], args.reward)
    result = evaluate(captioners, trained_with, {v: k for k, v in labels.items()}, encoder, shards, captions_json,
                      image_root, args.eval_images, device)
    result.records = records
    index = write_report(result, Path(args.out), args.examples)
    for name, (scorer, kind) in trained_with.items():
        print(f"{name}: own {kind} reward on the evaluation images {mean_score(result, CE, scorer, kind):.1f} (CE) "
              f"-> {mean_score(result, name, scorer, kind):.1f} (SCST); trained in {records[name]['seconds']:.0f} s")
    print(f"report: {index}")
    return 0

