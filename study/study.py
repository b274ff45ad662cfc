"""One study end to end: check the grid, plan the jobs, run them, write the report."""
from __future__ import annotations

import logging
from pathlib import Path

from toolbox.atomic import atomic_write_json
from toolbox.errors import UserError
from study.grid import load_grid
from study.plan import Settings, plan_jobs
from study.runner import run_jobs

log = logging.getLogger("study")


def run_study(spec: str, settings: Settings) -> Path:
    """Run (or resume) the study into settings.out; returns the report's index page."""
    from evaluation.report.build import build_report
    from evaluation.core.runs import load_run

    grid = load_grid(spec, settings.preset)
    jobs = plan_jobs(grid, settings)  # every run's config resolved and checked before anything runs
    shards = {s.strip() for j in jobs for s in j.config.shards.split(",") if s.strip()}
    missing = sorted(s for s in shards if not Path(s).is_dir())
    if missing:
        raise UserError(f"SHARDS {missing[0]}: no such directory (run `make tag-shards` first)")
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

