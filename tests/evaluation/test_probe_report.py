"""The probe in the report: per-item scores give every figure its interval, and the report gains the POS-swap
profile table (one row per method, one column per class), its heatmap and the count curve."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from evaluation.core.items import metric_items
from evaluation.probe.evaluate import CAPTION_VARIANTS, item_scores, summarise
from evaluation.probe.templates import COUNT_VARIANTS
from evaluation.report.build import build_report
from evaluation.core.runs import load_run
from shards.upos import STUDIED_CLASSES
from trainer.config import preset_config
from trainer.masking.masker import parse_mask_spec

N = 60  # captions


def _probe_run(root: Path, name: str, pos: str, ratio: float | None, reads: set[str]) -> Path:
    """A run whose foils of the classes in `reads` score far below the original (it reads them), the rest
    about the same."""
    run = root / name
    (run / "eval").mkdir(parents=True)
    record = preset_config("tiny", mask=parse_mask_spec(pos, ratio), shards=str(root), run=str(run))
    (run / "run_config.json").write_text(json.dumps(record.to_dict()))
    rng = np.random.default_rng(len(name))
    probs = np.full((N, len(CAPTION_VARIANTS)), 0.8) + rng.normal(0, 0.05, (N, len(CAPTION_VARIANTS)))
    for j, v in enumerate(CAPTION_VARIANTS):
        if v.removeprefix("swap_") in reads:
            probs[:, j] -= 0.5
    probs[:10, CAPTION_VARIANTS.index("swap_PROPN")] = np.nan  # captions without a name: skipped
    counts = np.linspace(0.2, 0.6, len(COUNT_VARIANTS))[None].repeat(20, 0)
    per_item = {"variants": item_scores([f"c{i}" for i in range(N)], [f"i{i // 5}" for i in range(N)], probs,
                                         CAPTION_VARIANTS, original=True)
                | item_scores([f"i{i}" for i in range(20)], [f"i{i}" for i in range(20)], counts, COUNT_VARIANTS,
                              original=False)}
    totals = {v: N for v in CAPTION_VARIANTS} | {v: 20 for v in COUNT_VARIANTS}
    summary = {"task": "probe", "n_captions": N, "n_images": 20, "seed": 0, "tags": "t",
               "pos_classes": list(STUDIED_CLASSES), "variants": summarise(per_item, totals, seed=0)}
    (run / "eval" / "probe.json").write_text(json.dumps(summary))
    (run / "eval" / "probe_items.json").write_text(json.dumps(per_item))
    return run


def test_probe_figures_have_intervals_and_skips(tmp_path):
    run = _probe_run(tmp_path, "noun", "NOUN", 0.7, {"NOUN", "ADJ"})
    v = json.loads((run / "eval" / "probe.json").read_text())["variants"]
    assert v["swap_NOUN"]["original_wins"] == 100.0 and v["swap_NOUN"]["prob_drop"] > 40
    assert v["swap_PROPN"]["n"] == N - 10 and v["swap_PROPN"]["skipped"] == 10
    for name in ("swap_DET", "tpl_UNITER", "count_5"):
        low, high = v[name]["mean_match_prob_ci"]
        assert low < v[name]["mean_match_prob"] < high or low == high == v[name]["mean_match_prob"]
    low, high = v["swap_DET"]["original_wins_ci"]
    assert 20 < low < v["swap_DET"]["original_wins"] < high < 80  # a coin flip: a wide interval around 50
    assert "probe/count_3:original_wins" not in metric_items(run / "eval")  # no original beside a count caption


def test_report_gains_the_pos_swap_profile_and_heatmap(tmp_path):
    runs = [_probe_run(tmp_path, "random", "random", 0.15, {"NOUN"}),
            _probe_run(tmp_path, "noun", "NOUN", 0.7, {"NOUN", "ADJ"})]
    out = tmp_path / "report"
    build_report([load_run(r) for r in runs], out)
    profile = (out / "probe_pos_swap.md").read_text()
    assert "| Method | " + " | ".join(STUDIED_CLASSES) + " |" in profile
    row = next(ln for ln in profile.splitlines() if ln.startswith("| NOUN 0.7 |")).split("|")[2:-1]
    assert row[0].strip() == "100.00" and row[2].strip().endswith("†")  # ADJ: read by this run, not by the ref.
    assert not row[5].strip().endswith(("*", "†"))  # DET: read by neither (one seed each: items only, `†`)
    for stem in ("probe_profile", "probe_counts"):
        assert (out / f"{stem}.png").stat().st_size > 1000 and (out / f"{stem}.pdf").is_file()
    index = (out / "index.md").read_text()
    assert "](probe_profile.png)" in index and "probe_templates.md" in index and "60 captions of 20 images" in index
    assert "k=3" in (out / "probe_counts.md").read_text()
