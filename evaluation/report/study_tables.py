"""The report's tables with statistics: rows are methods (a run label, over all its seeds), each cell the mean
over seeds (with their standard deviation) and the difference from the reference method with its interval and
p-values (evaluation.core.stats: seeds and evaluation clusters resampled, t-calibrated for few seeds); both in the
generic layout (every method, every piece) and in the thesis's layout. Each table is one family: its p-values are
corrected together (`Family`), and its notes name the family, its size, the correction and the level.
"""
from __future__ import annotations

import zlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from evaluation.core.defaults import is_scenes_sample
from evaluation.core.items import ItemScores
from evaluation.core.runs import RunInfo
from evaluation.core.stats import (ADJUSTMENT_NAMES, ALPHA, LEVEL, Comparison, adjusted, compare, level_text, mean_sd,
                                   resamples_for, resamples_text)
from evaluation.report.tables import ITEM_ONLY_MARK, MARK, Cell, Row, Table
from evaluation.report.thesis_layout import LAYOUTS, TableSpec, thesis_numbers, thesis_source
from evaluation.valse.evaluate import PIECE_ORDER

VQA_TYPES = ("yes/no", "number", "other")
CLUSTERS = {"retrieval": "images (IR: each image with all its captions)", "vqa": "images with all their questions",
            "valse": "entries within each piece", "probe": "images with all their probed captions"}
ZERO_SHOT_PROTOCOL = ("Protocol: the pre-trained model scored directly, as the thesis did. ALBEF's published "
                      "\"zero-shot Flickr30K\" numbers come from its COCO-fine-tuned checkpoint (ALBEF issues #29, #74, "
                      "#89), a different protocol.")


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
        return [r.items() for r in self.runs]


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


@dataclass(frozen=True)
class Family:
    """How a table's differences are tested together: the correction, alpha, and the interval's level."""

    adjust: str = "holm"
    alpha: float = ALPHA
    level: float = LEVEL


