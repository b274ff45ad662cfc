"""One local worker runs in the command's own process, without Ray: the same bytes as Ray's two workers (img2dataset
with keys repeated across tars, and coco with images), the UPOS path in the manifest, a local Ray without Ray's
token-authentication notice, and a failure inside a shard as one line naming it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline_testdata import jpeg_bytes, run_cli, shard_digests, synthetic_captions, write_coco, write_tar


def same_outputs(a: Path, b: Path) -> None:
    assert shard_digests(a) == shard_digests(b) and shard_digests(a)
    for name in ("captions.parquet", "rejects.parquet", "pos_histogram.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.slow
def test_one_worker_in_process_writes_what_ray_writes(tmp_path: Path) -> None:
    jpg = jpeg_bytes((80, 60))
    for tar, keys in (("00000", ["a", "b"]), ("00001", ["c", "b", "d"])):
        write_tar(tmp_path / "tars" / f"{tar}.tar",
                  [(f"{tar}/{k}.{ext}", data) for k in keys for ext, data in (("jpg", jpg), ("txt", b"A dog runs."))])
    coco = write_coco(tmp_path / "coco", synthetic_captions(300, seed=2) + [""],
                      {i: jpeg_bytes((60 + i, 50)) for i in range(12)})
    for fmt, src, extra in (("img2dataset", tmp_path / "tars", []), ("coco", coco, ["--shard-size", "100"])):
        outs = {}
        for workers in ("1", "2"):
            outs[workers] = tmp_path / f"{fmt}-{workers}"
            result = run_cli("--format", fmt, "--src", str(src), "--out", str(outs[workers]), "--workers", workers,
                             "--no-progress", *extra)
            assert result.returncode == 0, result.stderr[-3000:]
            assert "Token authentication" not in result.stderr  # a local Ray starts without Ray's notice
        same_outputs(outs["1"], outs["2"])
        manifest = json.loads((outs["1"] / "manifest.json").read_text())
        assert manifest["tagger"]["upos_path"] == "lookup" and manifest["run"]["workers"] == 1
    assert "Ray" not in run_cli("--format", "coco", "--src", str(coco), "--out", str(tmp_path / "again"),
                                "--workers", "1", "--no-progress").stderr  # no Ray started


def test_a_failure_inside_a_shard_is_one_line_naming_it() -> None:
    from pipeline.shard_runs import inline_call
    from toolbox.errors import UserError

    def bad_input() -> None:
        raise UserError("no spaCy model")

    def disk_full() -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(UserError, match="^shard coco-000003.tar: no spaCy model$"):
        inline_call("coco-000003.tar", bad_input)
    with pytest.raises(UserError, match="^shard s-3 failed: .*No space left on device.*; re-run to resume$"):
        inline_call("s-3", disk_full)
    assert inline_call("coco-000003.tar", lambda x: x + 1, 1) == 2
