"""ViZer's report, in the seed's layout: Table 1 (BLEU-1..4, ROUGE-L, CIDEr and the CLIPScore analogue for Base /
RL / ViZer_GT / ViZer_G, each with its difference from Base and the 95 % paired-bootstrap interval over the
evaluation images, and each value's own interval), the grounding table (precision and recall of shape and colour
mentions against the scenes' ground truth), Table 2 (mapper width x mapping data size, both variants), the
control table (each cell's loss with own and with shuffled captions, the share of the gain that survives the
control, the share of captions LoRA changed; `control`) and Figure 1 (example images with the four captions).
Tables are Markdown, CSV and LaTeX (`evaluation.report.tables`)."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from captioning.metrics import coco_scores
from evaluation.core.common import write_result
from evaluation.core.stats import RESAMPLES, level_text, percentile_interval, resamples_text
from evaluation.report.tables import Cell, Row, Table, index_section
from captioning.vizer.grounding import ground
from captioning.vizer.metrics import (Statistic, bleu_counts, bleu_statistic, draws, mean_statistic,
                                      paired_difference, ratio_statistic, rouge_l)
from captioning.vizer.pipeline import BASE
from toolbox.atomic import atomic_write_text
from toolbox.figures import pyplot, save_figure

ITC = "CLIPScore analogue (ITC cos x100)"
TABLE_1 = ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr", ITC]
GROUNDING = ["precision", "recall"]
PLACEMENTS = {"text": "the text path only (self-attention and MLP; not the image projection or the cross-attention)",
              "all": "every linear layer but the LM head (the old placement, image path included)"}
CONTROL = ["own, before", "own, after", "shuffled, before", "shuffled, after", "after, Base captions",
           "surviving share (%)", "captions changed (%)", "word edit rate (%)"]
CONTROL_NOTES = [
    "Own: each captioner's greedy caption of the image. Shuffled: the image's states computed on the same captioner's "
    "caption of another image (a fixed seeded derangement: no image keeps its own caption), so any fall of this loss "
    "comes through a path that does not depend on the caption. After, Base captions: the LoRA captioner's states on "
    "Base's captions (the gain without changing any caption).",
    "Surviving share: (gain own - gain shuffled) / gain own, gain = loss before - loss after: the share of the "
    "own-caption loss drop that is not also had with captions that do not match the image (100 % = the caption "
    "carries all of it, 0 % = none of it; above 100 % when the shuffled loss rose; a dash when the own-caption loss "
    "did not fall).",
    "Captions changed: share of the evaluation images whose greedy caption differs from Base's (exact string); word "
    "edit rate: mean word-level Levenshtein distance from Base's caption over its number of words."]


def statistics(r: dict[str, Any], captions: list[str], itc: list[float] | None,
               scenes: dict[str, Any] | None) -> dict[str, Statistic]:
    """Every metric of one system's captions as a function of resampled image indices."""
    refs = r["references"]
    counts = bleu_counts(refs, captions)
    out: dict[str, Statistic] = {f"BLEU-{n}": bleu_statistic(counts, n) for n in range(1, 5)}
    out["ROUGE-L"] = mean_statistic(rouge_l(refs, captions))
    out["CIDEr"] = mean_statistic(coco_scores(refs, captions)["cider_per_image"])
    if itc is not None:
        out[ITC] = mean_statistic([100.0 * v for v in itc])
    if scenes is not None:
        g = [ground(c, scenes[i]["objects"]) for c, i in zip(captions, r["image_ids"])]
        out["precision"] = ratio_statistic([x.true_mentions for x in g], [x.mentions for x in g])
        out["recall"] = ratio_statistic([x.mentioned_objects for x in g], [x.objects for x in g])
    return out


def compared(r: dict[str, Any], stats: dict[str, dict[str, Statistic]], columns: list[str], key: str, title: str,
             notes: list[str]) -> tuple[Table, dict[str, dict[str, list[float]]]]:
    """A table of the systems (Base the reference row; others with their paired differences) and each value's
    own 95 % interval."""
    n = len(r["image_ids"])
    idx, full = draws(n, RESAMPLES, seed=0), np.arange(n)[None]
    rows, own = [], {}
    for name, s in stats.items():
        cols = [c for c in columns if c in s]
        cells = [Cell(float(s[c](full)[0]), diff=None if name == BASE else paired_difference(s[c], stats[BASE][c],
                                                                                            n, idx)) for c in cols]
        rows.append(Row("", name, cells, reference=name == BASE))
        own[name] = {c: list(percentile_interval(s[c](idx))) for c in cols}
    present = [c for c in columns if all(c in s for s in stats.values())]
    return Table(key, title, present, rows, notes), own


