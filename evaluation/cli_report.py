"""`posmask report`: thesis-style tables and figures across runs, in one folder with an index page."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from evaluation.core.defaults import ADJUSTMENTS, ALPHA, DEFAULT_REFERENCE
from toolbox.errors import UserError

HELP = ("write tables (Markdown, CSV, LaTeX; thesis layout; seed spreads and paired-bootstrap intervals) and "
        "figures comparing runs")
log = logging.getLogger("evaluation")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `posmask report`."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--runs", nargs="+", help="run directories to compare")
    source.add_argument("--from-items", metavar="EVIDENCE", help="rebuild a report from a study's evidence (its "
                        "per-item scores and run records: STUDY/evidence, or a committed docs/*/evidence); "
                        "comma-separated: the parts of one study, merged")
    parser.add_argument("--out", default="report", help="report folder (default report)")
    parser.add_argument("--title", default="posmask report", help="title of index.md")
    parser.add_argument("--evidence", metavar="DIR", help="also write the runs' evidence there (with --from-items "
                        "of several parts: the merged evidence of the whole study)")
    add_report_options(parser)


def add_report_options(parser: argparse.ArgumentParser) -> None:
    """What the report compares and how it tests (shared with `posmask study`)."""
    parser.add_argument("--reference", default=DEFAULT_REFERENCE,
                        help=f"the method every row is compared with (a run label such as 'random 0.15' or "
                             f"'random-0.15', or a run folder name; default {DEFAULT_REFERENCE}); a name no run has "
                             "turns the tests off")
    parser.add_argument("--with-thesis", action="store_true",
                        help="add the thesis's published numbers under each of Tables 4.1-4.5, labelled as such")
    parser.add_argument("--adjust", choices=ADJUSTMENTS, default="holm",
                        help="each table's correction for its many comparisons: holm (default, family-wise error), "
                             "bh (Benjamini-Hochberg false discovery rate) or none")
    parser.add_argument("--alpha", type=float, default=ALPHA,
                        help=f"the level of the tests (default {ALPHA:g}; the intervals are at 1 - alpha)")
    parser.add_argument("--full-layout", action="store_true",
                        help="every row of the thesis's Tables 4.1-4.5, dashes where no run has it (default: the rows "
                             "the runs hold; `posmask study --grid thesis` turns it on)")


def family_of(args: argparse.Namespace):  # -> evaluation.report.study_tables.Family
    """The tests the flags ask for."""
    from evaluation.report.study_tables import Family

    if not 0 < args.alpha < 1:
        raise UserError(f"--alpha must be in (0, 1) (got {args.alpha})")
    return Family(adjust=args.adjust, alpha=args.alpha, level=1 - args.alpha)


def run(args: argparse.Namespace) -> int:
    """Load every run's results (or a study's evidence) and write the report."""
    from evaluation.report.build import build_report, read_histograms
    from evaluation.report.evidence import export_evidence, merge_evidence
    from evaluation.core.runs import load_run
    from evaluation.report.study_tables import methods_of
    from trainer.run_dir import EVAL_DIR, METRICS, RunDir

    family = family_of(args)
    if args.from_items:
        runs, histograms = merge_evidence([Path(f) for f in args.from_items.split(",") if f.strip()])
    else:
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
        histograms = read_histograms(methods_of(runs))
    if args.evidence:
        export_evidence(runs, histograms, Path(args.evidence))
    index = build_report(runs, Path(args.out), args.title, reference=args.reference, with_thesis=args.with_thesis,
                         family=family, full_layout=args.full_layout, histograms=histograms)
    print(f"report: {index}")
    return 0
