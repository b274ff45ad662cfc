"""The report's tables with statistics: rows are methods (a run label, over all its seeds), each cell the
mean over seeds (with their standard deviation) and the paired-bootstrap interval of the difference from
the reference method; both in the generic layout (every method, every piece) and in the thesis's layout.
"""
from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from evaluation.core.items import ItemScores, metric_items
from evaluation.core.runs import RunInfo
from evaluation.core.stats import average_over_seeds, level_text, mean_sd, paired_bootstrap, resamples_text
from evaluation.report.tables import Cell, Row, Table
from evaluation.report.thesis_layout import LAYOUTS, TableSpec, thesis_numbers, thesis_source
from evaluation.valse.evaluate import PIECE_ORDER
from trainer.run_dir import RunDir

VQA_TYPES = ("yes/no", "number", "other")


@dataclass
class Method:
    """One table row: the runs (seeds) that share a label."""

    label: str
    runs: list[RunInfo]

    @property
    def group(self) -> str:
        return self.runs[0].group

    @cached_property
    def items(self) -> list[dict[str, ItemScores]]:
        return [metric_items(RunDir(r.path).eval) for r in self.runs]


def methods_of(runs: Sequence[RunInfo]) -> list[Method]:
    """Runs grouped by label, in report order (group, class, ratio)."""
    grouped: dict[str, list[RunInfo]] = {}
    for run in sorted(runs, key=RunInfo.sort_key):
        grouped.setdefault(run.label, []).append(run)
    return [Method(label, members) for label, members in grouped.items()]


def metric_value(run: RunInfo, key: str) -> float | None:
    """A metric from a run's result summaries, in percent: `retrieval/tr_r1`, `valse/<piece>`, `valse/avg`
    (`:p_c` etc. for another field than acc_r), `vqa/overall`, `vqa/<answer type>`,
    `probe/<variant>:mean_match_prob|original_wins|prob_drop`; None when the run lacks it."""
    task, _, rest = key.partition("/")
    name, _, field = rest.partition(":")
    result = run.results.get(task, {})
    value: object = None
    if task == "retrieval":
        value = result.get("metrics", {}).get(name)
    elif task == "valse":
        source = result.get("average", {}) if name == "avg" else result.get("pieces", {}).get(name, {})
        value = source.get(field or "acc_r") if name == "avg" or source.get("status") == "ok" else None
    elif task == "vqa":
        metrics = result.get("metrics", {})
        value = metrics.get("overall") if name == "overall" else metrics.get("per_answer_type", {}).get(name)
    elif task == "probe":
        value = result.get("variants", {}).get(name, {}).get(field or "mean_match_prob")
        if isinstance(value, (int, float)) and (field or "mean_match_prob") == "mean_match_prob":
            value = 100.0 * value
    if not isinstance(value, (int, float)) or value != value:
        return None
    return float(value)


def normalise(label: str) -> str:
    """`random-0.15`, `random 0.15` and `Random 0.15` name the same method."""
    return label.replace("-", " ").strip().lower()


class StudyStats:
    """Cells of any method and metric, with differences from the reference method."""

    def __init__(self, methods: Sequence[Method], reference: str | None) -> None:
        wanted = normalise(reference) if reference else None
        self.reference = next((m for m in methods if wanted in (normalise(m.label),
                                                                *(normalise(r.name) for r in m.runs))), None)

    def cell(self, method: Method | None, key: str) -> Cell:
        if method is None:
            return Cell()
        values = [v for v in (metric_value(r, key) for r in method.runs) if v is not None]
        if not values:
            return Cell()
        mean, sd = mean_sd(values)
        ref = self.reference
        if ref is None or ref is method:
            return Cell(mean, sd)
        mine = average_over_seeds([i[key] for i in method.items if key in i])
        theirs = average_over_seeds([i[key] for i in ref.items if key in i])
        seed = zlib.crc32(f"{key}|{method.label}".encode())
        return Cell(mean, sd, paired_bootstrap(mine, theirs, seed=seed) if mine and theirs else None)

    def row(self, method: Method | None, keys: Sequence[str], group: str, label: str) -> Row:
        return Row(group, label, [self.cell(method, k) for k in keys], seeds=len(method.runs) if method else 0,
                   reference=method is not None and method is self.reference)


def table_notes(stats: StudyStats, methods: Sequence[Method]) -> list[str]:
    """The notes under every table: seeds, the reference row and what `*` means."""
    seeds = sorted({len(m.runs) for m in methods})
    notes = [f"Mean over {'/'.join(map(str, seeds))} seed(s)" + (" ± standard deviation" if max(seeds) > 1 else "")
             + "."]
    if stats.reference is not None:
        notes.append(f"Reference row: {stats.reference.label}; `*` marks a cell whose {level_text()} paired-bootstrap "
                     f"interval of the difference from it ({resamples_text()} of the evaluation items) excludes 0.")
    else:
        notes.append("No reference row in this study: no differences are tested.")
    return notes


