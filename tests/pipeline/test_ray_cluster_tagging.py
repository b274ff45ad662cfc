"""`posmask tag-shards` on a two-node Ray cluster (`ray start --head` and `ray start --address`, token
authentication) through RAY_ADDRESS: the same shards, byte for byte, as a local run; and the cluster's processes,
exactly those, are gone afterwards."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_testdata import jpeg_bytes, run_cli, shard_digests, synthetic_captions, write_coco
from processes import descendants, running
from ray_cluster import local_ray_cluster

N_CAPTIONS = 600


@pytest.mark.slow
def test_tag_shards_on_a_two_node_cluster_matches_a_local_run(tmp_path: Path) -> None:
    images = {i: jpeg_bytes((70 + i, 50), color=(i * 9, 60, 150)) for i in range(20)}
    src = write_coco(tmp_path / "src", synthetic_captions(N_CAPTIONS, seed=4), images)
    args = ["--format", "coco", "--src", str(src), "--shard-size", "100", "--no-progress"]
    local = run_cli(*args, "--out", str(tmp_path / "local"), "--workers", "2")
    assert local.returncode == 0, local.stderr[-3000:]
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # not the cluster's
    try:
        before = set(descendants(os.getpid()))
        with local_ray_cluster(tmp_path, nodes=2) as env:
            cluster = run_cli(*args, "--out", str(tmp_path / "cluster"), env=env, timeout=600)
            started = set(descendants(os.getpid())) - before  # the nodes and what they started
        assert cluster.returncode == 0, cluster.stderr[-3000:]
        assert f"read {N_CAPTIONS}, written {N_CAPTIONS}" in cluster.stdout
        assert shard_digests(tmp_path / "cluster") == shard_digests(tmp_path / "local")
        assert len(shard_digests(tmp_path / "local")) == N_CAPTIONS // 100
        assert ((tmp_path / "cluster" / "captions.parquet").read_bytes()
                == (tmp_path / "local" / "captions.parquet").read_bytes())
        assert len(started) >= 4 and not [p for p in started if running(p)]  # all of the cluster is gone ...
        assert running(bystander.pid)  # ... and nothing else was stopped
    finally:
        bystander.kill()
        bystander.wait()
