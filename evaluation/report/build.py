"""The report folder: tables (Markdown, CSV, LaTeX) with seed spreads and the differences from the reference with
their intervals and corrected p-values, in the thesis's layout (Tables 4.1–4.5) and for every method, the headline
differences and their forest plot, how many seeds a difference needs (`seeds_table`), the masking as trained
(`training_table`), retrieval by ITC alone before the ITM re-ranking (`itc_table`), figures (PNG and PDF),
and an index page.

Rows are methods (a run label over its seeds) grouped non-functional (NOUN, VERB, ADJ, ADV, PROPN),
functional (DET, AUX, PRON, ADP) and baselines (random, none, ALBEF). A task a run was not evaluated on
shows `–`. Nothing in it depends on when or how fast it was made, so a re-run gives the same files.
"""
from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from evaluation.report import figures as plots
from evaluation.report.probe_tables import probe_figures, probe_tables
from evaluation.core.defaults import DEFAULT_REFERENCE
from evaluation.core.runs import RunInfo
from evaluation.core.stats import level_text, mean_sd
from trainer.run_dir import EVAL_TASKS
from evaluation.report.seeds_table import seeds_table
from evaluation.report.study_tables import (Family, Method, StudyStats, generic_tables, metric_value, methods_of,
                                            thesis_tables)
from evaluation.report.tables import DASH, Table, index_section
from evaluation.report.itc_table import itc_table
from evaluation.report.training_table import training_table
from toolbox.atomic import atomic_write_text
from shards.manifest import read_histogram
from toolbox.errors import UserError
from trainer.engine.plots import LOSSES

log = logging.getLogger(__name__)
HEADLINE = {"Retrieval TR R@1": "retrieval/tr_r1", "Retrieval IR R@1": "retrieval/ir_r1",
            "VALSE acc_r": "valse/avg", "VQA overall": "vqa/overall"}
Histograms = dict[str, dict]  # a training shards folder -> its POS histogram (pos_histogram.json)


def runs_table(runs: Sequence[RunInfo]) -> str:
    """Which runs the report covers, and what was evaluated."""
    lines = ["| Run | Masking | Preset | Seed | Evaluated | Data |", "|---|---|---|---:|---|---|"]
    for r in sorted(runs, key=RunInfo.sort_key):
        data = sorted({Path(str(v.get("data", ""))).name for v in r.results.values() if v.get("data")})
        lines.append(f"| `{r.path.name}` | {r.label} | {r.config.get('preset', DASH)} | {r.config.get('seed', DASH)} | "
                     f"{', '.join(t for t in EVAL_TASKS if t in r.results) or DASH} | {', '.join(data) or DASH} |")
    return "\n".join(lines)


def data_note(methods: Sequence[Method], task: str) -> str | None:
    """One line on the data behind a task's tables (from the first run that has it): sizes, chance, settings."""
    r = next((x.results[task] for m in methods for x in m.runs if task in x.results), None)
    if r is None:
        return None
    src = Path(str(r.get("data", "?"))).name
    if task == "retrieval":
        chance = r.get("chance_r1") or {}
        return (f"Data: `{src}`, {r.get('n_images')} images / {r.get('n_texts')} captions, ITM re-ranks the ITC "
                f"top {r.get('k_rerank')}, ties counted {r.get('ties', 'pessimistic')}; chance R@1: TR "
                f"{chance.get('tr', 0):.2f}, IR {chance.get('ir', 0):.2f}.")
    if task == "valse":
        sizes = ", ".join(f"{p} {v.get('n')}" for p, v in r.get("pieces", {}).items() if v.get("status") == "ok")
        subset = "valid subset (mturk.caption >= 2)" if r.get("valid_only", True) else "all entries"
        convention = r.get("convention", "posmask")
        return (f"Data: `{src}`, {subset}; entries per piece: {sizes}. Chance acc_r: 50. Scoring convention: "
                f"`{convention}` (`posmask eval --help`, VALSE).")
    if task == "vqa":
        st = r.get("settings", {})
        return (f"Data: `{src}`, {r.get('n_train')} training / {r.get('n_eval')} {r.get('eval_split')} questions, "
                f"{r.get('n_answers')} answers; fine-tuned {st.get('epochs')} epochs, batch {st.get('batch_size')}, "
                f"lr {st.get('lr')}. Scores are local, on {r.get('eval_split')}; test-dev scores come only from the "
                "evaluation server (the predictions file is written in its format).")
    if task == "probe":
        return (f"{r.get('n_captions', r.get('n_images'))} captions of {r.get('n_images')} images, seed "
                f"{r.get('seed')}; tags from `{r.get('tags')}`. Captions without a word of a class (or whose class "
                "has no other word in the evaluation vocabulary) are skipped, and counted per run with each figure's "
                f"own {level_text()} bootstrap interval in `eval/probe.json`.")
    return None


