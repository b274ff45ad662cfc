"""The report's retrieval by ITC alone, before the ITM head re-ranks its top k: the features' own ranking, read from
each run's retrieval result (`itc`), beside the re-ranked R@1. Mean ± sd over seeds; no differences are tested (it
says where a re-ranked difference comes from: the ITC features or the ITM head)."""
from __future__ import annotations

from collections.abc import Sequence

from evaluation.report.study_tables import Method
from evaluation.report.tables import Cell, Row, Table
from evaluation.report.training_table import spread_cell

COLUMNS: tuple[tuple[str, str, str], ...] = (  # (column, result part, metric)
    ("ITC TR R@1", "itc", "tr_r1"), ("ITC TR R@5", "itc", "tr_r5"), ("ITC IR R@1", "itc", "ir_r1"),
    ("ITC IR R@5", "itc", "ir_r5"), ("re-ranked TR R@1", "metrics", "tr_r1"), ("re-ranked IR R@1", "metrics", "ir_r1"))


def _cell(method: Method, part: str, metric: str) -> Cell:
    values = (run.results.get("retrieval", {}).get(part, {}).get(metric) for run in method.runs)
    return spread_cell([float(v) if isinstance(v, (int, float)) else None for v in values])


def itc_table(methods: Sequence[Method]) -> Table | None:
    """The table, or None when no run's retrieval result holds the ITC ranking."""
    rows = [Row(m.group, m.label, [_cell(m, part, metric) for _, part, metric in COLUMNS], seeds=len(m.runs))
            for m in methods]
    if all(r.cells[0].value is None for r in rows):
        return None
    k = next((run.results["retrieval"].get("k_rerank") for m in methods for run in m.runs
              if "retrieval" in run.results), None)
    notes = ["Mean ± sd over seeds, from each run's retrieval result; no differences are tested here.",
             f"ITC: the ranking by the ITC features' similarity alone. Re-ranked: ITM re-scores the ITC top "
             f"{k if k is not None else 'k'} (the retrieval table's figures). An ITM head still on its 50 % plateau "
             "(see the training table) scores the pairs nearly alike, so re-ranking can put a model far below its own "
             "ITC ranking: a re-ranked difference between two runs whose ITC figures agree comes from the ITM head."]
    return Table("retrieval_itc", "Retrieval by ITC alone, before the ITM re-ranking",
                 [c for c, _, _ in COLUMNS], rows, notes)
