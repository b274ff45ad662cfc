"""Running one job's steps as `posmask` subprocesses, each skipped when its output is complete and was made
by the same configuration (toolbox.stage): a pre-training run by its run record and its finished mark
(trainer.run_dir), an evaluation by its result file and a stamp of its command line and of the model it scored."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolbox.atomic import atomic_write_json, sha256_file
from toolbox.errors import EXIT_INTERRUPTED
from toolbox.stage import check_same, read_json
from study.plan import Job, Step
from trainer.run_dir import RunDir

log = logging.getLogger(__name__)
RESULT_NEUTRAL = ("log_every", "ckpt_every", "peak_tflops", "run")  # run_config keys that do not change results
FOLLOWER_POLL_SECONDS = 5.0


@dataclass(frozen=True)
class StepResult:
    job: str
    kind: str
    status: str  # "done", "skipped", "stopped" or "failed"
    seconds: float
    detail: str = ""
    where: str = ""  # the Ray node that ran it ("" on this node)


def pretrain_done(job: Job, step: Step) -> bool:
    """True when the run finished with this configuration; UserError when its folder holds another run."""
    from trainer.config import read_run_config

    run = RunDir(job.run_dir)
    record = read_run_config(run.path)  # settings added since the run was made read as their defaults
    if record is None or step.config is None:
        return False
    check_same(record.to_dict(), step.config.to_dict(), lambda keys: f"{job.run_dir} holds a run made with other "
               f"settings ({', '.join(keys)}); remove it or choose another OUT", ignore=RESULT_NEUTRAL)
    return run.finished()


def _task(step: Step) -> str:
    return step.kind.split(":")[1]


def eval_stamp_path(job: Job, step: Step) -> Path:
    return RunDir(job.run_dir).eval.study_stamp(_task(step))


def failed_marker_path(job: Job, step: Step) -> Path:
    """Written by node 0 of a multi-node study when a step only it runs fails or stops: the others move on."""
    return RunDir(job.run_dir).eval.study_failed(_task(step))


def eval_stamp(job: Job, step: Step) -> dict[str, Any]:
    return {"argv": step.argv, "model_sha256": sha256_file(RunDir(job.run_dir).model)}


def eval_done(job: Job, step: Step) -> bool:
    """True when the task's result exists and was made by this command on this model."""
    stamp = eval_stamp_path(job, step)
    if not RunDir(job.run_dir).eval.result(_task(step)).is_file() or not stamp.is_file():
        return False
    return read_json(stamp) == eval_stamp(job, step)


def is_done(job: Job, step: Step) -> bool:
    return pretrain_done(job, step) if step.kind == "pretrain" else eval_done(job, step)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the child gets SIGTERM when the study dies, even by SIGKILL (it then checkpoints and exits)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class StepRunner:
    """Runs steps as subprocesses with this slot's environment; `stop()` sends them SIGTERM."""

    def __init__(self, env: dict[str, str], log_dir: Path, where: str = "", follower: bool = False) -> None:
        self.env, self.log_dir, self.where, self.follower = env, log_dir, where, follower
        self.started = time.time()  # a follower ignores failure markers older than this (a previous attempt's)
        self.process: subprocess.Popen | None = None
        self.stopping = False

    def stop(self) -> None:
        self.stopping = True
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def run_job(self, job: Job, report: Callable[[StepResult], None]) -> bool:
        """Every step of `job` in order; False when one failed or the study is stopping."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for step in job.steps:
            if self.stopping:
                return False
            start = time.monotonic()
            if self.follower and not step.distributed:  # node 0 runs it; join the next step when it is done
                status = self._wait_for_node0(job, step)
                report(StepResult(job.name, step.kind, status, time.monotonic() - start, "run by node 0"))
                if status != "skipped":
                    return False
                continue
            if is_done(job, step):
                report(StepResult(job.name, step.kind, "skipped", 0.0, where=self.where))
                continue
            marker = failed_marker_path(job, step) if step.kind != "pretrain" and not self.follower else None
            if marker is not None:
                marker.unlink(missing_ok=True)
            if step.config is not None and step.config_path is not None:  # the run's config, as its command reads it
                step.config.save(step.config_path)
            code = self._run(step, self.log_dir / f"{job.name}.log")
            elapsed = time.monotonic() - start
            if code != 0:
                status = "stopped" if code == EXIT_INTERRUPTED or self.stopping else "failed"
                if marker is not None:
                    atomic_write_json(marker, {"status": status, "exit": code})
                report(StepResult(job.name, step.kind, status, elapsed,
                                  f"exit {code}; log: {self.log_dir}/{job.name}.log", self.where))
                return False
            if marker is not None:
                atomic_write_json(eval_stamp_path(job, step), eval_stamp(job, step))
            report(StepResult(job.name, step.kind, "done", elapsed, where=self.where))
        return True

    def _wait_for_node0(self, job: Job, step: Step) -> str:
        """A follower's wait for a step node 0 runs alone: "skipped" once it is done, "failed" when node 0's
        attempt failed or stopped (node 0 goes on to the next run), "stopped" when this study stops."""
        marker = failed_marker_path(job, step)
        while not is_done(job, step):
            if self.stopping:
                return "stopped"
            try:
                if marker.stat().st_mtime >= self.started:
                    return "failed"
            except FileNotFoundError:
                pass
            time.sleep(FOLLOWER_POLL_SECONDS)
        return "skipped"

    def _run(self, step: Step, log_path: Path) -> int:
        argv = [*step.argv, *step.launch]
        command = [sys.executable, "-m", "posmask_cli", *argv]
        with open(log_path, "a", encoding="utf-8") as out:
            out.write(f"\n$ posmask {' '.join(argv)}\n")
            out.flush()
            self.process = subprocess.Popen(command, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                            preexec_fn=_die_with_parent if os.name == "posix" else None)
            try:
                return self.process.wait()
            finally:
                if self.process.poll() is None:  # interrupted while waiting: let it checkpoint
                    self.process.send_signal(signal.SIGTERM)
                    self.process.wait()
                self.process = None
