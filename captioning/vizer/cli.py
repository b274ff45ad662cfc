"""`posmask vizer`: zero-label caption enhancement (ViZer) of the probe's captioner. A mapper from the captioner's
pooled hidden states to the frozen image features is trained on ground-truth pairs (GT) or on the captioner's own
captions (G); the captioner is then fine-tuned with LoRA on unlabeled images to pull its hidden states toward the
image through the frozen mapper. The report compares Base (CE), RL (SCST) and both ViZer variants
(`vizer_report`)."""
from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from pathlib import Path

from captioning.inputs import eval_inputs, probed_runs
from evaluation.core.defaults import SCENES_EVAL
from toolbox.errors import UserError
from trainer.run_dir import RUN_CONFIG, RunDir

HELP = "ViZer: improve the probe's captioner without caption labels (mapper + LoRA on unlabeled images); report"
DEFAULT_OUT = "report/vizer"
DEFAULT_UNLABELED = f"{SCENES_EVAL}/images"
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `posmask vizer`."""
    parser.add_argument("--run", required=True, help="a pre-trained run probed by `posmask probe-scst`: its preset "
                        "and shards, its ITC score (the CLIPScore analogue) and its SCST captioner (RL)")
    parser.add_argument("--captioner", help="the CE captioner's folder (default runs/captioner-PRESET)")
    parser.add_argument("--rl", help="the SCST captioner's folder (default RUN/eval/scst_itm when present; 'none': "
                        "no RL row)")
    parser.add_argument("--variant", nargs="+", default=["gt", "g"], help="gt, g or both (default both)")
    parser.add_argument("--width", type=int, default=256, help="mapper width of the main result (default 256)")
    parser.add_argument("--map-samples", type=int, default=40000, help="GT mapping pairs (default 40000; capped at "
                        "the shards' pairs)")
    parser.add_argument("--map-samples-g", type=int, default=10000, help="G mapping pairs (default 10000)")
    parser.add_argument("--grid-widths", type=int, nargs="+", default=[128, 256, 512, 1024],
                        help="Table 2's mapper widths (default 128 256 512 1024)")
    parser.add_argument("--no-grid", action="store_true", help="only the main width and size (no Table 2)")
    parser.add_argument("--unlabeled", default=DEFAULT_UNLABELED, help="unlabeled images: a folder of images or "
                        f"tag-shards output(s), captions ignored; evaluation images are left out (default "
                        f"{DEFAULT_UNLABELED})")
    parser.add_argument("--shards", help="tag-shards output(s) of the mapping pairs (default: the run's)")
    parser.add_argument("--data", default=SCENES_EVAL, help="evaluation images and references: a folder with "
                        f"captions.json and images/, or a COCO captions file with --images (default {SCENES_EVAL})")
    parser.add_argument("--images", help="image root of a --data captions file")
    parser.add_argument("--scenes", help="ground truth for the grounding table (default DATA/scenes.json if present)")
    parser.add_argument("--vision-weights", help="the fixed image encoder's weights (as probe-scst)")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"report folder (default {DEFAULT_OUT})")
    parser.add_argument("--mapper-lr", type=float, default=1e-3, help="mapper learning rate (default 1e-3)")
    parser.add_argument("--lora-lr", type=float, default=3e-4, help="LoRA learning rate (default 3e-4)")
    parser.add_argument("--lora-targets", default="text", help="where the adapters go: text = only the layers off the "
                        "image path (self-attention, MLP), all = every linear layer but the LM head, "
                        "image projection and cross-attention included (the old placement); default text")
    parser.add_argument("--eval-images", type=int, help="evaluation images (default all)")
    parser.add_argument("--device", help="torch device (default: cuda when present, else cpu)")
    parser.add_argument("--seed", type=int, default=0, help="seed of both stages (default 0)")


def _check(args: argparse.Namespace) -> None:
    from captioning.vizer.lora import TARGETS
    from captioning.vizer.mapper import VARIANTS

    unknown = [v for v in args.variant if v.lower() not in VARIANTS]
    if unknown:
        raise UserError(f"--variant {unknown[0]}: unknown; valid: {', '.join(VARIANTS)}")
    if args.lora_targets not in TARGETS:
        raise UserError(f"--lora-targets {args.lora_targets}: unknown; valid: {', '.join(TARGETS)}")
    for name in ("width", "map_samples", "map_samples_g", "eval_images"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1 (got {value})")
    if min(args.grid_widths) < 1 or args.mapper_lr <= 0 or args.lora_lr <= 0:
        raise UserError("--grid-widths, --mapper-lr and --lora-lr must be > 0")


def _captioners(args: argparse.Namespace, run_dir: Path, preset: str) -> tuple[Path, Path | None]:
    """The CE captioner's folder (UserError naming what to run when it holds none) and the RL one's, if any."""
    from captioning.captioner import CONFIG, WEIGHTS

    ce = Path(args.captioner or f"runs/captioner-{preset}")
    if not (ce / WEIGHTS).is_file() or not (ce / CONFIG).is_file():
        raise UserError(f"--run {run_dir}: no captioner at {ce}; run `make probe-scst RUN={run_dir}` first (or pass "
                        "--captioner DIR)")
    if args.rl == "none":
        return ce, None
    rl = Path(args.rl) if args.rl else RunDir(run_dir).eval.scst("itm")
    if not (rl / WEIGHTS).is_file():
        if args.rl:
            raise UserError(f"--rl {rl}: no captioner ({WEIGHTS})")
        log.warning("no SCST captioner at %s: the report has no RL row", rl)
        return ce, None
    return ce, rl


def run(args: argparse.Namespace) -> int:
    """Train or reuse the mappers and LoRA captioners, caption, score, write the report."""
    _check(args)
    probed = probed_runs([args.run])[0]
    preset = probed.record.preset if probed.record else None
    if preset is None:
        raise UserError(f"--run {args.run}: no run record ({RUN_CONFIG}) to tell its preset")
    ce, rl = _captioners(args, probed.path, preset)
    captions_json, image_root = eval_inputs(args.data, args.images)
    if not captions_json.is_file():
        raise UserError(f"--data: no {captions_json}")

    from captioning.data import frozen_encoder, shard_dirs
    from toolbox.devices import pick_device
    from captioning.vizer.pipeline import VizerConfig, add_itc, run_vizer
    from captioning.vizer.report import write_vizer_report

    shards = args.shards or probed.shards
    shard_dirs(shards)
    scenes = Path(args.scenes) if args.scenes else captions_json.parent / "scenes.json"
    if args.scenes and not scenes.is_file():
        raise UserError(f"--scenes {scenes}: no such file")
    device = pick_device(args.device)
    defaults = VizerConfig(Path(), Path(), "", "", Path(), Path())
    cfg = VizerConfig(out=Path(args.out), captioner=ce, shards=shards, unlabeled=args.unlabeled,
                      captions_json=captions_json, image_root=image_root,
                      variants=tuple(dict.fromkeys(v.lower() for v in args.variant)), width=args.width,
                      map_samples={"gt": args.map_samples, "g": args.map_samples_g},
                      grid_widths=tuple(args.grid_widths), grid=not args.no_grid, rl=rl, eval_limit=args.eval_images,
                      mapper=replace(defaults.mapper, lr=args.mapper_lr, seed=args.seed),
                      lora_stage=replace(defaults.lora_stage, lr=args.lora_lr, seed=args.seed),
                      lora=replace(defaults.lora, targets=args.lora_targets))
    result = run_vizer(cfg, frozen_encoder(preset, args.vision_weights), device)
    add_itc(result, probed.path, device)
    index = write_vizer_report(result, cfg.out, scenes if scenes.is_file() else None, str(probed.path))
    print(f"ViZer: {len(result['grid'])} mapper + LoRA cells in {result['seconds']:.0f} s; report: {index}")
    return 0