def issues_notes(runs: Sequence[RunInfo]) -> list[str]:
    """Missing images and VALSE pieces not run, per run."""
    notes = []
    for r in sorted(runs, key=RunInfo.sort_key):
        v = r.results.get("valse")
        if v and v.get("not_run"):
            notes.append(f"- `{r.path.name}`: VALSE pieces not run: {', '.join(v['not_run'])}")
        if v:
            miss = {p: x.get("n_missing", 0) for p, x in v.get("pieces", {}).items() if x.get("n_missing")}
            if miss:
                notes.append(f"- `{r.path.name}`: VALSE entries with missing images: "
                             + ", ".join(f"{p} {n}" for p, n in miss.items()))
        ret = r.results.get("retrieval")
        if ret and ret.get("missing_images"):
            notes.append(f"- `{r.path.name}`: retrieval images missing: {len(ret['missing_images'])}")
    return notes


def _task_of(table: Table) -> str:
    return {"table_4_1": "retrieval", "table_4_2": "valse", "table_4_3": "vqa", "table_4_4": "retrieval",
            "table_4_5": "vqa", "valse_detail": "valse"}.get(table.key, table.key.split("_")[0])


def headline_table(methods: Sequence[Method], stats: StudyStats) -> Table | None:
    """The headline metrics' differences from the reference, one family; None without a reference."""
    if stats.reference is None:
        return None
    rows = [(m, m.group, m.label) for m in methods]
    table = stats.table("headline", "Headline differences from the reference (the forest plot's family)",
                        list(HEADLINE), rows, list(HEADLINE.values()))
    return table if table.comparisons else None


def read_histograms(methods: Sequence[Method]) -> Histograms:
    """The POS histogram of each training shards folder the runs name, where it can be read."""
    out: Histograms = {}
    for shards in dict.fromkeys(d.strip() for m in methods for r in m.runs if r.shards for d in r.shards.split(",")):
        try:
            found = read_histogram(shards)
        except UserError as err:
            found, reason = None, str(err)
        else:
            reason = "none written"
        if found is None:
            log.warning("no POS histogram for %s (%s)", shards, reason)
        else:
            out[shards] = found
    return out


def write_figures(methods: Sequence[Method], out: Path, histograms: Histograms,
                  headline: Table | None) -> list[tuple[str, str]]:
    """Figures 4.1–4.3 (MLM, ITC, ITM loss, log scale), 4.4 (POS histogram of the training shards), the forest
    plot and the summary, each as PNG and PDF; returns (caption, PNG name) pairs."""
    figures: list[tuple[str, str]] = []
    curves = plots.method_curves(methods)
    for number, loss in enumerate(LOSSES, start=1):
        stem = out / f"figure_4_{number}"
        if plots.plot_curves(curves, loss, stem.with_suffix(".png"), stem.with_suffix(".pdf")):
            figures.append((f"Figure 4.{number}: {loss.upper()} training loss (log scale, mean over seeds)",
                            f"{stem.name}.png"))
    for i, (shards, hist) in enumerate(histograms.items()):
        stem = out / ("figure_4_4" if i == 0 else f"figure_4_4_{i}")
        if plots.plot_pos_histogram(hist, stem.with_suffix(".png"), f"UPOS counts of {shards}",
                                    stem.with_suffix(".pdf")):
            figures.append((f"Figure 4.4: POS histogram of the training shards `{shards}`", f"{stem.name}.png"))
    if headline is not None and plots.plot_forest(headline, out / "forest.png", out / "forest.pdf"):
        figures.append(("Differences from the reference with their intervals (filled: the family calls it a "
                        "difference; square: one seed on a side, items only)", "forest.png"))
    rows = [{name: _mean_sd(m, key) for name, key in HEADLINE.items()} for m in methods]
    if plots.plot_summary([m.label for m in methods], rows, out / "summary.png", out / "summary.pdf"):
        figures.append(("Summary (mean over seeds, ± 1 SD)", "summary.png"))
    return figures


