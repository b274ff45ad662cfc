"""The one wait of the tests: poll a condition until it holds, or fail naming what never happened."""
from __future__ import annotations

import subprocess
import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], object], timeout: float, what: str, *,
               process: subprocess.Popen | None = None, poll: float = 0.05) -> None:
    """Return as soon as `predicate()` is true. AssertionError naming `what` after `timeout` seconds, or as soon
    as `process` (when given) has ended first, with the end of its stderr when that was piped."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if process is not None and process.poll() is not None:
            _, stderr = process.communicate()
            if isinstance(stderr, bytes):
                stderr = stderr.decode(errors="replace")
            raise AssertionError(f"waiting for {what}: the process ended first (exit {process.returncode})"
                                 + (f"\n{stderr[-2000:]}" if stderr else ""))
        if time.monotonic() >= deadline:
            raise AssertionError(f"waiting for {what}: not within {timeout:g} s")
        time.sleep(poll)
