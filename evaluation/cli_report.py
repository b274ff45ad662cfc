"""`posmask report`: thesis-style tables and figures across runs, in one folder with an index page."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from evaluation.core.defaults import DEFAULT_REFERENCE
from toolbox.errors import UserError

HELP = ("write tables (Markdown, CSV, LaTeX; thesis layout; seed spreads and paired-bootstrap intervals) and "
        "figures comparing runs")
log = logging.getLogger("evaluation")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `posmask report`."""
    parser.add_argument("--runs", nargs="+", required=True, help="run directories to compare")
    parser.add_argument("--out", default="report", help="report folder (default report)")
    parser.add_argument("--title", default="posmask report", help="title of index.md")
    parser.add_argument("--reference", default=DEFAULT_REFERENCE,
                        help=f"the method every row is compared with (a run label such as 'random 0.15' or "
                             f"'random-0.15', or a run folder name; default {DEFAULT_REFERENCE}); a name no run has "
                             "turns the tests off")
    parser.add_argument("--with-thesis", action="store_true",
                        help="add the thesis's published numbers under each of Tables 4.1-4.5, labelled as such")


def run(args: argparse.Namespace) -> int:
    """Load every run's results and write the report."""
    from evaluation.report.build import build_report
    from evaluation.core.runs import load_run
    from trainer.run_dir import EVAL_DIR, METRICS, RunDir

    paths = [Path(p) for p in args.runs]
    bad = [str(p) for p in paths if not p.is_dir()]
    if bad:
        raise UserError(f"--runs: not a directory: {', '.join(bad)}")
    runs = [load_run(p) for p in paths]
    if not any(r.results for r in runs) and not any(RunDir(r.path).metrics.is_file() for r in runs):
        raise UserError(f"none of the runs has evaluation results (RUN/{EVAL_DIR}/*.json) or {METRICS}; "
                        "run `posmask eval` first")
    for r in runs:
        if not r.results:
            log.warning("%s has no evaluation results yet", r.path)
    index = build_report(runs, Path(args.out), args.title, reference=args.reference, with_thesis=args.with_thesis)
    print(f"report: {index}")
    return 0
