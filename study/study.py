"""One study end to end: check the grid, plan the jobs, run them, write the report."""
from __future__ import annotations

import logging
from pathlib import Path

from toolbox.atomic import atomic_write_json
from toolbox.errors import UserError
from study.grid import Grid, load_grid, parser_dests, to_argv
from study.plan import Settings, plan_jobs, pretrain_options
from study.runner import run_jobs
from study.steps import planned_config

log = logging.getLogger("study")


def check_grid(spec: str, settings: Settings) -> Grid:
    """The grid, each entry resolved as `posmask pretrain` would resolve it (a bad mask or value: one line)."""
    from trainer.cli import add_arguments

    actions = parser_dests(add_arguments)
    grid = load_grid(spec, settings.preset)
    for entry in grid.entries:
        options = pretrain_options(entry, settings)
        if "shards" not in options:
            raise UserError(f"{grid.path} [[run]] {entry.name!r}: no shards; give SHARDS=... (or shards = in the grid)")
        try:
            planned_config(["pretrain", *to_argv(options, actions)])
        except UserError as err:
            raise UserError(f"{grid.path} [[run]] {entry.name!r}: {err}") from None
    return grid


def run_study(spec: str, settings: Settings) -> Path:
    """Run (or resume) the study into settings.out; returns the report's index page."""
    from evaluation.report.build import build_report
    from evaluation.core.runs import load_run

    grid = check_grid(spec, settings)
    shards = {s for e in grid.entries for s in str(pretrain_options(e, settings)["shards"]).split(",")}
    missing = sorted(s for s in shards if not Path(s).is_dir())
    if missing:
        raise UserError(f"SHARDS {missing[0]}: no such directory (run `make tag-shards` first)")
    jobs = plan_jobs(grid, settings)
    settings.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(settings.out / f"study{'-node%d' % settings.node_rank if settings.follower else ''}.json", {
        "grid": str(grid.path), "grid_text": grid.path.read_text(encoding="utf-8"),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(settings).items()},
        "jobs": [{"name": j.name, "seed": j.seed, "run": str(j.run_dir), "steps": [s.argv for s in j.steps]}
                 for j in jobs]})
    log.info("study %s: %d entries x %d seed(s) = %d runs, %d steps -> %s", grid.path.stem, len(grid.entries),
             settings.seeds, len(jobs), sum(len(j.steps) for j in jobs), settings.out)
    run_jobs(jobs, settings)
    if settings.follower:
        log.info("node %d: every run is done; node 0 writes the report", settings.node_rank)
        return settings.out / "report" / "index.md"
    runs = [load_run(j.run_dir) for j in jobs]
    return build_report(runs, settings.out / "report", f"posmask study: {grid.path.stem}",
                        reference=settings.reference, with_thesis=settings.with_thesis)