class StudyStats:
    """Cells of any method and metric, with differences from the reference method, corrected per table."""

    def __init__(self, methods: Sequence[Method], reference: str | None, family: Family = Family(),
                 only: Collection[str] | None = None) -> None:
        wanted = normalise(reference) if reference else None
        self.reference = next((m for m in methods if wanted in (normalise(m.label),
                                                                *(normalise(r.name) for r in m.runs))), None)
        self.family, self.only = family, only  # only: the tables whose differences are computed (None: all)
        self._cache: dict[tuple[str, str, int], Comparison | None] = {}

    def comparable(self, method: Method | None, key: str) -> bool:
        """True when the cell gets a difference: a method other than the reference, both with the metric."""
        ref = self.reference
        return (method is not None and ref is not None and method is not ref
                and any(key in i for i in method.items) and any(key in i for i in ref.items))

    def comparison(self, method: Method, key: str, resamples: int) -> Comparison | None:
        """The method's difference from the reference on `key` (uncorrected), resampled `resamples` times."""
        cache_key = (method.label, key, resamples)
        if cache_key not in self._cache:
            assert self.reference is not None
            mine = [i[key] for i in method.items if key in i]
            theirs = [i[key] for i in self.reference.items if key in i]
            seed = zlib.crc32(f"{key}|{method.label}".encode())
            self._cache[cache_key] = compare(mine, theirs, resamples, seed, self.family.level)
        return self._cache[cache_key]

    def cell(self, method: Method | None, key: str) -> Cell:
        """The mean over seeds and their SD (the difference comes with the table: `table`)."""
        if method is None:
            return Cell()
        values = [v for v in (metric_value(r, key) for r in method.runs) if v is not None]
        return Cell(*mean_sd(values)) if values else Cell()

    def table(self, key: str, title: str, columns: Sequence[str], rows: Sequence[tuple[Method | None, str, str]],
              metrics: Sequence[str], notes: Sequence[str] = ()) -> Table:
        """A table of `rows` (method, group, label) x `metrics`, its differences computed and corrected as one
        family, with the family's notes."""
        pairs = [(i, j) for i, (m, _, _) in enumerate(rows) for j, k in enumerate(metrics) if self.comparable(m, k)
                 and (self.only is None or key in self.only)]
        resamples = resamples_for(len(pairs), self.family.alpha)
        raw = {(i, j): self.comparison(rows[i][0], metrics[j], resamples) for i, j in pairs}  # type: ignore[arg-type]
        tested = [p for p in pairs if raw[p] is not None]
        corrected = dict(zip(tested, adjusted([raw[p] for p in tested], self.family.adjust, self.family.alpha)))
        table_rows = []
        for i, (method, group, label) in enumerate(rows):
            cells = [self.cell(method, k) for k in metrics]
            cells = [replace(c, diff=corrected.get((i, j))) for j, c in enumerate(cells)]
            table_rows.append(Row(group, label, cells, seeds=len(method.runs) if method else 0,
                                  reference=method is not None and method is self.reference))
        table = Table(key, title, list(columns), table_rows, adjustment=self.family.adjust)
        table.notes = [*self.notes(table, len(tested), {k.split("/")[0] for k in metrics}, resamples), *notes]
        return table

    def notes(self, table: Table, family: int, tasks: set[str], resamples: int) -> list[str]:
        """Seeds, the reference row, the family (its size, correction, level) and what the marks mean."""
        seeds = sorted({r.seeds for r in table.rows if r.seeds})
        notes = [f"Mean over {'/'.join(map(str, seeds))} seed(s)" + (" ± standard deviation" if max(seeds or [1]) > 1
                                                                      else "") + "."]
        if self.reference is None:
            return notes + ["No reference row in this study: no differences are tested."]
        if not family:
            return notes
        f = self.family
        comparisons = [c.diff for r in table.rows for c in r.cells if isinstance(c.diff, Comparison)]
        item_only = sum(c.item_only for c in comparisons)
        clusters = "; ".join(f"{t}: {CLUSTERS[t]}" for t in sorted(tasks) if t in CLUSTERS)
        notes.append(f"Reference row: {self.reference.label}. Family: the {family} differences from it in this table, "
                     f"tested together with {ADJUSTMENT_NAMES[f.adjust]} at alpha = {f.alpha:g}. Each difference has "
                     f"its {level_text(f.level)} interval and two-sided p-value (raw / adjusted) from {resamples_text(resamples)} "
                     f"that draw each method's seeds with replacement and the evaluation clusters ({clusters}) shared "
                     "by both methods, t-calibrated for few seeds.")
        if item_only < len(comparisons):
            notes.append(f"`{MARK}`: adjusted p <= {f.alpha:g} and the interval excludes 0, over seeds and items: a "
                         "difference between the masking choices, not between two trained models.")
        if item_only:
            notes.append(f"`{ITEM_ONLY_MARK}`: the same test where a method or the reference has one seed ({item_only} "
                         f"of {len(comparisons)} differences): its interval and p-value cover the evaluation items "
                         "only, not run-to-run variation, so they compare these trained models, not the masking "
                         "choices.")
        return notes


def present_keys(methods: Sequence[Method]) -> set[str]:
    return {key for m in methods for r in m.runs for key in summary_keys(r)}


