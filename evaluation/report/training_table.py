"""The report's "as trained" table, read from each run's `metrics.jsonl`: what the masking actually did (the
achieved masked share, the captions that carried an MLM target, where a budget's cap bound, whole words split)
and when the ITM head left its 50 % plateau. Mean ± sd over seeds; no differences are tested (these describe
training, not a result)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from evaluation.core.stats import mean_sd
from evaluation.report.study_tables import Method
from evaluation.report.tables import Cell, Row, Table

PLATEAU_ACC = 0.6  # ITM accuracy above which the head matches pairs (it sits at 0.5, "no match", before)


def _window_mean(key: str) -> Callable[[list[dict[str, Any]]], float | None]:
    """100 x the mean of a share over the logged windows."""
    def figure(records: list[dict[str, Any]]) -> float | None:
        values = [float(r[key]) for r in records if r.get(key) is not None]
        return 100.0 * sum(values) / len(values) if values else None
    return figure


def _partial_words(records: list[dict[str, Any]]) -> float | None:
    values = [float(r["partial_words"]) for r in records if r.get("partial_words") is not None]
    return sum(values) if values else None


def _plateau_exit(records: list[dict[str, Any]]) -> float | None:
    return next((float(r["step"]) for r in records if r.get("itm_acc", 0.0) > PLATEAU_ACC), None)


def _final_itm(records: list[dict[str, Any]]) -> float | None:
    last = [r for r in records if r.get("itm_acc") is not None]
    return 100.0 * float(last[-1]["itm_acc"]) if last else None


COLUMNS: list[tuple[str, Callable[[list[dict[str, Any]]], float | None]]] = [
    ("masked share of words", _window_mean("masked_share")),
    ("captions with an MLM target", _window_mean("mlm_caption_share")),
    ("budget cap binds", _window_mean("budget_capped_share")),
    ("words split", _partial_words),
    (f"ITM acc > {PLATEAU_ACC:.0%} from step", _plateau_exit),
    ("final ITM acc", _final_itm),
]

OPTION_COLUMNS = {"budget cap binds", "words split"}  # shown only when a run used BUDGET / WHOLE_WORD


def spread_cell(values: Sequence[float | None]) -> Cell:
    """Mean ± sd of the values present; an empty cell when none is."""
    present = [v for v in values if v is not None]
    return Cell(*mean_sd(present)) if present else Cell()


def training_table(methods: Sequence[Method]) -> Table | None:
    """The table, or None when no run logged any of its figures."""
    rows = []
    for m in methods:
        logs = [list(run.step_records().values()) for run in m.runs]
        rows.append(Row(m.group, m.label, [spread_cell([figure(log) for log in logs]) for _, figure in COLUMNS],
                        seeds=len(m.runs)))
    if all(c.value is None for r in rows for c in r.cells):
        return None
    kept = [i for i, (name, _) in enumerate(COLUMNS)
            if name not in OPTION_COLUMNS or any(r.cells[i].value is not None for r in rows)]
    for r in rows:
        r.cells = [r.cells[i] for i in kept]
    notes = ["From each run's `metrics.jsonl`, mean ± sd over seeds. Shares are in percent, averaged over the "
             "logged windows: masked wordpieces per word token, and captions with at least one MLM target.",
             "`budget cap binds`: with `BUDGET`, the captions whose class had too few wordpieces to reach it (all "
             "of them were masked). `words split`: with `WHOLE_WORD`, words masked only in part, summed over the "
             "run (must be 0). Each column is shown when a run used its option; a dash: this run did not.",
             f"The ITM head answers \"no match\" (50 %) until it leaves its plateau: the first logged step with ITM "
             f"accuracy above {PLATEAU_ACC:.0%} (a dash: never). A run that leaves it late has less training left."]
    return Table("training", "Masking as trained, and when image-text matching starts",
                 [COLUMNS[i][0] for i in kept], rows, notes)
