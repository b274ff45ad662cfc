"""Shards wherever they live: a tag-shards output read over http(s) from a real server on 127.0.0.1, through a
`pipe:` command and through fsspec (`file://`, `memory://`) trains like the local folder, step for step; a wrong
URL, a missing manifest or a server error is one line naming the location."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from served import BROKEN, serve
from synthetic_shards import write_synthetic_shards
from toolbox.errors import UserError
from trainer.data.stream import ShardStream, StreamSettings, make_loader, open_shards
from trainer.engine.metrics import read_metrics

REPO = Path(__file__).resolve().parents[2]
FAST = ["--preset", "tiny", "--batch-size", "8", "--workers", "0", "--log-every", "1", "--shuffle-buffer", "20"]
LOSSES = ("loss", "mlm", "itc", "itm", "itm_acc", "masked_share")


@pytest.fixture(scope="module")
def served_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding one output, `out/` (two uneven shards)."""
    root = tmp_path_factory.mktemp("served")
    write_synthetic_shards(root / "out", n_images=48, shard_sizes=[40, 56])
    return root


def pretrain(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "posmask_cli", "pretrain", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})


def first_batches(spec: str, n: int = 3) -> list[torch.Tensor]:
    shards = open_shards(spec)
    settings = StreamSettings(batch_size=8, image_size=32, max_len=20, shuffle_buffer=10)
    batches = iter(make_loader(ShardStream(shards.urls, settings, sizes=shards.sizes), 0, pin_memory=False))
    return [next(batches)["ids"] for _ in range(n)]


@pytest.mark.slow
def test_http_pipe_and_fsspec_train_like_the_folder(served_root: Path, tmp_path: Path) -> None:
    local = served_root / "out"
    with serve(served_root) as base:
        places = {"local": str(local), "http": f"{base}/out", "pipe": f"pipe:cat {local}/{{}}",
                  "fsspec": f"file://{local}"}
        records = {}
        for name, spec in places.items():
            run = tmp_path / name
            result = pretrain("--pos", "NOUN", "--shards", spec, "--run", str(run), "--max-steps", "5", *FAST)
            assert result.returncode == 0, (name, result.stderr[-3000:])
            records[name] = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in records["local"]] == [1, 2, 3, 4, 5]
    for name in ("http", "pipe", "fsspec"):
        for a, b in zip(records["local"], records[name], strict=True):
            assert {k: a[k] for k in LOSSES} == {k: b[k] for k in LOSSES}, (name, a["step"])
            assert b["samples_short"] == 0


def test_fsspec_memory_streams_the_same_batches(served_root: Path) -> None:
    import fsspec

    memory = fsspec.filesystem("memory")
    local = served_root / "out"
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        memory.pipe(f"/anywhere/out/{path.relative_to(local).as_posix()}", path.read_bytes())
    try:
        for a, b in zip(first_batches(str(local)), first_batches("memory://anywhere/out"), strict=True):
            assert torch.equal(a, b)
        both = open_shards(f"{local}::memory://anywhere/out")  # open_clip's `::` mixes sources
        assert both.total == 2 * open_shards(str(local)).total and len(both.urls) == 4
    finally:
        memory.rm("/anywhere", recursive=True)


def test_a_bad_location_is_one_line_naming_it(served_root: Path, tmp_path: Path) -> None:
    with serve(served_root) as base:
        cases = {f"{base}/nothing-here": "no manifest.json", f"{base}{BROKEN}out": "HTTP 500",
                 "http://127.0.0.1:9/out": "cannot reach the server", f"pipe:cat {tmp_path}/none/{{}}": "exited 1",
                 f"pipe:cat {served_root}/out": "needs {}", "nosuchprotocol://bucket/out": "nosuchprotocol"}
        for spec, reason in cases.items():
            with pytest.raises(UserError) as caught:
                open_shards(spec)
            message = str(caught.value)
            assert reason in message and "\n" not in message, (spec, message)
            assert spec.split("{")[0].removeprefix("pipe:cat ") in message or spec in message, (spec, message)


@pytest.mark.slow
def test_the_command_exits_2_with_one_line(served_root: Path, tmp_path: Path) -> None:
    with serve(served_root) as base:
        result = pretrain("--pos", "NOUN", "--shards", f"{base}{BROKEN}out", "--run", str(tmp_path / "r"), *FAST)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        f"posmask pretrain: error: {base}{BROKEN}out/manifest.json: HTTP 500 the server broke"]
