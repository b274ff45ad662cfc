"""A training step that sends this process SIGTERM on its n-th call: the run engine then checkpoints after that
step and stops, as a killed job would (the resume tests of the captioner's stages use it)."""
from __future__ import annotations

import os
import random
import signal
from collections.abc import Callable
from typing import Any


def stopping_at(step: Callable[[Any, random.Random], Any], stop_at: int | None) -> Callable[[Any, random.Random], Any]:
    """`step`, sending SIGTERM before its `stop_at`-th call (never when None)."""
    calls = {"n": 0}

    def wrapped(net: Any, rng: random.Random) -> Any:
        calls["n"] += 1
        if calls["n"] == stop_at:
            os.kill(os.getpid(), signal.SIGTERM)
        return step(net, rng)
    return wrapped
