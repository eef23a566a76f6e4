"""Progress lines: the per-stage counter as a pure unit (fake clock) and the lines a pipeline run prints."""

from __future__ import annotations

import io
import re

import apache_beam as beam

from newsflow.config import Config
from newsflow.progress import Heartbeat, Progress, StageProgress


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.now


def _stage(clock: FakeClock, interval: float = 5.0, check_every: int = 10) -> tuple[StageProgress, io.StringIO]:
    out = io.StringIO()
    return StageProgress("language", interval, check_every=check_every, stream=out, clock=clock), out


def test_a_line_at_most_every_interval_with_count_rate_and_elapsed() -> None:
    clock = FakeClock()
    p, out = _stage(clock)
    for _ in range(100):  # 100 docs in the first 4 s: nothing yet
        p.add()
    clock.now += 4
    for _ in range(20):
        p.add()
    assert out.getvalue() == ""
    clock.now += 2  # 6 s after the first element
    for _ in range(10):
        p.add()
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    got = re.fullmatch(r"newsflow: language: (\d+) docs in 6 s \((\d+) docs/s\) \[pid \d+\]", lines[0])
    assert got, lines[0]
    n = int(got[1])
    assert 120 < n <= 130 and int(got[2]) == round(n / 6)  # printed at the first clock check past 5 s
    for _ in range(50):  # same second: no second line
        p.add()
    assert len(out.getvalue().splitlines()) == 1


def test_the_clock_is_read_only_every_check_every_elements() -> None:
    clock = FakeClock()
    p, _ = _stage(clock, check_every=100)
    for _ in range(1000):
        p.add()
    assert clock.calls <= 1 + 1000 // 100 + 1


def test_flush_prints_new_counts_only_and_finish_is_timed_to_the_last_bundle() -> None:
    clock = FakeClock()
    idle, idle_out = _stage(clock, interval=5.0)
    idle.flush()
    idle.finish()
    assert idle_out.getvalue() == "" and idle.finished  # a stage that handled nothing says nothing
    p, out = _stage(clock, interval=5.0)
    p.add(7)
    clock.now += 1
    p.flush()  # bundle end 1 s in: not yet
    clock.now += 5
    p.flush()
    p.flush()  # nothing new since the line above
    assert len(out.getvalue().splitlines()) == 1 and ": 7 docs in 6 s" in out.getvalue()
    p.add(3)
    clock.now += 4
    p.flush()  # the stage's last bundle ends 10 s in
    clock.now += 50  # torn down much later, at the end of the run
    p.finish()
    p.finish()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and ": done, 10 docs in 10 s (1 docs/s)" in lines[1]


def test_heartbeat_speaks_only_when_every_stage_is_quiet() -> None:
    clock = FakeClock()
    out = io.StringIO()
    beat = Heartbeat(5.0, stream=out, clock=clock)
    assert beat.check() is None  # no stage yet
    parsed = beat.stages["parsed"] = StageProgress("parsed", 5.0, check_every=1, stream=out, clock=clock)
    beat.stages["dedupe kept"] = StageProgress("dedupe kept", 5.0, stream=out, clock=clock)
    for _ in range(4):
        clock.now += 2
        parsed.add(1000)  # the parsed stage prints every 5 s
        assert beat.check() is None
    clock.now += 6  # parsing is over; the grouping steps of dedupe print nothing
    line = beat.check()
    assert line is not None and "working, 14 s in; so far parsed 4,000, dedupe kept 0 [pid" in line
    clock.now += 1
    assert beat.check() is None  # at most one line per interval
    clock.now += 5
    assert beat.check() is not None
    for s in beat.stages.values():
        s.finish()
    clock.now += 60
    assert beat.check() is None  # every stage finished: quiet


def test_no_interval_adds_no_step() -> None:
    with beam.Pipeline() as pipe:
        pcoll = pipe | beam.Create([1, 2])
        assert (pcoll | "Quiet" >> Progress("parsed", None)) is pcoll


def test_a_run_prints_lines_for_every_stage(tmp_path, capfd) -> None:
    from pipelines.ingest import build_pipeline, default_input

    out = tmp_path / "out"
    with beam.Pipeline() as pipe:
        build_pipeline(pipe, [default_input()], str(out), Config(), progress_interval=0.0)
    err = capfd.readouterr().err
    for stage in ("parsed", "language", "dedupe kept", "written"):
        assert re.search(rf"^newsflow: {stage}: [\d,]+ docs in \d+ s", err, re.M), (stage, err)
        assert re.search(rf"^newsflow: {stage}: done, [1-9][\d,]* docs", err, re.M), (stage, err)
    assert (out / "_manifest.json").exists()


def test_quiet_run_prints_no_stage_lines(tmp_path, capfd) -> None:
    from pipelines.ingest import build_pipeline, default_input

    with beam.Pipeline() as pipe:
        build_pipeline(pipe, [default_input()], str(tmp_path / "out"), Config(), progress_interval=None)
    assert "newsflow: parsed" not in capfd.readouterr().err