def intervals_markdown(own: dict[str, dict[str, list[float]]]) -> str:
    """Each value's own 95 % bootstrap interval."""
    columns = list(next(iter(own.values())))
    lines = ["| Method | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    lines += [f"| {name} | " + " | ".join(f"[{v[c][0]:.2f}, {v[c][1]:.2f}]" for c in columns) + " |"
              for name, v in own.items()]
    return "\n".join(lines)


def grid_table(r: dict[str, Any], scenes: dict[str, Any] | None) -> Table:
    """Table 2: each (variant, mapping pairs, width) cell's captions after LoRA, and its training losses."""
    rows = []
    n = len(r["image_ids"])
    full = np.arange(n)[None]
    for cell in r["grid"]:
        s = statistics(r, cell["captions"], cell.get("itc"), scenes)
        values = [float(s[c](full)[0]) if c in s else None for c in ("BLEU-4", "CIDEr", ITC, *GROUNDING)]
        lora = cell["lora_loss"] or [None, None]
        values += [cell["mapper_loss"], lora[0], lora[1]]
        rows.append(Row(f"ViZer_{cell['variant'].upper()}", f"{cell['pairs']} pairs, width {cell['width']}",
                        [Cell(v) for v in values]))
    base = statistics(r, r["systems"][BASE], r.get("itc", {}).get(BASE), scenes)
    rows.insert(0, Row("", BASE, [Cell(float(base[c](full)[0]) if c in base else None)
                                  for c in ("BLEU-4", "CIDEr", ITC, *GROUNDING)] + [Cell(None)] * 3))
    return Table("table_2", "Table 2: mapper width x mapping data size, both variants (greedy captions of the "
                 "evaluation images after LoRA)", ["BLEU-4", "CIDEr", ITC, "grounding precision", "grounding recall",
                                                   "mapper loss (last)", "LoRA loss (first)", "LoRA loss (last)"],
                 rows, ["Losses are 1 - cos at the first / last logged step of training (training batches)."])


def control_table(r: dict[str, Any]) -> Table:
    """The control table: per grid cell, the LoRA loss on the evaluation images before / after with own and with
    shuffled captions, after with Base's captions, the surviving share and the changed-caption shares."""
    rows = []
    for cell in r["grid"]:
        c = cell.get("control")
        if c is None:
            continue
        share = c["surviving_share"]
        values = [100 * v for v in (*c["loss_own"], *c["loss_shuffled"], c["loss_base_captions"])]
        values += [None if share is None else 100 * share, 100 * c["changed"], 100 * c["edit_rate"]]
        label = f"{cell['pairs']} pairs, width {cell['width']}" + (" (main)" if cell.get("main") else "")
        rows.append(Row(f"ViZer_{cell['variant'].upper()}", label, [Cell(v) for v in values]))
    return Table("table_control", "Control: the LoRA loss, 100 x (1 - cos), on the evaluation images through each "
                 "cell's frozen mapper, before (Base) and after LoRA, with own and with shuffled captions", CONTROL,
                 rows, CONTROL_NOTES)


def figure_1(r: dict[str, Any], systems: list[str], out: Path, n: int = 4) -> Path:
    """Figure 1: the first n evaluation images, each with every system's caption."""
    from PIL import Image

    plt = pyplot()
    n = min(n, len(r["image_ids"]))
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 5.6), squeeze=False)
    for k, ax in enumerate(axes[0]):
        with Image.open(r["image_paths"][k]) as image:
            ax.imshow(image.convert("RGB"))
        ax.set_axis_off()
        text = "\n".join(textwrap.fill(f"{name}: {r['systems'][name][k]}", 44) for name in systems)
        ax.text(0.0, -0.04, text, transform=ax.transAxes, va="top", ha="left", fontsize=7.5, family="monospace")
    fig.subplots_adjust(left=0.02, right=0.98, top=0.98, bottom=0.45, wspace=0.08)
    return save_figure(fig, out / "figure_1.png", out / "figure_1.pdf")


