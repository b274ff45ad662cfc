"""The tests' one wait (tests/waiting.py): it returns once the condition holds and fails naming what it waited for."""
from __future__ import annotations

import subprocess
import sys

import pytest

from waiting import wait_until


def test_returns_once_the_condition_holds() -> None:
    calls = iter([False, False, True])
    wait_until(lambda: next(calls), 5, "the third call", poll=0)


def test_fails_naming_what_never_happened() -> None:
    with pytest.raises(AssertionError, match="waiting for a flag: not within 0.1 s"):
        wait_until(lambda: False, 0.1, "a flag")


def test_fails_at_once_when_the_process_ends_first() -> None:
    process = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit('gave up')"], stderr=subprocess.PIPE,
                               text=True)
    with pytest.raises(AssertionError, match=r"(?s)ended first \(exit 1\).*gave up"):
        wait_until(lambda: False, 60, "a file", process=process)
