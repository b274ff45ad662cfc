"""The thesis's Tables 4.1–4.5 as layouts (the same rows in the same order, the same columns) and its
published numbers (`thesis_tables.json`, entered as data from the thesis, Chapter 4) for `--with-thesis`.

A layout row names the run it shows by the run's label (`NOUN 0.7`, `random 0.15`, `none`,
`ALBEF (random 0.15)`), which `evaluation.core.runs.RunInfo.label` derives from the run record.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

THESIS_DATA = Path(__file__).with_name("thesis_tables.json")
CONTENT = ("NOUN", "VERB", "ADJ", "ADV", "PROPN")
FUNCTION = ("DET", "AUX", "PRON", "ADP")
RETRIEVAL = ("retrieval/tr_r1", "retrieval/tr_r5", "retrieval/tr_r10",
             "retrieval/ir_r1", "retrieval/ir_r5", "retrieval/ir_r10")
VALSE_PIECES = ("existence", "plurals", "counting-hard", "counting-small-quant", "counting-adversarial", "relations",
                "action-replacement", "actant-swap", "coreference-standard", "coreference-hard", "foil-it")
VQA = ("vqa/yes/no", "vqa/number", "vqa/other", "vqa/overall")


@dataclass(frozen=True)
class RowSpec:
    group: str
    label: str  # as printed in the thesis
    run: str  # the run label it shows


@dataclass(frozen=True)
class TableSpec:
    key: str
    number: str  # "Table 4.1"
    what: str  # what it measures, without the data set
    thesis_data: str  # the data set the thesis evaluated
    columns: tuple[str, ...]  # as printed in the thesis
    metrics: tuple[str, ...]  # metric keys (evaluation.core.items / evaluation.report.study_tables)
    rows: tuple[RowSpec, ...]

    @property
    def task(self) -> str:
        return self.metrics[0].split("/")[0]

    def title(self, data: str) -> str:
        """The title naming the data set actually evaluated, beside the thesis's."""
        return f"{self.number}: {self.what} on {data} (the thesis: {self.thesis_data})"


def _classes(group: str, names: tuple[str, ...], ratio: str = "0.7") -> tuple[RowSpec, ...]:
    return tuple(RowSpec(group, name, f"{name} {ratio}") for name in names)


ALBEF = RowSpec("", "ALBEF", "ALBEF (random 0.15)")
RANDOM = RowSpec("", "Random Masking", "random 0.15")
NO_MASKING = RowSpec("", "No Masking", "none")
CLASSES = _classes("Non-functional", CONTENT) + _classes("Functional", FUNCTION)
RATIOS = (RowSpec("", "No Masking (0 %)", "none"),) + tuple(
    RowSpec("", f"{name} ({pct} %)", f"{name} {ratio}") for name in CONTENT for pct, ratio in ((70, "0.7"), (100, "1.0")))
RETRIEVAL_COLUMNS = ("TR r@1", "TR r@5", "TR r@10", "IR r@1", "IR r@5", "IR r@10")
VQA_COLUMNS = ("Yes/No", "Number", "Other", "Overall")

LAYOUTS: tuple[TableSpec, ...] = (
    TableSpec("table_4_1", "Table 4.1", "zero-shot image-text retrieval", "Flickr30K", RETRIEVAL_COLUMNS,
              RETRIEVAL, (ALBEF, RANDOM) + CLASSES),
    TableSpec("table_4_2", "Table 4.2", "zero-shot image-text matching of captions against foils (pairwise accuracy "
              "acc_r)", "VALSE",
              ("Existence quantifiers", "Plurality number", "Counting balanced", "Counting small number",
               "Counting adversarial", "Spatial relations", "Action replacement", "Action actant swap",
               "Coreference standard", "Coreference clean", "Foil-it!", "Avg"),
              tuple(f"valse/{p}" for p in VALSE_PIECES) + ("valse/avg",), (RANDOM,) + CLASSES + (NO_MASKING,)),
    TableSpec("table_4_3", "Table 4.3", "VQA accuracy per answer type", "VQA v2 test-dev", VQA_COLUMNS, VQA,
              (RANDOM,) + CLASSES),
    TableSpec("table_4_4", "Table 4.4", "zero-shot retrieval at masking probability 0 / 70 / 100 %",
              "Flickr30K", RETRIEVAL_COLUMNS, RETRIEVAL, RATIOS),
    TableSpec("table_4_5", "Table 4.5", "VQA accuracy at masking probability 0 / 70 / 100 % (NOUN)",
              "VQA v2 test-dev", VQA_COLUMNS, VQA, (RowSpec("", "NOUN (70 %)", "NOUN 0.7"),
                                                    RowSpec("", "NOUN (100 %)", "NOUN 1.0"),
                                                    RowSpec("", "No Masking (0 %)", "none"))),
)


def thesis_numbers(key: str) -> dict[str, Any]:
    """The thesis's published table `key` (title, columns, rows with group, method, values)."""
    return json.loads(THESIS_DATA.read_text(encoding="utf-8"))[key]


def thesis_source() -> str:
    """Where the published numbers come from."""
    return str(json.loads(THESIS_DATA.read_text(encoding="utf-8"))["source"])
