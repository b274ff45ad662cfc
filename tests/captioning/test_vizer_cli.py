"""`posmask vizer` end to end on tiny synthetic shards after a tiny `posmask probe-scst`: both mapper variants,
the width x size grid, LoRA on unlabeled shards, the report with its shuffled-caption control; shards with garbage
captions give bit-identical LoRA captioners (no caption is read in the zero-label stage); a second call reuses
every stage; bad input is one line."""
from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from posmask_cli import main

pytestmark = pytest.mark.slow  # every test reads the `probed` fixture, which trains a captioner (CE, then SCST)


@pytest.fixture(scope="module")
def probed(setup, tiny_eval) -> dict[str, Path]:
    """The fixture run probed by a tiny probe-scst: CE captioner and the run's SCST captioner."""
    root = setup["root"]
    assert main(["probe-scst", "--run", str(setup["run"]), "--data", str(tiny_eval), "--captioner",
                 str(root / "captioner"), "--vision-weights", str(setup["vision"]), "--out", str(root / "scst"),
                 "--ce-steps", "6", "--scst-steps", "2", "--scst-images", "4", "--scst-samples", "2",
                 "--device", "cpu"]) == 0
    return {**setup, "captioner": root / "captioner", "eval": tiny_eval}


def _garbage_copy(shards: Path, out: Path) -> Path:
    """The shards with every caption replaced by garbage (tar text, ids and words; captions.parquet), images and
    image ids kept."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    shutil.copytree(shards, out)
    rng = np.random.default_rng(7)
    for tar_path in sorted(out.glob("**/*.tar")):
        members = []
        with tarfile.open(tar_path) as tar:
            for info in tar.getmembers():
                data = tar.extractfile(info).read()
                if info.name.endswith(".txt"):
                    data = b"zq xv " * 5
                elif info.name.endswith(".ids.npy"):
                    ids = np.load(io.BytesIO(data))
                    buffer = io.BytesIO()
                    np.save(buffer, rng.integers(1000, 29000, size=ids.shape).astype(ids.dtype))
                    data = buffer.getvalue()
                elif info.name.endswith(".json"):
                    meta = json.loads(data)
                    meta["words"] = ["garbage"] * len(meta["words"])
                    data = json.dumps(meta).encode()
                members.append((info, data))
        with tarfile.open(tar_path, "w") as tar:
            for info, data in members:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    table = pq.read_table(out / "captions.parquet").to_pylist()
    rows = [{**row, "caption": "zq xv", "ids": [101, 4242, 102]} for row in table]
    pq.write_table(pa.Table.from_pylist(rows), out / "captions.parquet")
    return out


def _vizer(p: dict[str, Path], out: str, *extra: str) -> int:
    return main(["vizer", "--run", str(p["run"]), "--captioner", str(p["captioner"]), "--data", str(p["eval"]),
                 "--vision-weights", str(p["vision"]), "--unlabeled", str(p["shards"]), "--out", str(p["root"] / out),
                 "--map-samples", "8", "--map-samples-g", "6", "--width", "16", "--grid-widths", "8", "16",
                 "--device", "cpu", *extra])


def test_vizer_end_to_end(probed, capsys):
    assert _vizer(probed, "vizer") == 0
    report = probed["root"] / "vizer"
    index = (report / "index.md").read_text()
    for title in ("Table 1", "Table 2", "Figure 1", "CLIPScore analogue"):
        assert title in index
    assert "Control:" in index and "surviving share (%)" in index and "on `text` = the text path only" in index
    for stem in ("table_1", "table_2", "table_control"):
        assert (report / f"{stem}.csv").is_file() and (report / f"{stem}.tex").is_file()
    assert (report / "figure_1.png").is_file() and (report / "figure_1.pdf").is_file()
    result = json.loads((report / "vizer.json").read_text())
    assert set(result["systems"]) == {"Base (CE)", "RL (SCST)", "ViZer_GT", "ViZer_G"}
    assert all(len(c) == len(result["image_ids"]) for c in result["systems"].values())
    cells = {(c["variant"], c["pairs"], c["width"]) for c in result["grid"]}
    assert cells == {(v, n, w) for v, sizes in (("gt", (2, 8)), ("g", (1, 6))) for n in sizes for w in (8, 16)}
    assert set(result["itc"]) == set(result["systems"]) and all("itc" in c for c in result["grid"])
    assert set(result["control"]) == {"ViZer_GT", "ViZer_G"} and all(c["control"] for c in result["grid"])
    assert result["settings"]["lora"]["targets"] == "text"
    lora = report / "stages" / "gt-n8-w16" / "lora"
    curve = [json.loads(line) for line in (lora / "metrics.jsonl").read_text().splitlines()]
    assert curve[-1]["step"] == 2  # 24 unlabeled images, batch 16: one epoch
    assert "report:" in capsys.readouterr().out
    stamp = (lora / "record.json").stat().st_mtime_ns
    assert _vizer(probed, "vizer") == 0  # every stage complete: reused, not trained again
    assert (lora / "record.json").stat().st_mtime_ns == stamp


def test_garbage_captions_give_the_same_lora_captioner(probed):
    garbage = _garbage_copy(probed["shards"], probed["root"] / "garbage-shards")
    clean = probed["root"] / "vizer-clean" / "stages" / "g-n6-w16" / "lora"
    dirty = probed["root"] / "vizer-dirty" / "stages" / "g-n6-w16" / "lora"
    assert _vizer(probed, "vizer-clean", "--variant", "g", "--no-grid") == 0
    assert _vizer({**probed, "shards": garbage}, "vizer-dirty", "--variant", "g", "--no-grid",
                  "--shards", str(probed["shards"])) == 0  # G mapping pairs from the same shards
    assert (clean / "captioner.safetensors").read_bytes() == (dirty / "captioner.safetensors").read_bytes()
    from shards.reader import iter_samples

    pairs = list(zip(iter_samples(probed["shards"]), iter_samples(garbage)))
    assert all(a.image_bytes == b.image_bytes and a.caption != b.caption for a, b in pairs) and len(pairs) == 48
    for out in ("vizer-clean", "vizer-dirty"):
        assert json.loads((probed["root"] / out / "vizer.json").read_text())["unlabeled_images"] == 24


@pytest.mark.parametrize("extra, message", [
    (["--variant", "gt", "both"], "--variant both: unknown; valid: gt, g"),
    (["--lora-targets", "image"], "--lora-targets image: unknown; valid: text, all"),
    (["--captioner", "/nonexistent"], "no captioner at /nonexistent; run `make probe-scst"),
    (["--unlabeled", "EMPTY"], "no images"),
    (["--unlabeled", "/nonexistent"], "--unlabeled /nonexistent: neither a folder of images nor tag-shards output"),
])
def test_bad_input_is_one_line(probed, tmp_path, capsys, extra, message):
    (tmp_path / "empty").mkdir()
    extra = [str(tmp_path / "empty") if e == "EMPTY" else e for e in extra]
    assert _vizer(probed, "vizer-bad", *extra) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