def generic_tables(methods: Sequence[Method], stats: StudyStats) -> list[Table]:
    """Retrieval, VALSE (every piece that ran) and VQA, for every method (the probe's: `probe_report`)."""
    present = {key for m in methods for r in m.runs for key in summary_keys(r)}
    tables = []
    retrieval = [k for k in LAYOUTS[0].metrics if k in present]
    if retrieval:
        tables.append(("retrieval", "Zero-shot image-text retrieval (ITC top-k re-ranked with ITM)", retrieval,
                       [f"{k[10:12].upper()} R@{k.split('_r')[1]}" for k in retrieval]))
    order = {p: i for i, p in enumerate(PIECE_ORDER)}
    pieces = sorted((k.split("/", 1)[1] for k in present if k.startswith("valse/") and k != "valse/avg"),
                    key=lambda p: (order.get(p, len(order)), p))
    if pieces:
        tables.append(("valse", "VALSE, zero-shot with the ITM head: pairwise accuracy acc_r per piece",
                       [f"valse/{p}" for p in pieces] + ["valse/avg"], pieces + ["Avg."]))
    if "valse/avg" in present:
        tables.append(("valse_detail", "VALSE averages over pieces: acc_r, p_c, p_f, acc",
                       [f"valse/avg:{f}" for f in ("acc_r", "p_c", "p_f", "acc")], ["acc_r", "p_c", "p_f", "acc"]))
    types = [t for t in VQA_TYPES if f"vqa/{t}" in present]
    if types:
        tables.append(("vqa", f"VQA v2 ({vqa_split(methods)}): accuracy per answer type",
                       [f"vqa/{t}" for t in types] + ["vqa/overall"],
                       [t.capitalize() if t != "yes/no" else "Yes/No" for t in types] + ["Overall"]))
    notes = table_notes(stats, methods)
    return [Table(key, title, columns, [stats.row(m, keys, m.group, m.label) for m in methods], list(notes))
            for key, title, keys, columns in tables]


def summary_keys(run: RunInfo) -> list[str]:
    """The metric keys a run's summaries hold."""
    keys = [f"retrieval/{k}" for k in run.results.get("retrieval", {}).get("metrics", {})]
    valse = run.results.get("valse", {})
    keys += [f"valse/{p}" for p, v in valse.get("pieces", {}).items() if v.get("status") == "ok"]
    keys += ["valse/avg"] if valse else []
    vqa = run.results.get("vqa", {}).get("metrics", {})
    keys += [f"vqa/{t}" for t in vqa.get("per_answer_type", {})] + (["vqa/overall"] if vqa else [])
    keys += [f"probe/{v}" for v in run.results.get("probe", {}).get("variants", {})]
    return keys


def vqa_split(methods: Sequence[Method]) -> str:
    """The VQA evaluation split the runs were scored on (`val` locally; test-dev only on the server)."""
    splits = {str(r.results["vqa"].get("eval_split", "val")) for m in methods for r in m.runs if "vqa" in r.results}
    return "/".join(sorted(splits)) or "val"


def thesis_table(spec: TableSpec, methods: Sequence[Method], stats: StudyStats, with_thesis: bool) -> Table | None:
    """One of Tables 4.1–4.5 in the thesis's layout; None when the study has fewer than two of its rows (nothing
    to compare in that layout: e.g. a grid of other masking choices that holds only the reference)."""
    by_label = {m.label: m for m in methods}
    if sum(row.run in by_label for row in spec.rows) < 2:
        return None
    rows = [stats.row(by_label.get(row.run), spec.metrics, row.group, row.label) for row in spec.rows]
    title = spec.title.replace("VQA v2", f"VQA v2 ({vqa_split(methods)})")
    table = Table(spec.key, title, list(spec.columns), rows, table_notes(stats, methods))
    if with_thesis:
        published = thesis_numbers(spec.key)
        block = [Row(r.get("group", ""), r["method"] + (f" ({r['masking_probability']} %)"
                                                        if "masking_probability" in r else ""),
                     [Cell(float(v)) for v in r["values"]]) for r in published["rows"]]
        table.reference_block = Table(spec.key, f"Published in the thesis ({published['title']}; "
                                      f"{thesis_source()}; single runs)", list(published["columns"]), block)
    return table


def thesis_tables(methods: Sequence[Method], stats: StudyStats, with_thesis: bool) -> list[Table]:
    """Tables 4.1–4.5, those that have at least two of their rows in the study."""
    return [t for t in (thesis_table(spec, methods, stats, with_thesis) for spec in LAYOUTS) if t is not None]
