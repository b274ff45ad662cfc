"""A results table with its statistics, written as Markdown, CSV and LaTeX (booktabs).

A cell holds the mean over seeds, their standard deviation (with several seeds) and the row's difference from
the reference row with its interval and p-values (evaluation.core.stats). In Markdown and LaTeX a cell its family
calls a difference is marked `*` (`†` when a side has one seed: items only); a second table lists the
differences with their intervals, a third their raw and adjusted p-values.
"""
from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass, field
from pathlib import Path

from evaluation.core.stats import ADJUSTMENT_NAMES, Comparison, Interval, level_text
from toolbox.atomic import atomic_write_text

DASH = "–"
MARK = "*"  # a difference over seeds and items
ITEM_ONLY_MARK = "†"  # a difference over the evaluation items only (a side with one seed)


@dataclass(frozen=True)
class Cell:
    value: float | None = None
    sd: float | None = None
    diff: Interval | None = None


@dataclass
class Row:
    group: str
    label: str
    cells: list[Cell]
    seeds: int = 0
    reference: bool = False


@dataclass
class Table:
    key: str  # file stem, e.g. table_4_1
    title: str
    columns: list[str]
    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    reference_block: "Table | None" = None  # e.g. the thesis's published numbers
    footer: str | None = None  # a closing line in Markdown (e.g. the data behind the table)
    adjustment: str | None = None  # the family's correction (evaluation.core.stats.ADJUSTMENTS)

    @property
    def has_diffs(self) -> bool:
        return any(c.diff is not None for r in self.rows for c in r.cells)

    @property
    def comparisons(self) -> list[Comparison]:
        return [c.diff for r in self.rows for c in r.cells if isinstance(c.diff, Comparison)]


def _number(value: float | None, digits: int = 2, sign: bool = False) -> str:
    if value is None or value != value:
        return DASH
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def mark(cell: Cell) -> str:
    """`*`, `†` or "" (see module doc)."""
    d = cell.diff
    if d is None or not d.marked:
        return ""
    return ITEM_ONLY_MARK if d.item_only else MARK


def cell_text(cell: Cell, latex: bool = False) -> str:
    """`67.15`, `67.15 ± 0.40`, with its mark when the family calls its difference from the reference one."""
    text = _number(cell.value)
    if cell.value is not None and cell.sd is not None:
        text += (r" $\pm$ " if latex else " ± ") + _number(cell.sd)
    symbol = mark(cell)
    if symbol:
        text += (r"\textsuperscript{" + (r"\dag" if symbol == ITEM_ONLY_MARK else "*") + "}") if latex else symbol
    return text


def diff_text(cell: Cell) -> str:
    """`+1.23 [0.40, 2.05]`, or a dash."""
    d = cell.diff
    if d is None:
        return DASH
    return f"{_number(d.delta, sign=True)} [{_number(d.low, sign=True)}, {_number(d.high, sign=True)}]"


def p_text(cell: Cell) -> str:
    """`0.0021 / 0.0410` (raw / adjusted), or a dash."""
    d = cell.diff
    if not isinstance(d, Comparison):
        return DASH
    return f"{_p(d.p)} / {_p(d.p_adjusted if d.p_adjusted is not None else d.p)}"


def _p(value: float) -> str:
    return f"{value:.4f}" if value >= 1e-4 else f"{value:.1e}"


def _label(row: Row) -> str:
    return row.label + (" (ref.)" if row.reference else "")


def _grouped(rows: list[Row]) -> list[tuple[str, list[Row]]]:
    """Consecutive rows of one group together, in table order."""
    return [(group, list(members)) for group, members in itertools.groupby(rows, key=lambda r: r.group)]


def markdown_grid(header: list[str], rows: list[Row], text) -> list[str]:
    """Markdown table lines, with a group line before each named group."""
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for group, members in _grouped(rows):
        if group:
            lines.append(f"| *{group}* |" + " |" * (len(header) - 1))
        lines += [f"| {_label(r)} | " + " | ".join(text(c) for c in r.cells) + " |" for r in members]
    return lines


