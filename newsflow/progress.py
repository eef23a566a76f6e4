"""Progress lines while a run works: documents, rate and elapsed time per stage, every few seconds.

Two kinds of line, both on stderr so they never mix with the summary (on DirectRunner the
terminal's process prints them; on Dataflow and other runners they land in the worker
logs):

- while reading: documents and bytes read (:class:`ProgressReporter`, used by ``ReadDump``);
- after each later stage (parsed, language, deduped, written): :class:`StageProgress`, a
  per-process counter that checks the clock only every ``check_every`` elements, wrapped
  by the :class:`Progress` pass-through transform.

Each line names the process (``pid``): with several workers each reports its own share.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import apache_beam as beam

__all__ = ["Progress", "ProgressReporter", "StageProgress"]


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
        line = (
            f"newsflow: read {self.docs:,} docs, {self.bytes / 1e6:,.1f} MB in {elapsed:,.0f} s "
            f"({self.docs / elapsed:,.0f} docs/s, {self.bytes / 1e6 / elapsed:,.1f} MB/s) [pid {os.getpid()}]"
        )
        print(line, file=self._stream or sys.stderr, flush=True)
        self.lines_printed += 1


class StageProgress:
    """Counts the elements one stage has handled in this process and prints a line at most every ``interval`` s.

    ``add`` looks at the clock only every ``check_every`` elements, so counting costs an
    addition per element.  ``flush`` prints the count reached when it changed since the
    last line and ``min_gap`` seconds have passed (end of a bundle); ``finish`` prints the
    final count once (end of the stage in this process).  Elapsed time and rate run from
    the stage's first element in this process.
    """

    def __init__(
        self,
        stage: str,
        interval: float = 5.0,
        check_every: int = 256,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        unit: str = "docs",
    ) -> None:
        self.stage = stage
        self.unit = unit
        self._interval = interval
        self._check_every = max(1, check_every)
        self._stream = stream
        self._clock = clock
        self._start: float | None = None
        self._last = 0.0
        self._next_check = 0
        self._printed_count = 0
        self.count = 0
        self.lines: list[str] = []
        self.finished = False

    def add(self, n: int = 1) -> None:
        if self._start is None:
            self._start = self._last = self._clock()
        self.count += n
        if self.count >= self._next_check:
            self._next_check = self.count + self._check_every
            now = self._clock()
            if now - self._last >= self._interval:
                self._emit(now)

    def flush(self, min_gap: float | None = None) -> None:
        """Print the count reached if it moved since the last line and ``min_gap`` (default: interval) passed."""
        if self._start is None or self.count == self._printed_count:
            return
        now = self._clock()
        if now - self._last >= (self._interval if min_gap is None else min_gap):
            self._emit(now)

    def finish(self) -> None:
        """Print this process's final count for the stage (once, and only if it handled anything)."""
        if self.finished or self._start is None:
            return
        self.finished = True
        self._emit(self._clock(), final=True)

    def _emit(self, now: float, final: bool = False) -> None:
        self._last = now
        self._printed_count = self.count
        elapsed = now - (self._start if self._start is not None else now)
        rate = f"{self.count / elapsed:,.0f} {self.unit}/s" if elapsed > 0 else f"- {self.unit}/s"
        what = "done, " if final else ""
        line = (
            f"newsflow: {self.stage}: {what}{self.count:,} {self.unit} in {elapsed:,.0f} s ({rate}) [pid {os.getpid()}]"
        )
        print(line, file=self._stream or sys.stderr, flush=True)
        self.lines.append(line)


_SHARED: dict[tuple[str, str], StageProgress] = {}
_SHARED_LOCK = threading.Lock()


def shared_progress(token: str, stage: str, interval: float, unit: str = "docs") -> StageProgress:
    """The one :class:`StageProgress` of a stage in this process (every DoFn instance and thread counts into it)."""
    key = (token, stage)
    with _SHARED_LOCK:
        got = _SHARED.get(key)
        if got is None:
            got = _SHARED[key] = StageProgress(stage, interval, unit=unit)
        return got


class _ProgressFn(beam.DoFn):
    """Passes elements through, counting them into the stage's per-process :class:`StageProgress`."""

    def __init__(self, token: str, stage: str, interval: float):
        self._token = token
        self._stage = stage
        self._interval = interval
        self._progress: StageProgress | None = None

    def setup(self) -> None:
        self._progress = shared_progress(self._token, self._stage, self._interval)

    def process(self, element: Any) -> Iterator[Any]:
        self._progress.add()
        yield element

    def finish_bundle(self) -> None:
        self._progress.flush()

    def teardown(self) -> None:
        if self._progress is not None:
            self._progress.finish()


class Progress(beam.PTransform):
    """A pass-through that prints ``newsflow: <stage>: N docs in T s (R docs/s)`` lines while elements go by.

    ``interval`` None returns the input unchanged (no step added), which is how ``--quiet`` silences it.
    """

    def __init__(self, stage: str, interval: float | None = 5.0):
        super().__init__()
        self._stage = stage
        self._interval = interval
        self._token = uuid.uuid4().hex  # one counter per stage and process for this pipeline, not across pipelines

    def expand(self, pcoll: beam.PCollection) -> beam.PCollection:
        if self._interval is None:
            return pcoll
        return pcoll | beam.ParDo(_ProgressFn(self._token, self._stage, self._interval))
