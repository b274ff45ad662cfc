"""The SCST probe's report, in the seed's layout: Table 2 (cross-score matrix: rows the reward each captioner
was trained with, CE included; columns every probed run as scorer; BLEU-4 and CIDEr), the reward each SCST
captioner was trained with, before (CE) and after, with its paired-bootstrap interval over the evaluation
images, Table 3 (examples), Table 4 (perplexity, length, nouns) and Table 5 (top prefixes and POS patterns).
Numeric tables are written as Markdown, CSV and LaTeX (`evaluation.report.tables`)."""
from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from captioning.metrics import Style, pos_pattern, prefix, top
from evaluation.core.common import write_result
from evaluation.core.items import ItemScores
from evaluation.core.stats import level_text, paired_bootstrap, resamples_text
from evaluation.report.tables import Cell, Row, Table, index_section
from toolbox.atomic import atomic_write_text

CE, REFERENCES = "CE", "References (first)"
KIND_NAMES = {"itm": "ITM p(match) %", "itc": "ITC cosine x100"}


@dataclass
class ProbeResult:
    """Everything the report shows; per-image lists follow `image_ids`."""

    image_ids: list[str]
    image_names: list[str]
    references: list[list[str]]
    systems: dict[str, list[str]]  # caption of each image per system: CE, SCST ..., References (first)
    trained_with: dict[str, tuple[str, str]]  # SCST system -> (scorer label, reward kind)
    scorers: list[str]
    kinds: list[str]
    scores: dict[str, dict[str, dict[str, list[float]]]]  # system -> scorer -> kind -> per image
    coco: dict[str, dict[str, Any]]
    style: dict[str, Style]
    tagged: dict[str, list[tuple[list[str], list[int]]]]
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # training record of each trained system


def mean_score(r: ProbeResult, system: str, scorer: str, kind: str) -> float:
    """A system's mean score (x100) by one scorer."""
    return 100.0 * float(np.mean(r.scores[system][scorer][kind]))


def cross_score_table(r: ProbeResult) -> Table:
    """Table 2: each captioner's captions scored by every probed run, and BLEU-4 / CIDEr."""
    columns = [(s, k) for k in r.kinds for s in r.scorers]
    rows = [Row("", name, [Cell(mean_score(r, name, s, k)) for s, k in columns]
                + [Cell(r.coco.get(name, {}).get(m)) for m in ("bleu4", "cider")]) for name in r.systems]
    return Table("table_2", "Table 2: cross-scores of the captioners' greedy captions on the evaluation images "
                 "(rows: the reward the captioner was trained with; columns: the probed run as scorer), with BLEU-4 "
                 "and CIDEr against the references", [f"{KIND_NAMES[k]}: {s}" for s, k in columns] + ["BLEU-4", "CIDEr"],
                 rows, [f"{len(r.image_ids)} evaluation images; greedy decoding; BLEU and CIDEr from pycocoevalcap "
                        "on lower-cased word tokens (no Java tokenizer)."])


def reward_table(r: ProbeResult) -> Table:
    """Each SCST captioner's own reward before (the CE captioner) and after SCST, and the paired-bootstrap
    interval of the change over the evaluation images."""
    rows = []
    for name, (scorer, kind) in r.trained_with.items():
        before = ItemScores(tuple(r.image_ids), np.asarray(r.scores[CE][scorer][kind]))
        after = ItemScores(tuple(r.image_ids), np.asarray(r.scores[name][scorer][kind]))
        change = paired_bootstrap(after, before, seed=zlib.crc32(name.encode()))
        curve = [p for p in r.records.get(name, {}).get("curve", []) if "reward" in p]
        cells = [before.metric(), after.metric()] + ([change.delta, change.low, change.high] if change else [None] * 3)
        cells += [100.0 * curve[0]["reward"], 100.0 * curve[-1]["reward"]] if curve else [None, None]
        rows.append(Row("", name, [Cell(v) for v in cells]))
    return Table("scst_reward", "The reward each SCST captioner was trained with, on the evaluation images: the CE "
                 f"captioner's captions (before) and the SCST captioner's (after), the change with its {level_text()} "
                 f"paired-bootstrap interval ({resamples_text()} of the images), and the mean reward of the training "
                 "samples at the first and last logged SCST step",
                 ["before (CE)", "after (SCST)", "change", f"{level_text()} low", f"{level_text()} high",
                  "training: first", "training: last"], rows, ["x100 (ITM: the match probability in %)."])


