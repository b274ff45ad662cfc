"""Several machines, on localhost: two `posmask pretrain` launchers (NNODES=2, NODE_RANK 0 and 1, one CPU process
each, Gloo, torchrun's static rendezvous) train step for step like one node with two processes and the same seed;
and `make pretrain` hands the node flags to posmask."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from trainer.engine.metrics import read_metrics

REPO = Path(__file__).resolve().parents[2]
STEPS = 6
ARGS = ["--pos", "NOUN", "--ratio", "0.7", "--preset", "tiny", "--batch-size", "8", "--workers", "0", "--log-every",
        "1", "--shuffle-buffer", "20", "--max-steps", str(STEPS), "--seed", "11"]
LOGGED = ("loss", "mlm", "itc", "itm", "grad_norm", "masked_tokens", "lr")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launcher(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "posmask_cli", "pretrain", *ARGS, *args], cwd=REPO,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> str:
    try:
        _, stderr = process.communicate(timeout=400)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr[-3000:]
    return stderr


@pytest.mark.slow
def test_two_nodes_train_like_one_node_with_two_processes(uneven_shards: Path, tmp_path: Path) -> None:
    shards = ["--shards", str(uneven_shards)]
    one_node = launcher(*shards, "--run", str(tmp_path / "one-node"), "--nproc", "2")
    finish(one_node)
    port = str(free_port())
    nodes = [launcher(*shards, "--run", str(tmp_path / "two-nodes"), "--nproc", "1", "--nnodes", "2",
                      "--node-rank", str(rank), "--master-addr", "127.0.0.1", "--master-port", port)
             for rank in (0, 1)]
    logs = [finish(node) for node in nodes]
    assert all(f"--nnodes=2 --node_rank={rank}" in log for rank, log in enumerate(logs))  # torchrun was told
    assert sum(log.count("done:") for log in logs) == 1  # one rank 0 in all
    reference = read_metrics(tmp_path / "one-node" / "metrics.jsonl")
    two_nodes = read_metrics(tmp_path / "two-nodes" / "metrics.jsonl")
    assert [r["step"] for r in two_nodes] == [r["step"] for r in reference] == list(range(1, STEPS + 1))
    for a, b in zip(reference, two_nodes):
        for key in LOGGED:
            assert b[key] == pytest.approx(a[key], rel=1e-6, abs=1e-7), (a["step"], key)


def test_make_pretrain_passes_the_node_flags() -> None:
    result = subprocess.run(["make", "-n", "-s", "pretrain", "NNODES=2", "NODE_RANK=1", "MASTER_ADDR=10.0.0.1",
                             "MASTER_PORT=29555", "GPUS=8"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    command = " ".join(result.stdout.replace("\\\n", " ").split())  # the recipe's continued lines as one
    assert "posmask pretrain" in command
    assert "--nnodes 2 --node-rank 1 --master-addr 10.0.0.1 --master-port 29555" in command
