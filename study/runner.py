"""The study runner: every job of a grid (pre-train, evaluate), scheduled on this node or on a Ray cluster,
then the report. A study killed at any moment and started again skips what is complete, resumes what
is not, and finishes with the same tables.

Scheduling: on CPU, PARALLEL runs at once (OMP threads split between them); on GPUs, GPUS // GPUS_PER_RUN
runs at once, each with its own CUDA_VISIBLE_DEVICES and rendezvous port; with RAY_ADDRESS set, every
job is a Ray task asking for GPUS_PER_RUN GPUs (or CPUs) that runs its steps on the node it lands on
(the study folder and the shards must be on a filesystem every node shares).
"""
from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toolbox.errors import Interrupted, UserError
from study.plan import Job, Settings
from study.steps import StepResult, StepRunner

log = logging.getLogger("study")
BASE_PORT = 29600


def slot_envs(settings: Settings) -> list[dict[str, str]]:
    """One environment per concurrent run on this node."""
    base = dict(os.environ)
    if settings.gpus:
        slots = max(1, settings.gpus // settings.gpus_per_run)
        return [base | {"CUDA_VISIBLE_DEVICES": ",".join(str(slot * settings.gpus_per_run + g)
                                                         for g in range(settings.gpus_per_run)),
                        "MASTER_PORT": str(BASE_PORT + slot)} for slot in range(slots)]
    threads = str(max(1, (os.cpu_count() or 1) // settings.parallel))
    return [base | {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "MASTER_PORT": str(BASE_PORT + slot),
                    "CUDA_VISIBLE_DEVICES": ""} for slot in range(settings.parallel)]


def kind(step_kind: str) -> str:
    """`pretrain` or `eval` (the ETA averages per kind)."""
    return step_kind.split(":")[0]


class Progress:
    """One line per step: the step's elapsed time and the study's ETA (from the steps that really ran)."""

    def __init__(self, jobs: Sequence[Job], slots: int) -> None:
        self.left = Counter(kind(s.kind) for j in jobs for s in j.steps)
        self.total = sum(self.left.values())
        self.slots, self.done, self.start = slots, 0, time.monotonic()
        self.seconds: dict[str, list[float]] = {}

    def line(self, r: StepResult) -> str:
        self.done += 1
        self.left[kind(r.kind)] -= 1
        if r.status == "done":
            self.seconds.setdefault(kind(r.kind), []).append(r.seconds)
        spent = time.monotonic() - self.start
        return (f"[{self.done}/{self.total}] {r.job} {r.kind}: {r.status}"
                + (f" in {r.seconds:.0f}s" if r.status != "skipped" else "") + (f" on node {r.where}" if r.where else "")
                + (f" ({r.detail})" if r.detail else "") + f" | study {spent:.0f}s, ETA {self.eta()}")

    def eta(self) -> str:
        """The steps left times the mean time of their kind, shared by the slots (`?` before any ran)."""
        known = [s for v in self.seconds.values() for s in v]
        if not known:
            return "?"
        fallback = sum(known) / len(known)
        mean = {k: sum(v) / len(v) for k, v in self.seconds.items()}
        return f"{sum(n * mean.get(k, fallback) for k, n in self.left.items()) / self.slots:.0f}s"


def run_local(jobs: Sequence[Job], settings: Settings) -> list[StepResult]:
    """Jobs on this node, as many at once as there are slots; SIGTERM/SIGINT stop them with a checkpoint."""
    envs = slot_envs(settings)[:1] if settings.nnodes > 1 else slot_envs(settings)  # multi-node: one run at a time
    log_dir = settings.out / ("logs" if not settings.follower else f"logs-node{settings.node_rank}")
    runners = [StepRunner(env, log_dir, follower=settings.follower) for env in envs]
    todo: queue.Queue[Job] = queue.Queue()
    for job in jobs:
        todo.put(job)
    events: queue.Queue[StepResult | None] = queue.Queue()
    failed = threading.Event()

    def slot(runner: StepRunner) -> None:
        while not failed.is_set():
            try:
                job = todo.get_nowait()
            except queue.Empty:
                break
            if not runner.run_job(job, events.put):
                failed.set()
        events.put(None)

    threads = [threading.Thread(target=slot, args=(r,), daemon=True) for r in runners]
    results = _collect(threads, runners, events, Progress(jobs, len(runners)))
    return results


def _collect(threads: list[threading.Thread], runners: list[StepRunner], events: queue.Queue,
             progress: Progress) -> list[StepResult]:
    """Print each step's line as it ends; on a signal, stop every runner and wait for their checkpoints."""
    stopped = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stopped.set()
        for runner in runners:
            runner.stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    results: list[StepResult] = []
    try:
        for thread in threads:
            thread.start()
        finished = 0
        while finished < len(threads):
            event = events.get()
            if event is None:
                finished += 1
                continue
            results.append(event)
            log.info(progress.line(event))
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if stopped.is_set():
        raise Interrupted("study stopped; every run checkpointed — run the same command again to resume")
    return results


def run_ray(jobs: Sequence[Job], settings: Settings, address: str) -> list[StepResult]:
    """Every job as a Ray task on the cluster at `address`, asking for GPUS_PER_RUN GPUs (or CPUs)."""
    import ray

    from pipeline.orchestrate import init_ray

    init_ray(1, address)
    gpus = settings.gpus_per_run if settings.gpus else 0
    remote = ray.remote(num_gpus=gpus, num_cpus=0 if gpus else settings.gpus_per_run, max_retries=0)(_ray_job)
    progress = Progress(jobs, len(jobs))
    pending = {remote.remote(job, settings.out): job for job in jobs}
    results: list[StepResult] = []
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                pending.pop(ref)
                for event in ray.get(ref):
                    results.append(event)
                    log.info(progress.line(event))
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref)
        raise Interrupted("study stopped; run the same command again to resume") from None
    finally:
        ray.shutdown()
    return results


def _ray_job(job: Job, out: Path) -> list[StepResult]:
    """A job on whichever node Ray chose (its GPUs are in CUDA_VISIBLE_DEVICES already)."""
    import ray

    events: list[StepResult] = []
    env = dict(os.environ)
    env.setdefault("MASTER_PORT", str(BASE_PORT + os.getpid() % 1000))
    node = ray.get_runtime_context().get_node_id()[:8]
    StepRunner(env, out / "logs", node).run_job(job, events.append)
    return events


def run_jobs(jobs: Sequence[Job], settings: Settings) -> list[StepResult]:
    """Run every job here or on the Ray cluster named by RAY_ADDRESS; UserError when a step failed."""
    address = os.environ.get("RAY_ADDRESS")
    results = run_ray(jobs, settings, address) if address else run_local(jobs, settings)
    failed = [r for r in results if r.status in ("failed", "stopped")]
    if failed:
        raise UserError(f"{failed[0].job} {failed[0].kind} failed ({failed[0].detail}); fix it and run the same "
                        "command again: finished steps are skipped")
    return results
