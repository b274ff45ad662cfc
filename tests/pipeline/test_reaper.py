"""The watchdog of a local Ray (pipeline.reaper): when its driver is SIGKILLed, the processes the driver started
after it go too, even those that left the driver's tree; after a clean release nothing is touched."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from pipeline_testdata import REPO
from processes import running
from waiting import wait_until

TESTS = Path(__file__).resolve().parents[1]

# The driver waits until the watchdog has noted its processes: the watchdog notes them each time it wakes, before it
# reads what woke it, so once it has read the byte written after they started, they are noted.
DRIVER = """
import array, fcntl, subprocess, sys, termios
sys.path.insert(0, sys.argv[2])
from pipeline.reaper import Reaper
from waiting import wait_until
before = subprocess.Popen(["sleep", "300"])  # started before the watchdog: never its business
reaper = Reaper()
child = subprocess.Popen(["sleep", "300"])
shell = subprocess.Popen(["sh", "-c", "sleep 300 & echo $!; wait"], stdout=subprocess.PIPE, text=True)
grandchild = int(shell.stdout.readline())  # with its shell, it leaves the driver's tree when the driver dies
reaper.process.stdin.write(b"\\n")
reaper.process.stdin.flush()
unread = array.array("i", [0])
def noted():
    fcntl.ioctl(reaper.process.stdin.fileno(), termios.FIONREAD, unread)
    return unread[0] == 0
wait_until(noted, 60, "the watchdog to read its stdin")
if sys.argv[1] == "release":
    reaper.release()
print(reaper.process.pid, before.pid, child.pid, shell.pid, grandchild, flush=True)
sys.stdin.read()
"""


def driver(mode: str) -> tuple[subprocess.Popen, int, list[int]]:
    """The driver, its watchdog's pid and the pids of its processes (the first one started before the watchdog)."""
    process = subprocess.Popen([sys.executable, "-c", DRIVER, mode, str(TESTS)], cwd=REPO, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    watchdog, *pids = (int(pid) for pid in process.stdout.readline().split())
    return process, watchdog, pids


def kill(pids: list[int]) -> None:
    for pid in pids:
        if running(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_killed_driver_takes_its_processes_along() -> None:
    process, watchdog, (before, *started) = driver("watch")
    try:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        wait_until(lambda: not any(running(p) for p in started), 10, "the driver's processes to go")
        wait_until(lambda: not running(watchdog), 10, "the watchdog to exit")
        assert running(before)
    finally:
        kill([before, *started])


def test_after_a_clean_release_nothing_is_killed() -> None:
    process, watchdog, pids = driver("release")
    try:
        assert not running(watchdog)  # released and gone: nothing is left that could kill them later
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        assert all(running(p) for p in pids)
    finally:
        kill(pids)
