"""A progress line for long CLI runs (a 30,000-row import): on a terminal only.

Redrawn in place at most every ``every`` seconds, and finished with a newline; when the
output is a file or a pipe (cron, CI, a redirect) nothing is written, so logs stay clean.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO


class Progress:
    def __init__(self, stream: TextIO | None = None, *, every: float = 0.2,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = every
        self.clock = clock
        self.started = clock()
        self.last = float("-inf")
        self.drawn = False

    def rows(self, done: int, **counts: int) -> None:
        """``12,000 rows · 3 refused · 11,997 written · 1,850 rows/s``, at most once per ``every``."""
        if not self.enabled:
            return
        now = self.clock()
        if now - self.last < self.every:
            return
        self.last = now
        elapsed = max(now - self.started, 1e-9)
        parts = [f"{done:,} rows", *(f"{n:,} {name}" for name, n in counts.items()), f"{done / elapsed:,.0f} rows/s"]
        self.stream.write("\r" + " · ".join(parts) + "  ")
        self.stream.flush()
        self.drawn = True

    def done(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
