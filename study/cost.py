"""What a study will cost, before it runs (`posmask study --plan`): every job and whether it is done, the steps of
each run from its shards' sizes, epochs and ranks, and the device-hours and wall time its pre-training needs at a
given throughput (the command line's, or the one measured in docs/benchmarks.md, labelled as such)."""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from study.plan import Job, Settings
from toolbox.errors import UserError

BENCHMARKS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
MEASURED = re.compile(r"<!--\s*samples_per_s\s+preset=(\w+)\s+value=([0-9.]+)\s+device=\"([^\"]+)\"\s*-->")
"""How docs/benchmarks.md records a measured training throughput (samples/s per GPU), e.g.
<!-- samples_per_s preset=thesis value=2345 device="NVIDIA H100 80GB HBM3" -->"""


@dataclass(frozen=True)
class Throughput:
    samples_per_s: float  # per GPU (per process on CPU)
    source: str


def measured_throughput(preset: str, path: Path = BENCHMARKS) -> Throughput | None:
    """The throughput docs/benchmarks.md records for `preset` on a GPU, or None."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    for name, value, device in MEASURED.findall(text):
        if name == preset:
            return Throughput(float(value), f"measured on {device} ({path.name})")
    return None


def ranks(settings: Settings) -> int:
    """Processes per run: GPUS_PER_RUN on each of the nodes on GPUs, one on CPU."""
    return (settings.gpus_per_run if settings.gpus else 1) * settings.nnodes


def slots(settings: Settings) -> int:
    """Runs at once."""
    return max(1, settings.gpus // settings.gpus_per_run) if settings.gpus else settings.parallel


def run_steps(job: Job, world: int) -> tuple[int, int]:
    """(samples per epoch, optimiser steps) of a job's run, as pre-training will count them."""
    from trainer.data.stream import open_shards, steps_per_epoch

    config = job.config
    total = open_shards(config.shards).total
    spe = steps_per_epoch(total, world, config.batch_size)
    steps = spe * config.epochs if config.max_steps is None else min(spe * config.epochs, config.max_steps)
    return total, steps


def step_status(job: Job) -> list[str]:
    """Each step's kind and whether it is done (skipped when the study runs) or still to run."""
    from study.steps import is_done

    out = []
    for step in job.steps:
        try:
            state = "done" if is_done(job, step) else "to run"
        except UserError as err:
            state = f"refused: {err}"
        out.append(f"{step.kind} {state}")
    return out


def plan_lines(jobs: Sequence[Job], settings: Settings) -> list[str]:
    """The plan as printed lines (nothing is trained)."""
    world = ranks(settings)
    presets = {j.config.preset for j in jobs}
    throughput = (Throughput(settings.samples_per_s, "given with --samples-per-s") if settings.samples_per_s
                  else measured_throughput(next(iter(presets))) if len(presets) == 1 and settings.gpus else None)
    lines = [f"{len(jobs)} runs, {world} process(es) per run, {slots(settings)} at once"]
    seconds_left, device_left, runs_left = 0.0, 0.0, 0
    for job in jobs:
        samples, steps = run_steps(job, world)
        status = step_status(job)
        pending = not status[0].startswith("pretrain done")
        line = (f"{job.name}: {steps} steps x {world} x batch {job.config.batch_size} "
                f"({samples} samples per epoch); " + ", ".join(status))
        if throughput is not None:
            seconds = steps * job.config.batch_size / throughput.samples_per_s  # every rank at the per-GPU rate
            line += f"; pre-training {seconds / 3600:.2f} h on {world} device(s)"
            if pending:
                seconds_left += seconds
                device_left += seconds * world
        runs_left += pending
        lines.append(line)
    if throughput is None:
        lines.append("No projection: give --samples-per-s (samples/s per GPU), or record a measured figure in "
                     "docs/benchmarks.md (tests/benchmarks/gpu_check.sh).")
    else:
        lines.append(f"Pre-training left: {runs_left} runs, {device_left / 3600:.1f} device-hours, about "
                     f"{seconds_left / slots(settings) / 3600:.1f} h of wall time with {slots(settings)} at once, at "
                     f"{throughput.samples_per_s:g} samples/s per GPU ({throughput.source}; linear scaling "
                     "assumed). Evaluation not included (VQA fine-tuning dominates it).")
    return lines
