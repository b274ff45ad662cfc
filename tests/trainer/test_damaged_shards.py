"""A damaged copy is caught wherever the shards live: a shard truncated to half its size (as a failed copy to a
node leaves it) is refused before training in one line naming it and both sizes; --verify-shards catches a copy of
the right size with other bytes (sha256); and with --allow-damaged-shards, the run record counts the samples each
epoch read against those the manifest lists, and summary.json and metrics.jsonl report the shortfall."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from synthetic_shards import write_synthetic_shards
from trainer.data.stream import ShardStream, StreamSettings, make_loader, open_shards
from trainer.engine.metrics import read_metrics

REPO = Path(__file__).resolve().parents[2]
FAST = ["--preset", "tiny", "--batch-size", "8", "--workers", "0", "--log-every", "1", "--shuffle-buffer", "20"]
SIZES = [100, 60, 32]


@pytest.fixture()
def damaged(tmp_path: Path) -> tuple[Path, int]:
    """Three shards (100, 60, 32 samples), the first truncated to half its bytes (intact.tar beside: its whole
    bytes); and how many samples a reader still finds in it (complete or not), counted with tarfile alone."""
    out = write_synthetic_shards(tmp_path / "out", n_images=96, shard_sizes=SIZES)
    tar = out / "shards" / "synth-000000.tar"
    data = tar.read_bytes()
    (tmp_path / "intact.tar").write_bytes(data)
    tar.write_bytes(data[: len(data) // 2])
    keys = set()
    with tarfile.open(tar, mode="r|") as archive:
        try:
            for member in archive:
                keys.add(member.name.split(".", 1)[0])
        except tarfile.ReadError:
            pass
    return out, len(keys)


def pretrain(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "posmask_cli", "pretrain", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_the_stream_counts_what_each_shard_held(damaged: tuple[Path, int]) -> None:
    out, found = damaged
    shards = open_shards(out)
    settings = StreamSettings(batch_size=8, image_size=32, max_len=20, shuffle_buffer=10)
    batches = iter(make_loader(ShardStream(shards.urls, settings, sizes=shards.sizes), 0, pin_memory=False))
    finished: dict[str, tuple[int, int]] = {}
    while len(finished) < 3:  # one whole pass
        finished.update(next(batches)["shards_read"])  # (read, expected) of each shard read to its end
    by_shard = {key.split(":", 1)[1].rsplit("/", 1)[1]: counts for key, counts in finished.items()}
    assert {name: tuple(counts) for name, counts in by_shard.items()} == {
        "synth-000000.tar": (found, 100), "synth-000001.tar": (60, 60), "synth-000002.tar": (32, 32)}
    assert 0 < found < 100 and {key.split(":")[0] for key in finished} == {"0"}


@pytest.mark.slow
def test_a_truncated_shard_is_caught_three_ways(damaged: tuple[Path, int], tmp_path: Path) -> None:
    out, found = damaged
    tar = out / "shards" / "synth-000000.tar"
    manifest = json.loads((out / "manifest.json").read_text())
    listed = manifest["shards"][0]["bytes"]
    refused = pretrain("--pos", "DET", "--shards", str(out), "--run", str(tmp_path / "refused"), *FAST)
    assert refused.returncode == 2 and not (tmp_path / "refused").exists()
    assert refused.stderr.strip().splitlines() == [
        f"posmask pretrain: error: damaged shard: {tar} is {tar.stat().st_size} bytes, the manifest says {listed}; "
        "copy it again, or pass --allow-damaged-shards to train on what it holds"]

    run = tmp_path / "allowed"  # one epoch: 192 samples / 8 = 24 steps, every shard read at least once
    allowed = pretrain("--pos", "DET", "--shards", str(out), "--run", str(run), "--epochs", "1",
                       "--allow-damaged-shards", *FAST)
    assert allowed.returncode == 0, allowed.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    epochs = json.loads((run / "run_config.json").read_text())["reads"]
    short = summary["samples_short"]
    assert short > 0 and short % (100 - found) == 0  # the truncated shard, each time it was read to its break
    assert [e["epoch"] for e in epochs] == [0] and epochs == summary["epochs"]
    assert epochs[0]["samples_expected"] - epochs[0]["samples_read"] == short == summary["samples_expected"] - \
        summary["samples_read"]
    records = read_metrics(run / "metrics.jsonl")
    assert records[-1]["samples_short"] == short and all("samples_short" in r for r in records)
    assert "read " in allowed.stderr and "synth-000000.tar" in allowed.stderr  # the warning names the shard

    same_size = tmp_path / "same-size"  # a copy of the right size with other bytes: only the sha256 tells
    shutil.copytree(out, same_size)
    (same_size / "shards" / "synth-000000.tar").write_bytes((tmp_path / "intact.tar").read_bytes())
    other = same_size / "shards" / "synth-000001.tar"
    data = bytearray(other.read_bytes())
    data[len(data) // 2] ^= 0xFF
    other.write_bytes(bytes(data))
    verified = pretrain("--pos", "DET", "--shards", str(same_size), "--run", str(tmp_path / "v"), "--verify-shards",
                        *FAST)
    assert verified.returncode == 2, verified.stderr[-2000:]
    line, = verified.stderr.strip().splitlines()
    assert f"damaged shard: {other} has sha256" in line and "the manifest says" in line
