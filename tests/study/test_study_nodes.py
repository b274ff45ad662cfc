"""`posmask study` on two machines (here two launchers on localhost): the same study on each node, every
run's pre-training spanning both (one Gloo process each), the other steps on node 0."""
from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from study_grids import DEFAULTS, DET_07

REPO = Path(__file__).resolve().parents[2]
ONE = DEFAULTS.replace('tasks = ["retrieval", "valse"]', 'tasks = ["retrieval"]') + DET_07


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


def test_node_flags_stay_out_of_what_a_step_computes(tmp_path: Path) -> None:
    """Each node passes its own rank to torchrun; the evaluation stamp (and so `is_done`) must not see it."""
    from study.grid import load_grid
    from study.plan import Settings, plan_jobs

    grid = tmp_path / "g.toml"
    grid.write_text(ONE.replace('tasks = ["retrieval"]', 'tasks = ["retrieval", "vqa"]'))
    plans = [plan_jobs(load_grid(grid), Settings(out=tmp_path / "s", shards="data/x", nnodes=2, node_rank=rank,
                                                 master_addr="10.0.0.1", master_port=29400)) for rank in (0, 1)]
    (pretrain0, _, vqa0), (pretrain1, retrieval1, vqa1) = plans[0][0].steps, plans[1][0].steps
    assert vqa0.argv == vqa1.argv and pretrain0.argv == pretrain1.argv and "--node-rank" not in vqa0.argv
    assert vqa1.launch == ("--nnodes", "2", "--node-rank", "1", "--master-addr", "10.0.0.1", "--master-port", "29400")
    assert pretrain1.distributed and vqa1.distributed and not retrieval1.distributed and retrieval1.launch == ()


def test_a_follower_moves_on_when_node_0_fails_a_step_it_runs_alone(tmp_path: Path, monkeypatch) -> None:
    import os
    import threading
    import time

    from study import steps
    from study.plan import Job, Step

    monkeypatch.setattr(steps, "FOLLOWER_POLL_SECONDS", 0.05)
    step = Step("eval:retrieval", ["eval", "--tasks", "retrieval"])
    job = Job("DET-0.7", "DET-0.7", 42, tmp_path / "run", [step])
    marker = steps.failed_marker_path(job, step)
    marker.parent.mkdir(parents=True)
    marker.write_text("{}")
    old = time.time() - 3600
    os.utime(marker, (old, old))  # a previous attempt's failure: ignored
    polls = threading.Semaphore(0)
    real_is_done = steps.is_done

    def counted_is_done(*args):  # the real check, counted: the follower asks it once per poll
        polls.release()
        return real_is_done(*args)

    monkeypatch.setattr(steps, "is_done", counted_is_done)
    follower = steps.StepRunner({}, tmp_path / "logs", follower=True)
    results: list = []
    waiting = threading.Thread(target=follower.run_job, args=(job, results.append))
    waiting.start()
    assert polls.acquire(timeout=10) and polls.acquire(timeout=10)  # a second poll: it saw the old marker
    assert waiting.is_alive() and not results
    marker.write_text("{}")  # node 0's attempt in this study fails
    waiting.join(timeout=10)
    assert [r.status for r in results] == ["failed"]

    stopping = steps.StepRunner({}, tmp_path / "logs", follower=True)
    marker.unlink()
    stopping.stop()  # SIGTERM while waiting: "stopped", not "skipped"
    assert stopping._wait_for_node0(job, step) == "stopped"
