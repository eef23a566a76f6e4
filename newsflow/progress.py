"""Progress lines while a run reads its input: documents, rate, bytes, every few seconds.

Printed by the worker that reads (on DirectRunner, the terminal's process; on Dataflow,
the worker logs), one line at a time on stderr so it never mixes with the summary.
"""
from __future__ import annotations

import os
import sys
import time
from typing import TextIO

__all__ = ["ProgressReporter"]


class ProgressReporter:
    """Counts documents and bytes read and prints a line at most every ``interval`` seconds."""

    def __init__(self, interval: float = 5.0, stream: TextIO | None = None, clock=time.monotonic) -> None:
        self._interval = interval
        self._stream = stream
        self._clock = clock
        self._start = clock()
        self._last = self._start
        self.docs = 0
        self.bytes = 0
        self.lines_printed = 0

    def add(self, docs: int, nbytes: int) -> None:
        self.docs += docs
        self.bytes += nbytes
        now = self._clock()
        if now - self._last >= self._interval:
            self._last = now
            self._print(now)

    def _print(self, now: float) -> None:
        elapsed = max(now - self._start, 1e-9)
        line = (f"newsflow: read {self.docs:,} docs, {self.bytes / 1e6:,.1f} MB in {elapsed:,.0f} s "
                f"({self.docs / elapsed:,.0f} docs/s, {self.bytes / 1e6 / elapsed:,.1f} MB/s) [pid {os.getpid()}]")
        print(line, file=self._stream or sys.stderr, flush=True)
        self.lines_printed += 1
