"""`posmask study`: run a grid of pre-training runs, evaluate each, and report them together."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from evaluation.cli_report import add_report_options
from toolbox.errors import UserError
from trainer.engine.launch import add_launch_options

HELP = "pre-train, evaluate and report every run of a grid (grids/*.toml), resumably, on CPU, GPUs or Ray"
log = logging.getLogger("study")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `posmask study` (the Makefile's GRID, PRESET, SHARDS, SEEDS, GPUS, ... variables)."""
    add = parser.add_argument
    add("--grid", default="thesis", help="a grid in grids/ (thesis, demo, extensions) or a path to a TOML file")
    add("--out", help="study folder (default studies/GRID-PRESET); runs, logs and the report go there")
    add("--preset", choices=("thesis", "tiny"), help="model and training defaults for every run (default: the grid's)")
    add("--shards", help="tag-shards output(s), comma-separated (e.g. CC3M and COCO); default: the grid's")
    add("--seeds", type=int, default=1, help="seeds per entry (default 1); runs are NAME-seedK when > 1")
    add("--seed-from", type=int, help="run seeds number K.. of each entry, as NAME-seedK (a study in parts, e.g. one "
        "seed per session: merge their evidence with `posmask report --from-items A,B,...`)")
    add("--gpus", type=int, default=0, help="GPUs on this node (0: CPU)")
    add("--gpus-per-run", type=int, default=1, help="GPUs (or, with Ray on CPU, CPUs) per run (default 1)")
    add("--parallel", type=int, default=1, help="runs at once on CPU (default 1)")
    add("--max-steps", type=int, help="optimiser steps per run (overrides the grid)")
    add("--tasks", help="evaluation tasks, comma-separated (default: the grid's)")
    add("--data", help="evaluation data for every task (`posmask eval --data`); default: the scenes eval set")
    add("--images", help="image root(s) for every task (`posmask eval --images`)")
    add("--plan", action="store_true", help="train nothing: print every job (done or to run), the steps per run "
        "and the projected device-hours and wall time")
    add("--report-to", choices=("none", "tensorboard"), help="tensorboard: every run's pre-training and VQA "
        "fine-tune write TensorBoard events beside their metrics.jsonl (`tensorboard --logdir OUT` shows them all)")
    add("--samples-per-s", type=float, help="training samples per second per GPU for --plan's projection (default: "
        "the measured figure in docs/benchmarks.md, when it has one)")
    add_report_options(parser)
    add_launch_options(parser)  # several machines: the same study on each, every run spanning them all


def settings_from_args(args: argparse.Namespace):  # -> study.plan.Settings
    """Validated study settings."""
    import os

    from study.grid import grid_path
    from evaluation.cli_report import family_of
    from study.plan import Settings
    from trainer.run_dir import EVAL_TASKS
    from trainer.engine.launch import launch_from_args

    for name in ("seeds", "gpus_per_run", "parallel"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1 (got {getattr(args, name)})")
    if args.seed_from is not None and args.seed_from < 1:
        raise UserError(f"--seed-from must be >= 1 (got {args.seed_from})")
    if args.gpus < 0 or (args.gpus and args.gpus % args.gpus_per_run):
        raise UserError(f"--gpus {args.gpus} must be a multiple of --gpus-per-run {args.gpus_per_run}")
    if args.max_steps is not None and args.max_steps < 1:
        raise UserError(f"--max-steps must be >= 1 (got {args.max_steps})")
    tasks = None
    if args.tasks:
        tasks = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
        bad = [t for t in tasks if t not in EVAL_TASKS]
        if bad or not tasks:
            raise UserError(f"--tasks {args.tasks!r}: valid tasks are {', '.join(EVAL_TASKS)}")
    launch = launch_from_args(args, 1)  # checks the flags
    if launch.nnodes > 1 and os.environ.get("RAY_ADDRESS"):
        raise UserError("--nnodes > 1 runs the same study on every machine; with RAY_ADDRESS, Ray places the runs "
                        "instead: use one or the other")
    stem = grid_path(args.grid).stem
    out = Path(args.out or f"studies/{stem}" + (f"-{args.preset}" if args.preset else ""))
    return Settings(out=out.resolve(), seeds=args.seeds, seed_from=args.seed_from, preset=args.preset,
                    shards=args.shards, max_steps=args.max_steps, tasks=tasks, data=args.data, images=args.images,
                    gpus=args.gpus, gpus_per_run=args.gpus_per_run, parallel=args.parallel, reference=args.reference,
                    with_thesis=args.with_thesis, family=family_of(args), full_layout=args.full_layout or None,
                    samples_per_s=args.samples_per_s,
                    nnodes=launch.nnodes, node_rank=launch.node_rank,
                    master_addr=launch.master_addr, master_port=launch.master_port, report_to=args.report_to)


def run(args: argparse.Namespace) -> int:
    """Run the study and say where its report is."""
    from study.study import plan_study, run_study

    settings = settings_from_args(args)
    if args.plan:
        print("\n".join(plan_study(args.grid, settings)))
        return 0
    index = run_study(args.grid, settings)
    where = "node 0 writes the report: " if settings.follower else "report: "
    log.info("%s%s", where, index)
    print(f"{where}{index}")
    return 0