def style_table(r: ProbeResult) -> Table:
    """Table 4: perplexity under the trigram LM, length, nouns and unique nouns per caption."""
    rows = [Row("", name, [Cell(s.perplexity), Cell(s.length), Cell(s.nouns), Cell(s.unique_nouns)])
            for name, s in r.style.items()]
    unscored = {name: s.unscored for name, s in r.style.items() if s.unscored}
    notes = ["Perplexity: Kneser-Ney trigram LM (nltk.lm) of the training shards' captions, per word token; nouns "
             "(UPOS NOUN) counted with the project's spaCy tagger."]
    if unscored:
        notes.append("Captions left out of the perplexity (a word the LM never saw): "
                     + ", ".join(f"{n} {c}" for n, c in unscored.items()) + ".")
    return Table("table_4", "Table 4: perplexity, average length (words), nouns and unique nouns per caption",
                 ["Perplexity", "Length", "Nouns", "Unique nouns"], rows, notes)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def examples_markdown(r: ProbeResult, n: int) -> str:
    """Table 3: the captions of the first n evaluation images, CE and each SCST captioner side by side."""
    names = [s for s in r.systems if s != REFERENCES]
    lines = ["### Table 3: examples (greedy captions of the same images)", "",
             "| Image | Reference | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for i in range(min(n, len(r.image_ids))):
        lines.append(f"| {r.image_names[i]} | {_cell(r.references[i][0])} | "
                     + " | ".join(_cell(r.systems[s][i]) for s in names) + " |")
    return "\n".join(lines) + "\n"


def patterns_markdown(r: ProbeResult, k: int = 5) -> str:
    """Table 5: the commonest 3-word prefixes and POS patterns (noun phrases merged, REL = ADP or VERB)."""
    lines = ["### Table 5: top prefixes and POS patterns (share of captions, %)", "",
             "| System | Top prefixes | Top POS patterns |", "|---|---|---|"]
    for name, texts in r.systems.items():
        prefixes = "<br>".join(f"{_cell(p) or '(empty)'} ({s:.0f})" for p, s in top((prefix(t) for t in texts), k))
        patterns = "<br>".join(f"{p or '(empty)'} ({s:.0f})"
                               for p, s in top((pos_pattern(u) for _, u in r.tagged[name]), k))
        lines.append(f"| {name} | {prefixes} | {patterns} |")
    lines += ["", "Patterns: NP = a run of DET/NUM/ADJ/NOUN/PROPN/PRON holding a noun or pronoun (a comma or a new "
              "determiner starts the next); REL = a run of ADP or VERB; other classes by name; punctuation dropped."]
    return "\n".join(lines) + "\n"


def write_report(r: ProbeResult, out: Path, n_examples: int = 8) -> Path:
    """Tables, `probe_scst.json` (every number and caption) and `index.md` in `out`; returns the index."""
    out.mkdir(parents=True, exist_ok=True)
    sections = ["# SCST probe: which captions does each model reward?", "",
                "A captioner over frozen image features, trained with cross-entropy (CE), then fine-tuned with "
                "self-critical sequence training (SCST, greedy baseline) on a probed run's score as reward."]
    timing = [f"{name}: {rec.get('seconds', 0):.0f} s on {rec.get('images')} training images"
              for name, rec in r.records.items()]
    if timing:
        sections += ["", "Training time: " + "; ".join(timing) + "."]
    parts = [cross_score_table(r), reward_table(r) if r.trained_with else None, examples_markdown(r, n_examples),
             style_table(r), patterns_markdown(r)]
    for part in filter(None, parts):
        if isinstance(part, str):
            sections += ["", part.rstrip()]
            continue
        sections += index_section(part, out)
    write_result(out / "probe_scst.json", {**asdict(r), "tagged": None})
    index = out / "index.md"
    atomic_write_text(index, "\n".join(sections) + "\n")
    return index