def generic_tables(methods: Sequence[Method], stats: StudyStats) -> list[Table]:
    """Retrieval, VALSE (every piece that ran) and VQA, for every method (the probe's: `probe_tables`)."""
    present = present_keys(methods)
    specs = []
    retrieval = [k for k in LAYOUTS[0].metrics if k in present]
    if retrieval:
        specs.append(("retrieval", f"Zero-shot image-text retrieval on {dataset(methods, 'retrieval')} (ITC top-k "
                      "re-ranked with ITM)", retrieval, [f"{k[10:12].upper()} R@{k.split('_r')[1]}" for k in retrieval],
                      [ZERO_SHOT_PROTOCOL]))
    order = {p: i for i, p in enumerate(PIECE_ORDER)}
    pieces = sorted((k.split("/", 1)[1] for k in present if k.startswith("valse/") and k != "valse/avg"),
                    key=lambda p: (order.get(p, len(order)), p))
    if pieces:
        specs.append(("valse", f"Image-text matching of captions against foils on {dataset(methods, 'valse')}, "
                      "zero-shot with the ITM head: pairwise accuracy acc_r per piece",
                      [f"valse/{p}" for p in pieces] + ["valse/avg"], pieces + ["Avg."], []))
    if "valse/avg" in present:
        specs.append(("valse_detail", f"VALSE-format averages over pieces on {dataset(methods, 'valse')}: acc_r, p_c, "
                      "p_f, acc", [f"valse/avg:{f}" for f in ("acc_r", "p_c", "p_f", "acc")],
                      ["acc_r", "p_c", "p_f", "acc"], []))
    types = [t for t in VQA_TYPES if f"vqa/{t}" in present]
    if types:
        specs.append(("vqa", f"VQA on {dataset(methods, 'vqa')} ({vqa_split(methods)}): accuracy per answer type",
                      [f"vqa/{t}" for t in types] + ["vqa/overall"],
                      [t.capitalize() if t != "yes/no" else "Yes/No" for t in types] + ["Overall"], []))
    rows = [(m, m.group, m.label) for m in methods]
    return [stats.table(key, title, columns, rows, keys, notes) for key, title, keys, columns, notes in specs]


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


def dataset(methods: Sequence[Method], task: str) -> str:
    """The data set a task was evaluated on, from the runs' own result records: the built-in scenes sample when
    its files carry the scenes' manifest, else the file or folder name."""
    names = set()
    for m in methods:
        for r in m.runs:
            data = r.results.get(task, {}).get("data")
            if data:
                names.add(data_name(Path(str(data)), r.results[task].get("scenes_sample")))
    return " and ".join(sorted(names)) or "no data"


def data_name(path: Path, scenes_sample: bool | None = None) -> str:
    """`the built-in scenes sample (`retrieval.json`)` for its files (as the result recorded it, else as the
    file system says), else the file's name, e.g. `flickr30k_test.json`."""
    shown = f"`{path.name}`" if path.name else f"`{path}`"
    scenes = scenes_sample if scenes_sample is not None else is_scenes_sample(path)
    return f"the built-in scenes sample ({shown})" if scenes else shown


def thesis_table(spec: TableSpec, methods: Sequence[Method], stats: StudyStats, with_thesis: bool,
                 full_layout: bool) -> Table | None:
    """One of Tables 4.1–4.5 in the thesis's layout: all its rows with `full_layout` (the thesis grid), else the
    rows the study holds; None when the study has fewer than two of its rows (nothing to compare in that layout)."""
    by_label = {m.label: m for m in methods}
    if sum(row.run in by_label for row in spec.rows) < 2:
        return None
    rows = [(by_label.get(row.run), row.group, row.label) for row in spec.rows if full_layout or row.run in by_label]
    title = spec.title(dataset(methods, spec.task))
    if spec.task == "vqa":
        title = title.replace(" (the thesis:", f" ({vqa_split(methods)}; the thesis:")
    notes = [ZERO_SHOT_PROTOCOL] if spec.task == "retrieval" else []
    table = stats.table(spec.key, title, spec.columns, rows, spec.metrics, notes)
    if with_thesis:
        published = thesis_numbers(spec.key)
        block = [Row(r.get("group", ""), r["method"] + (f" ({r['masking_probability']} %)"
                                                        if "masking_probability" in r else ""),
                     [Cell(float(v)) for v in r["values"]]) for r in published["rows"]]
        protocol = (" Protocol: the thesis's own pre-trained models scored directly, its ALBEF-style baseline "
                    "included; not ALBEF's published COCO-fine-tuned protocol." if spec.task == "retrieval" else "")
        table.reference_block = Table(spec.key, f"Published in the thesis ({published['title']}; "
                                      f"{thesis_source()}; single runs){'.' + protocol if protocol else ''}", list(published["columns"]), block)
    return table


def thesis_tables(methods: Sequence[Method], stats: StudyStats, with_thesis: bool,
                  full_layout: bool = False) -> list[Table]:
    """Tables 4.1–4.5, those that have at least two of their rows in the study."""
    return [t for t in (thesis_table(spec, methods, stats, with_thesis, full_layout) for spec in LAYOUTS)
            if t is not None]
