"""From a grid and the command line to jobs: one job per entry and seed, each a pre-training step and one
evaluation step per task, each step a `posmask` command line."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluation.core.defaults import DEFAULT_REFERENCE
from evaluation.report.study_tables import Family
from study.grid import Entry, Grid, pretrain_command, to_argv
from toolbox.errors import UserError
from trainer.config import DEFAULT_SEED, TrainConfig
from trainer.run_dir import EVAL_TASKS

PLANS_DIR = "plans"  # OUT/plans/NAME.json: each run's config, as `posmask pretrain --config` reads it


@dataclass(frozen=True)
class Settings:
    """What the study command line says (None: the grid or the preset decides)."""

    out: Path
    seeds: int = 1
    seed_from: int | None = None  # run seeds number seed_from.. of each entry (a study in parts); None: 1..
    preset: str | None = None
    shards: str | None = None
    max_steps: int | None = None
    tasks: tuple[str, ...] | None = None
    data: str | None = None
    images: str | None = None
    gpus: int = 0  # GPUs on this node (0: CPU)
    gpus_per_run: int = 1
    parallel: int = 1  # runs at once on CPU
    reference: str = DEFAULT_REFERENCE
    with_thesis: bool = False
    family: Family = field(default_factory=Family)  # how the report tests its tables
    full_layout: bool | None = None  # every row of the thesis's tables (None: for the thesis grid only)
    samples_per_s: float | None = None  # per GPU, for --plan's projection (None: docs/benchmarks.md's measurement)
    nnodes: int = 1  # several machines: every run spans them all (the same study on each, NODE_RANK each)
    node_rank: int = 0
    master_addr: str | None = None
    master_port: int | None = None
    report_to: str | None = None  # "tensorboard": every run's pre-training and VQA fine-tune write events

    @property
    def follower(self) -> bool:
        """A node other than 0 of a multi-node study: it joins the distributed steps and waits for the rest."""
        return self.node_rank > 0


@dataclass(frozen=True)
class Step:
    kind: str  # "pretrain" or "eval:TASK"
    argv: list[str]  # the posmask command line, without the program
    distributed: bool = False  # runs on every node of a multi-node study (pre-training, VQA fine-tuning)
    launch: tuple[str, ...] = ()  # this node's torchrun rendezvous flags (not part of what the step computes)
    config: TrainConfig | None = None  # pre-training: the run's config, written to `config_path` before it runs
    config_path: Path | None = None


@dataclass(frozen=True)
class Job:
    """One run of the study: an entry at one seed."""

    name: str
    entry: str
    seed: int
    run_dir: Path
    steps: list[Step] = field(default_factory=list)

    @property
    def config(self) -> TrainConfig:
        """The run's config (its pre-training step's)."""
        return next(s.config for s in self.steps if s.config is not None)


def pretrain_options(entry: Entry, settings: Settings) -> dict[str, Any]:
    """The entry's pretrain options with the command line's overrides (the command line wins)."""
    overrides = {"preset": settings.preset, "shards": settings.shards, "max_steps": settings.max_steps,
                 "report_to": settings.report_to}
    return {**entry.options, **{k: v for k, v in overrides.items() if v is not None}}


def seeds_of(entry: Entry, settings: Settings) -> list[tuple[int, int]]:
    """(number, seed) of each run of the entry: numbers 1..SEEDS, or SEED_FROM.. for a study in parts, whose runs are
    then the same as the whole study's runs of those numbers (seed = the entry's seed + number - 1)."""
    base = int(entry.options.get("seed", DEFAULT_SEED))
    first = settings.seed_from or 1
    return [(k, base + k - 1) for k in range(first, first + settings.seeds)]


def run_config(grid: Grid, entry: Entry, options: dict[str, Any]) -> TrainConfig:
    """The typed config of one run, resolved once from the entry's options as `posmask pretrain` resolves its
    flags; a bad entry is one line naming the grid file and the entry."""
    from trainer.cli import build_config

    where = f"{grid.path} [[run]] {entry.name!r}"
    if "shards" not in options:
        raise UserError(f"{where}: no shards; give SHARDS=... (or shards = in the grid)")
    namespace = pretrain_command().parse(where, options)
    try:
        return build_config(namespace)
    except UserError as err:
        raise UserError(f"{where}: {err}") from None


def plan_jobs(grid: Grid, settings: Settings) -> list[Job]:
    """Every entry x seed, in grid order (seed-major within an entry), each run's config resolved and checked."""
    jobs = []
    for entry in grid.entries:
        seeds = seeds_of(entry, settings)
        for k, seed in seeds:
            name = entry.name if len(seeds) == 1 and settings.seed_from is None else f"{entry.name}-seed{k}"
            run_dir = settings.out / "runs" / name
            config = run_config(grid, entry, {**pretrain_options(entry, settings), "seed": seed, "run": str(run_dir)})
            plan = settings.out / PLANS_DIR / f"{name}.json"
            steps = [Step("pretrain", ["pretrain", "--config", str(plan), *gpu_flags(settings)], distributed=True,
                          launch=node_flags(settings), config=config, config_path=plan)]
            for task in settings.tasks or entry.tasks:
                eval_options = {"seed": seed, **entry.eval_options, **entry.task_options.get(task, {})}
                if task == "vqa" and settings.report_to:
                    eval_options["report_to"] = settings.report_to
                for key in ("data", "images"):
                    given = per_task(getattr(settings, key))
                    if task in given or "*" in given:
                        eval_options[key] = given.get(task, given.get("*"))
                argv = ["eval", "--run", str(run_dir), "--tasks", task, *to_argv(eval_options)]
                vqa = task == "vqa"
                steps.append(Step(f"eval:{task}", argv + (gpu_flags(settings) if vqa else []), distributed=vqa,
                                  launch=node_flags(settings) if vqa else ()))
            jobs.append(Job(name, entry.name, seed, run_dir, steps))
    return jobs


def per_task(value: str | None) -> dict[str, str]:
    """`DIR` for every task, or `retrieval:FILE;valse:DIR;vqa:DIR` for each its own ({"*": DIR} / {task: ...})."""
    if not value:
        return {}
    parts = {}
    for segment in filter(None, (s.strip() for s in value.split(";"))):
        task, sep, rest = segment.partition(":")
        parts[task if sep and task in EVAL_TASKS else "*"] = rest if sep and task in EVAL_TASKS else segment
    return parts


def gpu_flags(settings: Settings) -> list[str]:
    """Processes per run: `--gpus N` on GPUs; nothing on CPU (one process per run, PARALLEL runs at once)."""
    return ["--gpus", str(settings.gpus_per_run)] if settings.gpus else []


def node_flags(settings: Settings) -> tuple[str, ...]:
    """torchrun's rendezvous when every run spans several machines (differs per node, so kept out of stamps)."""
    if settings.nnodes == 1:
        return ()
    flags = ("--nnodes", str(settings.nnodes), "--node-rank", str(settings.node_rank),
             "--master-addr", str(settings.master_addr))
    return flags + (("--master-port", str(settings.master_port)) if settings.master_port else ())

