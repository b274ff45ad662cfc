"""Runs a test function on two Gloo ranks (spawned processes) and collects what the ranks put on a queue."""
from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

import torch.distributed as dist
import torch.multiprocessing as mp


def _rank_main(worker: Callable[[int, Any], None], rank: int, port: int, queue: Any) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    worker(rank, queue)
    dist.barrier()
    dist.destroy_process_group()


def run_two_ranks(worker: Callable[[int, Any], None], results: int, timeout: float = 120) -> list[Any]:
    """Call `worker(rank, queue)` (a module-level function) on ranks 0 and 1 of a Gloo group and return the
    `results` items they put on the queue (numpy arrays travel safely; tensors would be fd-shared)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_rank_main, args=(worker, r, port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    out = [queue.get(timeout=timeout) for _ in range(results)]
    for p in procs:
        p.join(timeout=60)
    return out
