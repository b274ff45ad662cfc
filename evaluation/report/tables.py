"""A results table with its statistics, written as Markdown, CSV and LaTeX (booktabs).

A cell holds the mean over seeds, their standard deviation (with several seeds) and the paired-bootstrap
interval of the row's difference from the reference row. In Markdown and LaTeX a cell whose interval
excludes 0 is marked `*`; a second table lists the differences with their intervals.
"""
from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass, field
from pathlib import Path

from evaluation.core.stats import Interval, level_text
from toolbox.atomic import atomic_write_text

DASH = "–"
MARK = "*"


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

    @property
    def has_diffs(self) -> bool:
        return any(c.diff is not None for r in self.rows for c in r.cells)


def _number(value: float | None, digits: int = 2, sign: bool = False) -> str:
    if value is None or value != value:
        return DASH
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def cell_text(cell: Cell, latex: bool = False) -> str:
    """`67.15`, `67.15 ± 0.40`, with `*` when the difference from the reference is outside the noise."""
    text = _number(cell.value)
    if cell.value is not None and cell.sd is not None:
        text += (r" $\pm$ " if latex else " ± ") + _number(cell.sd)
    if cell.diff is not None and cell.diff.excludes_zero:
        text += r"\textsuperscript{*}" if latex else MARK
    return text


def diff_text(cell: Cell) -> str:
    """`+1.23 [0.40, 2.05]`, or a dash."""
    d = cell.diff
    if d is None:
        return DASH
    return f"{_number(d.delta, sign=True)} [{_number(d.low, sign=True)}, {_number(d.high, sign=True)}]"


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
        lines += ["", f"Difference from the reference row, with its {level_text()} paired-bootstrap interval "
                      f"(`{MARK}` above: the interval excludes 0):", ""]
        lines += markdown_grid(["Method"] + table.columns, table.rows, diff_text)
    if table.notes:
        lines += [""] + [f"- {n}" for n in table.notes]
    if table.reference_block is not None:
        block = table.reference_block
        lines += ["", f"*{block.title}*", ""] + markdown_grid(["Method"] + block.columns, block.rows, cell_text)
    if table.footer:
        lines += ["", table.footer]
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    """One line per row: group, method, seeds, then value / sd / difference / interval per column."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    stats = ("", " sd", " diff", " diff low", " diff high")
    writer.writerow(["group", "method", "seeds", "reference"] + [c + s for c in table.columns for s in stats])
    for row in table.rows:
        values: list[object] = [row.group, row.label, row.seeds, int(row.reference)]
        for c in row.cells:
            d = c.diff
            values += [_csv(c.value), _csv(c.sd), _csv(d and d.delta), _csv(d and d.low), _csv(d and d.high)]
        writer.writerow(values)
    return out.getvalue()


def _csv(value: float | None) -> str:
    return "" if value is None or value != value else f"{value:.4f}"


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
    caption = _tex(table.title) + (r" (\textsuperscript{*}: the 95\% paired-bootstrap interval of the difference "
                                   r"from the reference row excludes 0)" if table.has_diffs else "")
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
