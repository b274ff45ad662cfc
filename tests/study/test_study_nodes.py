"""`posmask study` on two machines (here two launchers on localhost): the same study on each node, every
run's pre-training spanning both (one Gloo process each), the other steps on node 0."""
from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from study_grids import DEFAULTS

REPO = Path(__file__).resolve().parents[2]
ONE = DEFAULTS.replace('tasks = ["retrieval", "valse"]', 'tasks = ["retrieval"]') + '''
[[run]]
name = "DET-0.7"
pos = "DET"
ratio = 0.7
'''


@pytest.mark.slow
def test_study_across_two_nodes(study_shards: Path, tiny_eval: Path, tmp_path: Path) -> None:
    grid = tmp_path / "one.toml"
    grid.write_text(ONE)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "study"
    nodes = [subprocess.Popen([sys.executable, "-m", "posmask_cli", "study", "--grid", str(grid), "--shards",
                               str(study_shards), "--data", str(tiny_eval), "--out", str(out), "--nnodes", "2",
                               "--node-rank", str(rank), "--master-addr", "127.0.0.1", "--master-port", str(port)],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for rank in (0, 1)]
    results = [node.communicate(timeout=600) for node in nodes]
    for node, (_, stderr) in zip(nodes, results):
        assert node.returncode == 0, stderr[-3000:]
    run = out / "runs" / "DET-0.7"
    assert torch.load(run / "checkpoint.pt", weights_only=False)["world_size"] == 2  # one run, both nodes
    assert (run / "eval" / "retrieval.json").is_file() and (out / "report" / "index.md").is_file()
    assert "eval:retrieval: skipped" in results[1][1] and "run by node 0" in results[1][1]
