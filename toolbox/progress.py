"""Progress on long work: a tqdm bar on a terminal; in a log file, one plain line every few seconds.

A log written to a file (CI, `nohup`, a cluster's job log) must not hold thousands of bar redraws, so
off a terminal `progress` writes `DESC: done/total UNIT (pct), rate/s, ETA` through `logging` at most
every `every` seconds, and once more at the end.
"""
from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger("posmask.progress")
DEFAULT_EVERY = 30.0


def on_terminal() -> bool:
    """True when stderr is an interactive terminal (a redrawn bar is welcome there)."""
    return sys.stderr.isatty()


class Progress:
    """A counter shown as a tqdm bar on a terminal, or as periodic log lines elsewhere."""

    def __init__(self, total: int | None = None, desc: str = "", unit: str = "it", initial: int = 0,
                 every: float = DEFAULT_EVERY, terminal: bool | None = None, disable: bool = False) -> None:
        self.total, self.desc, self.unit, self.every = total, desc, unit, every
        self.n, self.initial, self.postfix = initial, initial, ""
        self.disable = disable
        self.start = self.last = time.monotonic()
        self.bar = None
        if not disable and (on_terminal() if terminal is None else terminal):
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True,
                            mininterval=1.0, smoothing=0.3)

    def update(self, n: int = 1) -> None:
        """Count `n` more units done."""
        self.n += n
        if self.bar is not None:
            self.bar.update(n)
        elif not self.disable and time.monotonic() - self.last >= self.every:
            self._log()

    def set_postfix(self, **values: Any) -> None:
        """Extra `key=value` pairs shown after the counts (e.g. the current loss)."""
        self.postfix = " ".join(f"{k}={v}" for k, v in values.items())
        if self.bar is not None:
            self.bar.set_postfix_str(self.postfix, refresh=False)

    def line(self) -> str:
        """The plain progress line: counts, share, rate and ETA."""
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = (self.n - self.initial) / elapsed
        counts = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        share = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        eta = f", ETA {(self.total - self.n) / rate:.0f}s" if self.total and rate > 0 else ""
        post = f" | {self.postfix}" if self.postfix else ""
        return f"{self.desc}: {counts} {self.unit}{share}, {rate:.1f} {self.unit}/s, {elapsed:.0f}s{eta}{post}"

    def _log(self) -> None:
        self.last = time.monotonic()
        log.info(self.line())

    def close(self) -> None:
        """Finish the bar, or write the final line."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif not self.disable and self.n > self.initial:
            self._log()
            self.disable = True

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress(items: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it",
             every: float = DEFAULT_EVERY, disable: bool = False) -> Iterator[T]:
    """Iterate `items`, reporting progress (see module doc); `total` defaults to `len(items)`."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(total, desc, unit, every=every, disable=disable) as bar:
        for item in items:
            yield item
            bar.update(1)
