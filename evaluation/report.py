"""Thesis-style Markdown tables across runs, and the report folder with its index page.

Rows are masking methods grouped non-functional (NOUN, VERB, ADJ, ADV, PROPN), functional (DET, AUX,
PRON, ADP) and baselines (random, none, albef). A task a run was not evaluated on shows `–`.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evaluation import plots
from evaluation.probe_perturb import VARIANTS
from evaluation.runs import GROUPS, TASKS, RunInfo
from evaluation.valse import PIECE_ORDER
from shards.atomic import atomic_write_text
from shards.manifest import HISTOGRAM_NAME

log = logging.getLogger(__name__)
DASH = "–"


def fmt(value: Any, digits: int = 1) -> str:
    """A number with fixed decimals, or a dash."""
    if value is None or (isinstance(value, float) and value != value):
        return DASH
    if isinstance(value, (int, float)):
        return f"{value:.{digits}f}"
    return str(value)


def grouped_table(runs: Sequence[RunInfo], header: Sequence[str], cells: Callable[[RunInfo], list[str]],
                  bold_best: Sequence[int] = ()) -> str:
    """A Markdown table, one row per run under group rows; best value of the `bold_best` columns bold."""
    rows = [(r, cells(r)) for r in runs]
    best: dict[int, float] = {}
    for c in bold_best:
        vals = [float(cs[c]) for _, cs in rows if cs[c] not in (DASH, "")]
        if len(vals) > 1 and max(vals) > min(vals):
            best[c] = max(vals)
    lines = ["| Masking | " + " | ".join(header) + " |", "|---|" + "---:|" * len(header)]
    for group in [g for g, _ in GROUPS] + ["Other"]:
        members = [(r, cs) for r, cs in rows if r.group == group]
        if not members:
            continue
        lines.append(f"| *{group}* |" + " |" * len(header))
        for r, cs in members:
            shown = [f"**{v}**" if c in best and v != DASH and float(v) == best[c] else v for c, v in enumerate(cs)]
            lines.append(f"| {r.label} | " + " | ".join(shown) + " |")
    return "\n".join(lines)


def retrieval_table(runs: Sequence[RunInfo]) -> str | None:
    """TR / IR R@1/5/10 and mean (ITM re-ranked)."""
    have = [r for r in runs if "retrieval" in r.results]
    if not have:
        return None
    keys = ["tr_r1", "tr_r5", "tr_r10", "ir_r1", "ir_r5", "ir_r10", "r_mean"]
    header = ["TR R@1", "TR R@5", "TR R@10", "IR R@1", "IR R@5", "IR R@10", "Mean"]

    def cells(r: RunInfo) -> list[str]:
        m = r.results.get("retrieval", {}).get("metrics", {})
        return [fmt(m.get(k)) for k in keys]

    return grouped_table(runs, header, cells, bold_best=range(len(keys)))


def valse_pieces(runs: Sequence[RunInfo]) -> list[str]:
    """Pieces that ran for at least one run, in paper order (unknown pieces alphabetically after)."""
    seen = {p for r in runs for p, v in r.results.get("valse", {}).get("pieces", {}).items() if v.get("status") == "ok"}
    order = {n: i for i, n in enumerate(PIECE_ORDER)}
    return sorted(seen, key=lambda p: (order.get(p, len(order)), p))


def valse_table(runs: Sequence[RunInfo]) -> str | None:
    """acc_r per piece + average."""
    pieces = valse_pieces(runs)
    if not pieces:
        return None

    def cells(r: RunInfo) -> list[str]:
        v = r.results.get("valse", {})
        ps = v.get("pieces", {})
        row = [fmt(ps.get(p, {}).get("acc_r")) if ps.get(p, {}).get("status") == "ok" else DASH for p in pieces]
        return row + [fmt(v.get("average", {}).get("acc_r"))]

    return grouped_table(runs, pieces + ["Avg."], cells, bold_best=range(len(pieces) + 1))


def valse_detail_table(runs: Sequence[RunInfo]) -> str | None:
    """Average acc_r, p_c, p_f, acc over pieces."""
    if not any("valse" in r.results for r in runs):
        return None
    keys = ("acc_r", "p_c", "p_f", "acc")

    def cells(r: RunInfo) -> list[str]:
        a = r.results.get("valse", {}).get("average", {})
        return [fmt(a.get(k)) for k in keys] + [fmt(a.get("n_pieces"), 0)]

    return grouped_table(runs, ["acc_r", "p_c", "p_f", "acc", "pieces"], cells, bold_best=(0, 3))


def vqa_table(runs: Sequence[RunInfo]) -> str | None:
    """VQA accuracy per answer type + overall."""
    have = [r for r in runs if "metrics" in r.results.get("vqa", {})]
    if not have:
        return None
    types = sorted({t for r in have for t in r.results["vqa"]["metrics"].get("per_answer_type", {})},
                   key=lambda t: (["yes/no", "number", "other"].index(t) if t in ("yes/no", "number", "other") else 3, t))

    def cells(r: RunInfo) -> list[str]:
        m = r.results.get("vqa", {}).get("metrics", {})
        per = m.get("per_answer_type", {})
        return [fmt(per.get(t), 2) for t in types] + [fmt(m.get("overall"), 2)]

    return grouped_table(runs, [t.capitalize() if t != "yes/no" else "Yes/No" for t in types] + ["Overall"], cells,
                         bold_best=range(len(types) + 1))


def probe_table(runs: Sequence[RunInfo]) -> str | None:
    """Mean ITM match probability per variant, and the share of images where the original wins."""
    have = [r for r in runs if "probe" in r.results]
    if not have:
        return None
    variants = list(VARIANTS)
    header = ["p(original)"] + [f"p({v})" for v in variants] + [f"wins vs {v} %" for v in variants]

    def cells(r: RunInfo) -> list[str]:
        v = r.results.get("probe", {}).get("variants", {})
        return ([fmt(v.get("original", {}).get("mean_match_prob"), 3)]
                + [fmt(v.get(n, {}).get("mean_match_prob"), 3) for n in variants]
                + [fmt(v.get(n, {}).get("original_wins")) for n in variants])

    return grouped_table(runs, header, cells)


def headline(r: RunInfo) -> dict[str, float | None]:
    """The three summary numbers of a run."""
    return {
        "Retrieval mean R": r.results.get("retrieval", {}).get("metrics", {}).get("r_mean"),
        "VALSE acc_r": r.results.get("valse", {}).get("average", {}).get("acc_r"),
        "VQA overall": r.results.get("vqa", {}).get("metrics", {}).get("overall"),
    }


def ratio_table(runs: Sequence[RunInfo]) -> str | None:
    """Masking ratio 0.7 vs 1.0 for each POS class that has both runs."""
    by: dict[tuple[str, float], RunInfo] = {(r.method, round(r.ratio, 3)): r for r in runs if r.ratio is not None}
    methods = [m for m in dict.fromkeys(r.method for r in sorted(runs, key=RunInfo.sort_key))
               if (m, 0.7) in by and (m, 1.0) in by]
    if not methods:
        return None
    names = list(headline(runs[0]))
    header = ["Masking"] + [f"{n} ({x})" for n in names for x in ("0.7", "1.0", "Δ")]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for m in methods:
        a, b = headline(by[(m, 0.7)]), headline(by[(m, 1.0)])
        row = [m]
        for n in names:
            delta = b[n] - a[n] if a[n] is not None and b[n] is not None else None
            row += [fmt(a[n]), fmt(b[n]), (f"{delta:+.1f}" if delta is not None else DASH)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def runs_table(runs: Sequence[RunInfo]) -> str:
    """Which runs the report covers, and what was evaluated."""
    lines = ["| Run | Masking | Ratio | Preset | Evaluated | Data |", "|---|---|---:|---|---|---|"]
    for r in runs:
        data = sorted({Path(str(v.get("data", ""))).name for v in r.results.values() if v.get("data")})
        lines.append(f"| `{r.path}` | {r.method}{' (ALBEF)' if r.albef else ''} | {fmt(r.ratio, 2)} | {r.config.get('preset', DASH)} | "
                     f"{', '.join(t for t in TASKS if t in r.results) or DASH} | "
                     f"{', '.join(data) or DASH} |")
    return "\n".join(lines)


def build_report(runs: Sequence[RunInfo], out: Path, title: str = "posmask report") -> Path:
    """Write tables, figures and `index.md` into `out`; returns the index path."""
    out.mkdir(parents=True, exist_ok=True)
    runs = sorted(runs, key=RunInfo.sort_key)
    sections: list[str] = [f"# {title}", "", f"{len(runs)} run(s). Numbers in percent unless noted; "
                           "best per column in bold; `–` = not evaluated.", "", "## Runs", "", runs_table(runs)]
    tables = {
        "retrieval": ("Zero-shot image-text retrieval (ITC top-k re-ranked with ITM)", retrieval_table(runs)),
        "valse": ("VALSE, zero-shot with the ITM head: pairwise accuracy acc_r per piece", valse_table(runs)),
        "valse_detail": ("VALSE averages over pieces: acc_r, p_c, p_f, acc", valse_detail_table(runs)),
        "vqa": ("VQA v2 fine-tuning: accuracy per answer type", vqa_table(runs)),
        "ratio": ("Masking ratio 0.7 vs 1.0", ratio_table(runs)),
        "probe": ("Caption-perturbation probe: mean ITM match probability and share of images where the "
                  "original caption beats each variant", probe_table(runs)),
    }
    for key, (heading, table) in tables.items():
        if table is None:
            continue
        note = data_note(runs, key)
        body = table + (f"\n\n{note}" if note else "")
        atomic_write_text(out / f"{key}.md", f"## {heading}\n\n{body}\n")
        sections += ["", f"## {heading}", "", body]
    figures = []
    loss = plots.plot_run_losses(runs, out / "losses.png")
    if loss:
        figures.append(("Training losses (log scale)", loss.name))
    summary = plots.plot_summary([r.label for r in runs], [headline(r) for r in runs], out / "summary.png")
    if summary:
        figures.append(("Summary", summary.name))
    shard_dirs = list(dict.fromkeys(r.shards for r in runs if r.shards))
    for i, shards in enumerate(shard_dirs):
        hist = Path(shards) / f"{HISTOGRAM_NAME}.json"
        if not hist.is_file():
            log.warning("no POS histogram at %s", hist)
            continue
        name = f"{HISTOGRAM_NAME}.png" if len(shard_dirs) == 1 else f"{HISTOGRAM_NAME}_{i}.png"
        png = plots.plot_pos_histogram(hist, out / name, title=f"UPOS counts of {shards}")
        if png:
            figures.append((f"POS histogram of the training shards `{shards}`", png.name))
    if figures:
        sections += ["", "## Figures"]
        for caption, name in figures:
            sections += ["", f"### {caption}", "", f"![{Path(name).stem}]({name})"]
    notes = notes_section(runs)
    if notes:
        sections += ["", "## Notes", ""] + notes
    index = out / "index.md"
    atomic_write_text(index, "\n".join(sections) + "\n")
    log.info("wrote %s", index)
    return index


def data_note(runs: Sequence[RunInfo], key: str) -> str | None:
    """One line on the data behind a table (from the first run that has the task): sizes, chance, settings."""
    task = {"valse_detail": None, "ratio": None}.get(key, key)
    r = next((x.results[task] for x in runs if task and task in x.results), None)
    if r is None:
        return None
    src = Path(str(r.get("data", "?"))).name
    if task == "retrieval":
        chance = r.get("chance_r1") or {}
        return (f"Data: `{src}`, {r.get('n_images')} images / {r.get('n_texts')} captions, ITM re-ranks the ITC "
                f"top {r.get('k_rerank')}; chance R@1: TR {fmt(chance.get('tr'))}, IR {fmt(chance.get('ir'))}.")
    if task == "valse":
        sizes = ", ".join(f"{p} {v.get('n')}" for p, v in r.get("pieces", {}).items() if v.get("status") == "ok")
        subset = "valid subset (mturk.caption >= 2)" if r.get("valid_only", True) else "all entries"
        return f"Data: `{src}`, {subset}; entries per piece: {sizes}. Chance acc_r: 50."
    if task == "vqa":
        st = r.get("settings", {})
        return (f"Data: `{src}`, {r.get('n_train')} training / {r.get('n_eval')} {r.get('eval_split')} questions, "
                f"{r.get('n_answers')} answers; fine-tuned {fmt(st.get('epochs'), 2)} epochs, batch "
                f"{st.get('batch_size')}, lr {st.get('lr')}.")
    if task == "probe":
        return f"{r.get('n_images')} images, one caption each, seed {r.get('seed')}; tags from `{r.get('tags')}`."
    return None


def notes_section(runs: Sequence[RunInfo]) -> list[str]:
    """Missing images, VALSE pieces not run, evaluation data per run."""
    notes = []
    for r in runs:
        v = r.results.get("valse")
        if v and v.get("not_run"):
            notes.append(f"- {r.label}: VALSE pieces not run: {', '.join(v['not_run'])}")
        if v:
            miss = {p: x.get("n_missing", 0) for p, x in v.get("pieces", {}).items() if x.get("n_missing")}
            if miss:
                notes.append(f"- {r.label}: VALSE entries with missing images: "
                             + ", ".join(f"{p} {n}" for p, n in miss.items()))
        ret = r.results.get("retrieval")
        if ret and ret.get("missing_images"):
            notes.append(f"- {r.label}: retrieval images missing: {len(ret['missing_images'])}")
    return notes