def to_markdown(table: Table) -> str:
    """The table, its differences from the reference row, its notes and its reference block."""
    lines = [f"### {table.title}", ""] + markdown_grid(["Method"] + table.columns, table.rows, cell_text)
    if table.has_diffs:
        lines += ["", f"Difference from the reference row, with its {level_text(_level(table))} interval:", ""]
        lines += markdown_grid(["Method"] + table.columns, table.rows, diff_text)
    if table.comparisons:
        correction = ADJUSTMENT_NAMES[_adjustment(table)]
        lines += ["", f"Two-sided p-values of the differences, raw / adjusted ({correction}):", ""]
        lines += markdown_grid(["Method"] + table.columns, table.rows, p_text)
    if table.notes:
        lines += [""] + [f"- {n}" for n in table.notes]
    if table.reference_block is not None:
        block = table.reference_block
        lines += ["", f"*{block.title}*", ""] + markdown_grid(["Method"] + block.columns, block.rows, cell_text)
    if table.footer:
        lines += ["", table.footer]
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    """One line per row: group, method, seeds, then value / sd / difference / interval / p-values / mark per
    column."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    stats = ("", " sd", " diff", " diff low", " diff high", " p", " p adjusted", " mark")
    writer.writerow(["group", "method", "seeds", "reference"] + [c + s for c in table.columns for s in stats])
    for row in table.rows:
        values: list[object] = [row.group, row.label, row.seeds, int(row.reference)]
        for c in row.cells:
            d = c.diff
            p = d.p if isinstance(d, Comparison) else None
            q = (d.p_adjusted if d.p_adjusted is not None else d.p) if isinstance(d, Comparison) else None
            values += [_csv(c.value), _csv(c.sd), _csv(d and d.delta), _csv(d and d.low), _csv(d and d.high),
                       _csv(p, 6), _csv(q, 6), mark(c)]
        writer.writerow(values)
    return out.getvalue()


def _level(table: Table) -> float:
    comparisons = table.comparisons
    return 1 - comparisons[0].alpha if comparisons else 0.95


def _adjustment(table: Table) -> str:
    return table.adjustment or "none"


def _csv(value: float | None, digits: int = 4) -> str:
    return "" if value is None or value != value else f"{value:.{digits}f}"


def _tex(text: str) -> str:
    return text.replace("\\", r"\textbackslash{}").replace("&", r"\&").replace("%", r"\%").replace(
        "_", r"\_").replace("#", r"\#").replace("–", "--")


def to_latex(table: Table) -> str:
    """A booktabs tabular with group rows in italics; `*` cells as in Markdown."""
    cols = "l" + "r" * len(table.columns)
    lines = [r"\begin{table}[t]", r"\centering", r"\small", f"\\begin{{tabular}}{{{cols}}}", r"\toprule",
             " & ".join(["Method"] + [_tex(c) for c in table.columns]) + r" \\", r"\midrule"]
    for index, (group, members) in enumerate(_grouped(table.rows)):
        if group:
            if index:
                lines.append(r"\midrule")
            lines.append(f"\\multicolumn{{{len(table.columns) + 1}}}{{l}}{{\\textit{{{_tex(group)}}}}} \\\\")
        for r in members:
            cells = [cell_text(c, latex=True).replace("–", "--") for c in r.cells]
            lines.append(" & ".join([_tex(_label(r))] + cells) + r" \\")
    if table.comparisons:
        caption = _tex(table.title) + r" (\textsuperscript{*}, \textsuperscript{\dag}: a difference from the " \
            r"reference row after the family's correction; see the notes)"
    else:
        caption = _tex(table.title) + (r" (\textsuperscript{*}: the " + _tex(level_text(_level(table))) + r" interval "
                                       r"of the difference excludes 0)" if table.has_diffs else "")
    lines += [r"\bottomrule", r"\end{tabular}", f"\\caption{{{caption}}}", f"\\label{{tab:{table.key}}}",
              r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_table(table: Table, out_dir: Path) -> str:
    """TABLE.md, TABLE.csv and TABLE.tex in `out_dir`; returns the Markdown."""
    atomic_write_text(out_dir / f"{table.key}.csv", to_csv(table))
    atomic_write_text(out_dir / f"{table.key}.tex", to_latex(table))
    markdown = to_markdown(table)
    atomic_write_text(out_dir / f"{table.key}.md", markdown)
    return markdown


def index_section(table: Table, out_dir: Path) -> list[str]:
    """Write the table's files and return its lines for an index page: the Markdown, then links to the files."""
    markdown, key = write_table(table, out_dir), table.key
    return ["", markdown.rstrip(), "", f"Files: [{key}.md]({key}.md), [{key}.csv]({key}.csv), [{key}.tex]({key}.tex)"]