def examples_markdown(r: dict[str, Any], systems: list[str], n: int = 8) -> str:
    """The captions of the first n evaluation images, before (Base) and after, every system side by side."""
    lines = ["| Image | Reference | " + " | ".join(systems) + " |", "|---|---|" + "---|" * len(systems)]
    for k in range(min(n, len(r["image_ids"]))):
        cells = [r["image_names"][k], r["references"][k][0]] + [r["systems"][s][k] for s in systems]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def write_vizer_report(r: dict[str, Any], out: Path, scenes_json: Path | None, scorer: str | None) -> Path:
    """Tables, Figure 1, `vizer.json` (every caption and number) and `index.md` in `out`; returns the index."""
    out.mkdir(parents=True, exist_ok=True)
    scenes = json.loads(scenes_json.read_text(encoding="utf-8")) if scenes_json else None
    systems = [s for s in r["systems"]]
    stats = {name: statistics(r, r["systems"][name], r.get("itc", {}).get(name), scenes) for name in systems}
    itc_note = (f"{ITC}: the mean cosine (x100) of the ITC features of image and caption under the pre-trained posmask "
                f"run {scorer}, standing in for CLIPScore (no CLIP model here)." if scorer else
                "No --scorer run: no CLIPScore analogue.")
    table_1, own_1 = compared(r, stats, TABLE_1, "table_1", "Table 1: caption quality of the greedy captions of the "
                              "evaluation images (Base = the CE captioner; difference from Base with its "
                              f"{level_text()} paired-bootstrap interval over the images below)",
                              [itc_note, "BLEU, ROUGE-L and CIDEr: pycocoevalcap on lower-cased word tokens."])
    lora = r["settings"]["lora"]
    placement = lora.get("targets", "all")
    sections = ["# ViZer on the project's captioner: zero-label caption enhancement", "",
                f"{len(r['image_ids'])} evaluation images; mapper trained on {', '.join(r['settings']['variants'])} "
                f"pairs; LoRA on {r['unlabeled_images']} unlabeled images, adapters (rank {lora['rank']}, alpha "
                f"{lora['alpha']}, dropout {lora['dropout']}) on `{placement}` = "
                f"{PLACEMENTS.get(placement, placement)}; captioner states in eval mode (dropout off) for mapper and "
                f"LoRA alike. This call took {r['seconds']:.0f} s (stages "
                f"reused from an earlier call count 0); training time from the stages' records: mappers "
                f"{sum(c['seconds']['mapper'] for c in r['grid']):.0f} s, LoRA "
                f"{sum(c['seconds']['lora'] for c in r['grid']):.0f} s ({len(r['grid'])} cells)."]
    sections += index_section(table_1, out)
    sections += ["", f"Each value's own {level_text()} bootstrap interval ({resamples_text()} of the images):", "",
                 intervals_markdown(own_1)]
    own_g: dict[str, Any] = {}
    if scenes is not None:
        table_g, own_g = compared(r, stats, GROUNDING, "table_grounding", "Grounding: share of the shape / colour "
                                  "mentions true of the image (precision) and share of the image's objects "
                                  "mentioned (recall), against the scenes' ground truth (%)",
                                  ["A mention is a shape noun with the colour among the adjectives before it, if "
                                   "any; micro averages over the images (captioning.vizer.grounding)."])
        sections += index_section(table_g, out) + ["", f"Each value's own {level_text()} bootstrap interval:", "",
                                                    intervals_markdown(own_g)]
    if r["grid"]:
        sections += index_section(grid_table(r, scenes), out)
        check = control_table(r)
        if check.rows:
            sections += index_section(check, out)
    figure = figure_1(r, systems, out)
    sections += ["", "### Figure 1: examples (greedy captions)", "", f"![Figure 1]({figure.name})", "",
                 examples_markdown(r, systems)]
    main_control = {f"ViZer_{c['variant'].upper()}": c.get("control") for c in r["grid"] if c.get("main")}
    write_result(out / "vizer.json", {**r, "intervals": {"table_1": own_1, "grounding": own_g},
                                      "control": main_control})
    index = out / "index.md"
    atomic_write_text(index, "\n".join(sections) + "\n")
    return index
