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
import weakref
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import apache_beam as beam

__all__ = [
    "Heartbeat",
    "Progress",
    "ProgressReporter",
    "StageProgress",
    "acquire_progress",
    "release_progress",
    "run_token",
]


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
    addition per element.  ``flush`` (end of a bundle) notes the time and prints the count
    reached when it moved and ``interval`` passed since the last line; ``finish`` prints the
    final count once, timed to the last element or bundle end seen.  Elapsed time and
    rate run from the stage's first element in this process.
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
        self._seen = 0.0  # last time the clock was read while counting
        self.last_line = 0.0  # when the last line was printed (0: never)
        self._next_check = 0
        self._printed_count = 0
        self.count = 0
        self.lines_printed = 0
        self.finished = False

    @property
    def last_seen(self) -> float:
        """The last time this stage was seen counting (0: never)."""
        return self._seen

    def add(self, n: int = 1) -> None:
        if self._start is None:
            self._start = self._seen = self._clock()
        self.count += n
        if self.count >= self._next_check:
            self._next_check = self.count + self._check_every
            now = self._seen = self._clock()
            if now - max(self.last_line, self._start) >= self._interval:
                self._emit(now)

    def flush(self) -> None:
        """End of a bundle: note the time; print the count if it moved and ``interval`` passed since the last line."""
        if self._start is None:
            return
        now = self._seen = self._clock()
        if self.count != self._printed_count and now - max(self.last_line, self._start) >= self._interval:
            self._emit(now)

    def finish(self) -> None:
        """Print this process's final count for the stage (once, and only if it handled anything)."""
        if self.finished:
            return
        self.finished = True
        if self._start is not None:
            self._emit(self._seen, final=True)

    def _emit(self, now: float, final: bool = False) -> None:
        self.last_line = max(now, self.last_line)
        self._printed_count = self.count
        elapsed = now - (self._start if self._start is not None else now)
        rate = f"{self.count / elapsed:,.0f} {self.unit}/s" if elapsed > 0 else f"- {self.unit}/s"
        what = "done, " if final else ""
        line = (
            f"newsflow: {self.stage}: {what}{self.count:,} {self.unit} in {elapsed:,.0f} s ({rate}) [pid {os.getpid()}]"
        )
        print(line, file=self._stream or sys.stderr, flush=True)
        self.lines_printed += 1


class Heartbeat:
    """A line when no stage of this process has counted or printed for ``interval`` s: elapsed time, stage counts.

    Between the counted stages run grouping steps (dedupe's buckets and rounds, the
    writer's shuffles) that print nothing themselves; this line shows the run is alive
    and which stage has not produced yet.  ``check`` is called by a daemon thread.
    """

    def __init__(self, interval: float, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic):
        self._interval = interval
        self._stream = stream
        self._clock = clock
        self._start = clock()
        self._last = self._start
        self.stages: dict[str, StageProgress] = {}
        self.lines_printed = 0

    def check(self) -> str | None:
        """Print and return the heartbeat line if it is due (None otherwise)."""
        now = self._clock()
        stages = list(self.stages.values())
        if not stages or all(s.finished for s in stages):
            return None
        last = max([self._last, *(max(s.last_line, s.last_seen) for s in stages)])
        if now - last < self._interval:
            return None
        self._last = now
        counts = ", ".join(f"{s.stage} {s.count:,}" for s in stages)
        line = f"newsflow: working, {now - self._start:,.0f} s in; so far {counts} [pid {os.getpid()}]"
        print(line, file=self._stream or sys.stderr, flush=True)
        self.lines_printed += 1
        return line


class _Run:
    """This process's counters and heartbeat for one pipeline (one ``token``), with use counts."""

    def __init__(self, interval: float):
        self.heartbeat = Heartbeat(interval)
        self.users: dict[str, int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="newsflow-progress", daemon=True)
        self.thread.start()

    def _beat(self) -> None:
        period = max(self.heartbeat._interval, 0.5)
        while not self.stop.wait(period):
            self.heartbeat.check()


_RUNS: dict[str, _Run] = {}
_LOCK = threading.Lock()


def acquire_progress(token: str, stage: str, interval: float, unit: str = "docs") -> StageProgress:
    """The one :class:`StageProgress` of ``stage`` in this process; every DoFn instance and thread counts into it.

    Pair each call with :func:`release_progress` (DoFn ``setup``/``teardown``).
    """
    with _LOCK:
        run = _RUNS.get(token)
        if run is None:
            run = _RUNS[token] = _Run(interval)
        got = run.heartbeat.stages.get(stage)
        if got is None:
            got = run.heartbeat.stages[stage] = StageProgress(stage, interval, unit=unit)
        run.users[stage] = run.users.get(stage, 0) + 1
        return got


def release_progress(token: str, stage: str) -> None:
    """The last user of a stage in this process prints its final line; the last of all stops the heartbeat."""
    with _LOCK:
        run = _RUNS.get(token)
        if run is None or stage not in run.users:
            return
        run.users[stage] -= 1
        if run.users[stage] > 0:
            return
        del run.users[stage]
        run.heartbeat.stages[stage].finish()
        if not run.users:
            run.stop.set()
            del _RUNS[token]


class _ProgressFn(beam.DoFn):
    """Passes elements through, counting them into the stage's per-process :class:`StageProgress`."""

    def __init__(self, token: str, stage: str, interval: float):
        self._token = token
        self._stage = stage
        self._interval = interval
        self._progress: StageProgress | None = None

    def setup(self) -> None:
        self._progress = acquire_progress(self._token, self._stage, self._interval)

    def process(self, element: Any) -> Iterator[Any]:
        self._progress.add()
        yield element

    def finish_bundle(self) -> None:
        self._progress.flush()

    def teardown(self) -> None:
        if self._progress is not None:
            self._progress = None
            release_progress(self._token, self._stage)


class Progress(beam.PTransform):
    """A pass-through that prints ``newsflow: <stage>: N docs in T s (R docs/s)`` lines while elements go by.

    Every stage of one pipeline shares one heartbeat line (see :class:`Heartbeat`);
    ``interval`` None returns the input unchanged (no step added), which is how
    ``--quiet`` silences it.
    """

    def __init__(self, stage: str, interval: float | None = 5.0):
        super().__init__()
        self._stage = stage
        self._interval = interval

    def expand(self, pcoll: beam.PCollection) -> beam.PCollection:
        if self._interval is None:
            return pcoll
        return pcoll | beam.ParDo(_ProgressFn(run_token(pcoll.pipeline), self._stage, self._interval))


_TOKENS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def run_token(pipeline: beam.Pipeline) -> str:
    """The token naming ``pipeline``'s progress counters: the same for all its stages, new for every pipeline."""
    token = _TOKENS.get(pipeline)
    if token is None:
        token = _TOKENS[pipeline] = uuid.uuid4().hex
    return token