def _mean_sd(method: Method, key: str) -> tuple[float, float | None] | None:
    values = [v for v in (metric_value(r, key) for r in method.runs) if v is not None]
    return mean_sd(values) if values else None


@dataclass
class ReportTables:
    """Every table of a report, with the probe's and the headline table kept for their figures."""

    methods: list[Method]
    tables: list[Table]
    probe: list[Table]
    headline: Table | None


def report_tables(runs: Sequence[RunInfo], reference: str | None = DEFAULT_REFERENCE, with_thesis: bool = False,
                  family: Family = Family(), full_layout: bool = False,
                  only: Collection[str] | None = None) -> ReportTables:
    """The report's tables, each with its note on the data; `only`: the keys whose differences are computed (the
    others come without them: a quick rebuild of a few tables)."""
    methods = methods_of(runs)
    stats = StudyStats(methods, reference, family, only)
    probe = probe_tables(methods, stats)  # the probe's tables (POS-swap profile, templates, counts)
    training = training_table(methods)
    headline = headline_table(methods, stats)
    seeds = seeds_table(methods, stats, headline, HEADLINE) if headline is not None else None
    tables = (thesis_tables(methods, stats, with_thesis, full_layout) + generic_tables(methods, stats)
              + [t for t in (headline, seeds, training, itc_table(methods)) if t is not None] + probe)
    for table in tables:
        table.footer = data_note(methods, _task_of(table))
    return ReportTables(methods, tables, probe, headline)


def build_report(runs: Sequence[RunInfo], out: Path, title: str = "posmask report",
                 reference: str | None = DEFAULT_REFERENCE, with_thesis: bool = False, family: Family = Family(),
                 full_layout: bool = False, histograms: Histograms | None = None) -> Path:
    """Write tables, figures and `index.md` into `out`; returns the index path. `full_layout`: every row of the
    thesis's tables (dashes where the study has none), else the rows the study holds; `histograms`: the training
    shards' POS histograms (None: read from their folders)."""
    out.mkdir(parents=True, exist_ok=True)
    built = report_tables(runs, reference, with_thesis, family, full_layout)
    methods, tables, probe, headline = built.methods, built.tables, built.probe, built.headline
    sections = [f"# {title}", "", f"{len(runs)} run(s), {len(methods)} method(s). Numbers in percent; `–` = not "
                "evaluated. Every table is also written as CSV and LaTeX (booktabs) beside its Markdown.",
                "", "## Runs", "", runs_table(runs)]
    for table in tables:
        sections += index_section(table, out)
    histograms = read_histograms(methods) if histograms is None else histograms
    figures = write_figures(methods, out, histograms, headline) + probe_figures(probe, out)
    if figures:
        sections += ["", "## Figures"]
        for caption, name in figures:
            sections += ["", f"### {caption}", "", f"![{Path(name).stem}]({name}) (also as "
                         f"[PDF]({Path(name).with_suffix('.pdf')}))"]
    notes = issues_notes(runs)
    if notes:
        sections += ["", "## Notes", ""] + notes
    index = out / "index.md"
    atomic_write_text(index, "\n".join(sections) + "\n")
    log.info("wrote %s", index)
    return index
