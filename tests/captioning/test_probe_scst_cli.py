"""`posmask probe-scst` end to end on tiny synthetic shards and a random tiny run: CE, SCST, the report in the
seed's layout; a second call reuses both captioners; bad input is one line."""
from __future__ import annotations

import json

import pytest

from posmask_cli import main


def _probe(setup, tiny_eval, *extra: str) -> int:
    root = setup["root"]
    return main(["probe-scst", "--run", str(setup["run"]), "--data", str(tiny_eval), "--captioner",
                 str(root / "captioner"), "--vision-weights", str(setup["vision"]), "--out", str(root / "report"),
                 "--ce-steps", "6", "--scst-steps", "3", "--scst-images", "6", "--scst-samples", "2", "--device",
                 "cpu", *extra])


@pytest.mark.slow
def test_probe_scst_end_to_end(setup, tiny_eval, capsys):
    assert _probe(setup, tiny_eval) == 0
    report = setup["root"] / "report"
    index = (report / "index.md").read_text()
    for title in ("Table 2", "Table 3", "Table 4", "Table 5", "The reward each SCST captioner was trained with"):
        assert title in index
    for stem in ("table_2", "table_4", "scst_reward"):
        assert (report / f"{stem}.csv").is_file() and (report / f"{stem}.tex").is_file()
    result = json.loads((report / "probe_scst.json").read_text())
    assert set(result["systems"]) == {"CE", "SCST-itm (NOUN 0.7)", "References (first)"}
    assert all(len(c) == 8 for c in result["systems"].values())  # one caption per evaluation image
    assert set(result["scores"]["CE"]["NOUN 0.7"]) == {"itm"}
    scst_dir = setup["run"] / "eval" / "scst_itm"
    curve = [json.loads(line) for line in (scst_dir / "metrics.jsonl").read_text().splitlines()]
    assert curve[-1]["step"] == 3 and "reward" in curve[-1] and "reward_greedy" in curve[-1]
    out = capsys.readouterr().out
    assert "SCST-itm (NOUN 0.7): own itm reward" in out
    stamp = (scst_dir / "record.json").stat().st_mtime_ns
    assert _probe(setup, tiny_eval) == 0  # both captioners complete: reused, not trained again
    assert (scst_dir / "record.json").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("extra, message", [
    (["--ce-steps", "0"], "--ce-steps must be >= 1"),
    (["--run", "/nonexistent"], "not a finished `posmask pretrain` run"),
    (["--shards", "/nonexistent"], "no tag-shards output"),
])
def test_bad_input_is_one_line(setup, tiny_eval, tmp_path, capsys, extra, message):
    args = ["--captioner", str(tmp_path / "c")] + extra
    assert _probe(setup, tiny_eval, *args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_another_captioner_in_the_folder_is_refused(setup, tiny_eval, capsys):
    assert _probe(setup, tiny_eval) == 0  # the folder holds a captioner (trained here, or reused from above)
    assert _probe(setup, tiny_eval, "--ce-steps", "7") == 2
    assert "holds a captioner made with other settings" in capsys.readouterr().err
