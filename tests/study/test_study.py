"""`posmask study` end to end on CPU: two runs at once, killed in the middle and started again, finishing
with the same tables as an uninterrupted study, and no run trained twice."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from trainer.engine.metrics import read_metrics
from waiting import wait_until

REPO = Path(__file__).resolve().parents[2]


def study_command(grid: Path, shards: Path, data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "posmask_cli", "study", "--grid", str(grid), "--shards", str(shards),
            "--data", str(data), "--out", str(out), "--parallel", "2"]


def run(command: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def report_files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "report").iterdir())
            if p.suffix in (".md", ".csv", ".tex")}


@pytest.mark.slow
def test_killed_study_resumes_to_the_same_tables(study_grid: Path, study_shards: Path, tiny_eval: Path,
                                                 tmp_path: Path) -> None:
    straight = tmp_path / "straight"
    first = run(study_command(study_grid, study_shards, tiny_eval, straight))
    assert "[9/9]" in first.stderr and "report:" in first.stdout
    assert (straight / "report" / "table_4_1.md").is_file() and (straight / "report" / "retrieval.csv").is_file()

    out = tmp_path / "killed"
    process = subprocess.Popen(study_command(study_grid, study_shards, tiny_eval, out), cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    second = out / "runs" / "NOUN-0.7" / "metrics.jsonl"
    try:
        wait_until(lambda: len(read_metrics(second)) >= 2, 300, "2 logged steps of NOUN-0.7", process=process)
    finally:  # also when the wait fails: the run must not go on without the test
        process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 143, stderr[-3000:]
    assert len(read_metrics(second)) < 5 and not (out / "report").exists()

    again = run(study_command(study_grid, study_shards, tiny_eval, out))
    assert "skipped" in again.stderr or "done" in again.stderr
    assert report_files(out) == report_files(straight)
    for name in ("none", "NOUN-0.7", "albef"):  # every step logged once: nothing was trained twice
        assert [r["step"] for r in read_metrics(out / "runs" / name / "metrics.jsonl")] == [1, 2, 3, 4, 5], name
    third = run(study_command(study_grid, study_shards, tiny_eval, out))
    assert third.stderr.count(": skipped") == 9  # a finished study only rewrites its report
