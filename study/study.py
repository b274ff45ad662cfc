"""One study end to end: check the grid, plan the jobs, run them, write the report."""
from __future__ import annotations

import logging
from dataclasses import asdict, is_dataclass
from pathlib import Path

from toolbox.atomic import atomic_write_json
from toolbox.errors import UserError
from study.grid import Grid, load_grid
from study.plan import Job, Settings, plan_jobs
from study.runner import run_jobs

log = logging.getLogger("study")
EVIDENCE_DIR = "evidence"


def planned(spec: str, settings: Settings) -> tuple[Grid, list[Job]]:
    """The grid and its jobs, every run's config resolved and checked, its shards present."""
    grid = load_grid(spec, settings.preset)
    jobs = plan_jobs(grid, settings)
    shards = {s.strip() for j in jobs for s in j.config.shards.split(",") if s.strip()}
    missing = sorted(s for s in shards if not Path(s).is_dir())
    if missing:
        raise UserError(f"SHARDS {missing[0]}: no such directory (run `make tag-shards` first)")
    return grid, jobs


def plan_study(spec: str, settings: Settings) -> list[str]:
    """What `posmask study --plan` prints: the jobs and what they will cost; nothing runs."""
    from study.cost import plan_lines

    grid, jobs = planned(spec, settings)
    return [f"study {grid.path.stem} -> {settings.out}", *plan_lines(jobs, settings)]


def run_study(spec: str, settings: Settings) -> Path:
    """Run (or resume) the study into settings.out; returns the report's index page."""
    grid, jobs = planned(spec, settings)
    settings.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(settings.out / f"study{'-node%d' % settings.node_rank if settings.follower else ''}.json", {
        "grid": str(grid.path), "grid_text": grid.path.read_text(encoding="utf-8"),
        "settings": {k: str(v) if isinstance(v, Path) else asdict(v) if is_dataclass(v) else v
                     for k, v in vars(settings).items()},
        "jobs": [{"name": j.name, "seed": j.seed, "run": str(j.run_dir), "steps": [s.argv for s in j.steps]}
                 for j in jobs]})
    log.info("study %s: %d entries x %d seed(s) = %d runs, %d steps -> %s", grid.path.stem, len(grid.entries),
             settings.seeds, len(jobs), sum(len(j.steps) for j in jobs), settings.out)
    run_jobs(jobs, settings)
    if settings.follower:
        log.info("node %d: every run is done; node 0 writes the report", settings.node_rank)
        return settings.out / "report" / "index.md"
    return report_study(grid, jobs, settings)


def report_study(grid: Grid, jobs: list[Job], settings: Settings) -> Path:
    """The study's evidence (OUT/evidence: its per-item scores and run records, small enough for git) and the
    report built from it (OUT/report), so that the report can be rebuilt from the evidence byte for byte."""
    from evaluation.core.runs import load_run
    from evaluation.report.build import build_report, read_histograms
    from evaluation.report.evidence import export_evidence, load_evidence
    from evaluation.report.study_tables import methods_of

    runs = [load_run(j.run_dir) for j in jobs]
    evidence = export_evidence(runs, read_histograms(methods_of(runs)), settings.out / EVIDENCE_DIR)
    runs, histograms = load_evidence(evidence)
    full = settings.full_layout if settings.full_layout is not None else grid.path.stem == "thesis"
    return build_report(runs, settings.out / "report", f"posmask study: {grid.path.stem}",
                        reference=settings.reference, with_thesis=settings.with_thesis, family=settings.family,
                        full_layout=full, histograms=histograms)

