"""A local Ray cluster of several nodes, for the multi-node tests: each node a `ray start --block` process on
this machine, with token authentication (Ray's default) and a token of its own."""
from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from waiting import wait_until


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(log: Path, text: str, process: subprocess.Popen, timeout: float = 120) -> None:
    try:
        wait_until(lambda: text in log.read_text(errors="replace"), timeout, f"{text!r} in {log.name}",
                   process=process, poll=0.2)
    except AssertionError as err:
        raise RuntimeError(f"ray start did not come up ({err}): {log.read_text(errors='replace')[-2000:]}") from None


@contextlib.contextmanager
def local_ray_cluster(root: Path, nodes: int = 2, cpus_per_node: int = 1) -> Iterator[dict[str, str]]:
    """A head and `nodes - 1` workers started with `ray start --block` (token authentication, a token of its
    own), all on this machine; yields the environment a driver needs (RAY_ADDRESS and the token). On exit
    exactly these `ray start` processes are stopped (each stops the Ray processes it started)."""
    ray = str(Path(sys.executable).parent / "ray")
    address = f"127.0.0.1:{_free_port()}"
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16),
               RAY_ENABLE_UV_RUN_RUNTIME_ENV="0")
    common = ["--node-ip-address=127.0.0.1", f"--num-cpus={cpus_per_node}", "--disable-usage-stats",
              "--object-store-memory=100000000", "--block"]
    current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"  # `ray start --head` writes it
    before = current.read_bytes() if current.is_file() else None
    processes: list[subprocess.Popen] = []
    try:
        for node in range(nodes):
            where = ["--head", f"--port={address.split(':')[1]}", "--include-dashboard=false"] if node == 0 \
                else [f"--address={address}"]
            log = root / f"ray-node{node}.log"
            with open(log, "w") as out:
                processes.append(subprocess.Popen([ray, "start", *where, *common], env=env, stdout=out,
                                                  stderr=subprocess.STDOUT, start_new_session=True))
            _wait_for(log, "Ray runtime started", processes[-1])
        yield env | {"RAY_ADDRESS": address}
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if before is None:  # leave no pointer to this (gone) cluster for a later `ray.init()` to follow
            current.unlink(missing_ok=True)
        else:
            current.write_bytes(before)

