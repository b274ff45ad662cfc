"""Faults, through the real CLI in a subprocess (real Ray, 2 workers, real spaCy): a Ray worker
SIGKILLed mid-run, the driver SIGKILLed mid-run then re-run (in both, no process the run started outlives it),
and wrong usage."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from pipeline_testdata import REPO, cli_command, jpeg_bytes, run_cli, shard_digests, synthetic_captions, write_coco
from processes import cmdline, descendants, started_with, tagged_env
from waiting import wait_until

N_CAPTIONS, SHARD_SIZE = 3000, 100


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A COCO-format input of 3,000 synthetic captions on 40 small images (30 shards)."""
    root = tmp_path_factory.mktemp("faults")
    images = {i: jpeg_bytes((80 + i, 60), color=(i * 6, 90, 200)) for i in range(40)}
    return write_coco(root / "src", synthetic_captions(N_CAPTIONS, seed=1), images)


def tag_args(src: Path, out: Path) -> list[str]:
    return ["--format", "coco", "--src", str(src), "--out", str(out), "--workers", "2",
            "--shard-size", str(SHARD_SIZE), "--no-progress"]


@pytest.fixture(scope="module")
def clean_run(corpus: Path) -> tuple[Path, dict[str, str]]:
    """An uninterrupted run: the reference output."""
    out = corpus.parent.parent / "clean"
    result = run_cli(*tag_args(corpus, out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"read {N_CAPTIONS}, written {N_CAPTIONS}, rejected 0" in result.stdout
    # off a terminal: plain progress lines through logging, no bar redraws
    assert f"tag-shards: {N_CAPTIONS}/{N_CAPTIONS} cap (100%)" in result.stderr and "\r" not in result.stderr
    return out, shard_digests(out)


def finished_parts(out: Path) -> int:
    return len(list((out / ".work" / "parts").glob("*.json")))


def stop(proc: subprocess.Popen, tag: str) -> None:
    """Whatever is left of a tagged run, when a test fails midway: the driver and every process it started."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for pid in started_with(tag):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def assert_none_left(tag: str) -> None:
    """No process that the tagged run started is still running (after a grace of 30 s to exit)."""
    with contextlib.suppress(AssertionError):
        wait_until(lambda: not started_with(tag), 30, "the run's processes to end", poll=0.2)
    assert not [cmdline(p) for p in started_with(tag)]


def start_tagged(*args: str, **popen) -> tuple[subprocess.Popen, str]:
    """The CLI in a subprocess whose every process (Ray's too) carries a fresh tag in its environment."""
    env, tag = tagged_env()
    return subprocess.Popen(cli_command(*args), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, **popen), tag


def assert_same_output(out: Path, reference: tuple[Path, dict[str, str]]) -> None:
    ref_out, ref_digests = reference
    assert shard_digests(out) == ref_digests and len(ref_digests) == N_CAPTIONS // SHARD_SIZE
    manifest, ref_manifest = (json.loads((p / "manifest.json").read_text()) for p in (out, ref_out))
    assert manifest["shards"] == ref_manifest["shards"] and manifest["totals"] == ref_manifest["totals"]
    assert (out / "captions.parquet").read_bytes() == (ref_out / "captions.parquet").read_bytes()
    assert not list((out / "shards").glob(".*")) and not (out / ".work").exists()


@pytest.mark.slow
def test_worker_sigkill_mid_run(corpus: Path, clean_run, tmp_path: Path) -> None:
    out = tmp_path / "killed-worker"
    proc, tag = start_tagged(*tag_args(corpus, out))
    victims: list[int] = []
    try:
        def busy_worker() -> bool:
            if finished_parts(out) < 2:
                return False
            victims.extend(p for p in descendants(proc.pid) if cmdline(p).startswith("ray::process_shard"))
            return bool(victims)

        wait_until(busy_worker, 240, "a worker busy with a shard", process=proc, poll=0.02)
        os.kill(victims[0], signal.SIGKILL)  # a worker in the middle of a shard task
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr[-3000:]
        assert_none_left(tag)  # a clean end stops the local Ray too
    finally:
        stop(proc, tag)
    assert finished_parts(out) == 0 and f"read {N_CAPTIONS}, written {N_CAPTIONS}" in stdout
    assert_same_output(out, clean_run)


@pytest.mark.slow
def test_driver_sigkill_then_resume(corpus: Path, clean_run, tmp_path: Path) -> None:
    out = tmp_path / "killed-driver"
    proc, tag = start_tagged(*tag_args(corpus, out), start_new_session=True)
    try:
        wait_until(lambda: finished_parts(out) >= 5, 240, "5 finished shards", process=proc, poll=0.02)
        assert set(started_with(tag)) - {proc.pid}  # the driver runs a local Ray of its own processes
        os.kill(proc.pid, signal.SIGKILL)  # the driver alone dies mid-run: its local Ray must go with it
        proc.communicate(timeout=60)
        assert_none_left(tag)
    finally:
        stop(proc, tag)
    assert not (out / "manifest.json").exists()
    done = finished_parts(out)
    assert 5 <= done < N_CAPTIONS // SHARD_SIZE
    result = run_cli(*tag_args(corpus, out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"({done} resumed)" in result.stdout or f"({done + 1} resumed)" in result.stdout, result.stdout
    assert_same_output(out, clean_run)


# --- wrong usage: one clear line on stderr, exit status 2, no traceback -------------------------

def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    lines = [line for line in result.stderr.splitlines() if "error" in line.lower() or "Traceback" in line]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("posmask tag-shards: error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_missing_src(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("--format", "coco", "--out", str(tmp_path / "o")), "--src is required")
    assert_one_line_error(run_cli("--format", "coco", "--src", str(tmp_path / "nope.json"), "--out",
                                  str(tmp_path / "o")), "no such file")
    assert_one_line_error(run_cli("--format", "scenes", "--src", str(tmp_path), "--out", str(tmp_path / "o")),
                          "not a complete scenes sample", f"posmask make-scenes --out {tmp_path}")


def test_unknown_format(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("--format", "yaml", "--src", str(tmp_path), "--out", str(tmp_path / "o")),
                          "unknown --format 'yaml'", "coco, img2dataset, table, scenes")


def test_unreadable_json(tmp_path: Path) -> None:
    bad = tmp_path / "captions_train.json"
    bad.write_text('{"images": [], "annotations": [')
    assert_one_line_error(run_cli("--format", "coco", "--src", str(bad), "--out", str(tmp_path / "o")),
                          "unreadable JSON", str(bad))


def test_bad_numbers_and_foreign_out(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("--format", "coco", "--src", str(tmp_path), "--out", str(tmp_path / "o"),
                                  "--workers", "0"), "--workers must be at least 1")
    src = write_coco(tmp_path / "src", ["A cat."], {1: jpeg_bytes()})
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    assert_one_line_error(run_cli("--format", "coco", "--src", str(src), "--out", str(tmp_path / "busy")),
                          "not empty", "--overwrite")


def test_shard_failure_messages() -> None:
    """A UserError raised inside a Ray task keeps its message; other failures name the retries."""
    import ray

    from pipeline.shard_runs import TASK_RETRIES, shard_failure
    from toolbox.errors import UserError

    bad_input = ray.exceptions.RayTaskError("process_shard", "Traceback ...", UserError("no spaCy model"))
    assert str(shard_failure("shard-000001", bad_input)) == "shard shard-000001: no spaCy model"
    bug = ray.exceptions.RayTaskError("process_shard", "Traceback ...\nValueError: bad", ValueError("bad"))
    assert str(shard_failure("shard-000001", bug)) == "shard shard-000001 failed: ValueError: bad"
    disk = ray.exceptions.RayTaskError("process_shard", "Traceback ...\nOSError: disk full", OSError("disk full"))
    message = str(shard_failure("shard-000001", disk))
    assert f"failed after {TASK_RETRIES} retries" in message and "re-run to resume" in message
    died = ray.exceptions.WorkerCrashedError()
    assert f"failed after {TASK_RETRIES} retries" in str(shard_failure("shard-000001", died))


def test_ray_token_auth_failure_is_one_clear_line(monkeypatch) -> None:
    """Ray refuses a driver without the cluster's token in two ways; both become the one hint."""
    import ray

    from pipeline.orchestrate import init_ray
    from toolbox.errors import UserError

    def wrong_token(**_: object) -> None:  # what ray.init raises when the GCS refuses the token
        try:
            raise RuntimeError("Failed to connect to GCS. ray.exceptions.AuthenticationError: RPC error: "
                               "InvalidAuthToken: Authentication token is missing or incorrect.")
        except RuntimeError as err:
            raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379") from err

    def no_token(**_: object) -> None:  # RAY_AUTH_MODE=token but no token on this machine
        raise ray.exceptions.AuthenticationError("Token authentication is enabled but no token was found")

    def unreachable(**_: object) -> None:
        raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    for refuse in (wrong_token, no_token):
        monkeypatch.setattr(ray, "init", refuse)
        with pytest.raises(UserError) as err:
            init_ray(2, "10.0.0.1:6379")
        message = str(err.value)
        assert "\n" not in message and "RAY_AUTH_MODE=token" in message and "every node" in message
    monkeypatch.setattr(ray, "init", unreachable)
    with pytest.raises(UserError, match="cannot start or reach Ray at 10.0.0.1:6379: Failed to connect"):
        init_ray(2, "10.0.0.1:6379")
