"""A watchdog that removes the local Ray a tag-shards driver started, when the driver dies without stopping it.

Ray ties its core processes to the driver, but the agents its raylet starts (DashboardAgent, RuntimeEnvAgent)
outlive a driver killed hard (SIGKILL) and ignore SIGTERM. So, before starting a local Ray, the driver starts
this watchdog (`python -m pipeline.reaper DRIVER_PID [PID:START ...]`, the driver's processes until then) and
keeps the write end of its stdin. The watchdog notes, twice a second, every other process below the driver.
A clean exit writes `done`: nothing is killed. End of file without it means that the driver died: the noted
processes still running (same pid, same start time) are sent SIGKILL.
"""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

POLL_S = 0.5
DONE = b"done"


def _stat(pid: int | str) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of a process, from /proc; None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the name in parentheses may hold spaces
    return int(fields[1]), int(fields[19])


def descendants(root: int) -> set[tuple[int, int]]:
    """(pid, start time) of every process below `root`."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (info := _stat(entry)) is not None:
            children.setdefault(info[0], []).append((int(entry), info[1]))
    found: set[tuple[int, int]] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child[0])
    return found


def watch(driver: int, stdin: int, earlier: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """Note the driver's descendants but `earlier` and this process, until `done` (returns an empty set) or end
    of file (returns them)."""
    me = os.getpid()
    noted: set[tuple[int, int]] = set()
    while True:
        ready, _, _ = select.select([stdin], [], [], POLL_S)
        noted |= {p for p in descendants(driver) - earlier if p[0] != me}
        if ready:
            data = os.read(stdin, 64)
            if data.startswith(DONE):
                return set()
            if not data:
                return noted


def kill_left(processes: set[tuple[int, int]]) -> list[int]:
    """SIGKILL each process that still runs with the noted start time; returns their pids."""
    killed = []
    for pid, started in sorted(processes):
        info = _stat(pid)
        if info is not None and info[1] == started:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
    return killed


class Reaper:
    """The driver's side: start the watchdog, and `release()` it after a clean Ray shutdown."""

    def __init__(self) -> None:
        earlier = [f"{pid}:{started}" for pid, started in descendants(os.getpid())]
        self.process = subprocess.Popen([sys.executable, "-m", "pipeline.reaper", str(os.getpid()), *earlier],
                                        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, start_new_session=True,
                                        cwd=Path(__file__).resolve().parents[1])

    def release(self) -> None:
        """Tell the watchdog that Ray was stopped cleanly; it exits without killing anything."""
        if self.process.stdin is not None:
            try:
                self.process.stdin.write(DONE)
                self.process.stdin.close()
            except OSError:  # it is gone already
                pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def main(argv: list[str]) -> int:
    """Watch the driver whose pid is argv[0]; argv[1:]: its processes started before (PID:START)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C meant for the driver
    earlier = {(int(pid), int(started)) for pid, started in (item.split(":") for item in argv[1:])}
    left = watch(int(argv[0]), sys.stdin.fileno(), earlier)
    killed = kill_left(left)
    if killed:
        print(f"posmask reaper: the driver died; killed {len(killed)} processes of its local Ray", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
