"""The watchdog of a local Ray (pipeline.reaper): when its driver is SIGKILLed, the processes the driver started
after it go too, even those that left the driver's tree; after a clean release nothing is touched."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from pipeline_testdata import REPO, running

DRIVER = """
import subprocess, sys, time
from pipeline.reaper import Reaper
before = subprocess.Popen(["sleep", "300"])  # started before the watchdog: never its business
reaper = Reaper()
child = subprocess.Popen(["sleep", "300"])
shell = subprocess.Popen(["sh", "-c", "sleep 300 & echo $!; wait"], stdout=subprocess.PIPE, text=True)
grandchild = int(shell.stdout.readline())  # with its shell, it leaves the driver's tree when the driver dies
time.sleep(1.5)  # the watchdog notes them (twice a second)
if sys.argv[1] == "release":
    reaper.release()
print(before.pid, child.pid, shell.pid, grandchild, flush=True)
time.sleep(300)
"""


def driver(mode: str) -> tuple[subprocess.Popen, list[int]]:
    process = subprocess.Popen([sys.executable, "-c", DRIVER, mode], cwd=REPO, stdout=subprocess.PIPE, text=True)
    return process, [int(pid) for pid in process.stdout.readline().split()]


def gone(pids: list[int], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while any(running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not any(running(p) for p in pids)


def test_a_killed_driver_takes_its_processes_along() -> None:
    process, (before, *started) = driver("watch")
    try:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        assert gone(started)
        assert running(before)
    finally:
        for pid in (before, *started):
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def test_after_a_clean_release_nothing_is_killed() -> None:
    process, pids = driver("release")
    try:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        time.sleep(1.5)
        assert all(running(p) for p in pids)
    finally:
        for pid in pids:
            if running(pid):
                os.kill(pid, signal.SIGKILL)
