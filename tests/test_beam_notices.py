"""Beam's notices that it ignores newsflow's composite annotations are dropped; nothing else Beam logs is."""

from __future__ import annotations

import logging
import os

import apache_beam as beam

from newsflow import beam_notices
from newsflow.config import Config
from pipelines.ingest import build_pipeline

_DECORATORS = os.path.join("site-packages", "apache_beam", "typehints", "decorators.py")


def _record(msg: str, path: str = _DECORATORS, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord("root", level, path, 1, msg, None, None)


def test_filter_drops_only_the_ignored_hint_notices() -> None:
    f = beam_notices.IgnoredHintNotices()
    assert not f.filter(_record("This output type hint will be ignored and not used ... Got: X instead."))
    assert not f.filter(_record("This input type hint will be ignored and not used ..."))
    assert not f.filter(_record("TaggedOutput in return type must include type parameters: ..."))
    assert f.filter(_record("Could not get signature for function: %s"))  # another notice of the same module
    assert f.filter(_record("This output type hint will be ignored", path="/app/mine.py"))  # another module
    assert f.filter(_record("This output type hint will be ignored", level=logging.ERROR))
    bigquery = os.path.join("apache_beam", "io", "gcp", "internal", "clients", "bigquery", "__init__.py")
    assert not f.filter(_record("apitools not found, and bigquery client libraries are not available ...", bigquery))
    assert f.filter(_record("This output type hint will be ignored", bigquery))  # each notice of its own module


_WITHOUT_APITOOLS = "import sys; sys.modules['apitools'] = None; "  # as without Beam's gcp extras


def _stderr_of(code: str) -> str:
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stderr


def test_beams_import_time_notice_is_dropped_when_the_job_starts() -> None:
    """`python -m pipelines.ingest` imports Beam after the filter is in place; Beam first would print it."""
    assert "apitools not found" not in _stderr_of(_WITHOUT_APITOOLS + "import pipelines.ingest")
    assert "apitools not found" not in _stderr_of(_WITHOUT_APITOOLS + "import newsflow, apache_beam.io.gcp.bigquery")
    assert "apitools not found" in _stderr_of(_WITHOUT_APITOOLS + "import apache_beam.io.gcp.bigquery")


def test_building_the_ingest_graph_logs_no_ignored_hint_notice(caplog, tmp_path) -> None:
    assert any(isinstance(f, beam_notices.IgnoredHintNotices) for f in logging.getLogger().filters)
    with caplog.at_level(logging.WARNING):
        p = beam.Pipeline()
        build_pipeline(p, [str(tmp_path / "in")], str(tmp_path / "out"), Config())
    assert not [r for r in caplog.records if "type hint" in r.getMessage() or "TaggedOutput" in r.getMessage()]


def test_without_the_filter_beam_would_log_them(caplog, tmp_path) -> None:
    """The graph test above can fail: with the filter removed the notices are there."""
    root = logging.getLogger()
    ours = [f for f in root.filters if isinstance(f, beam_notices.IgnoredHintNotices)]
    for f in ours:
        root.removeFilter(f)
    try:
        with caplog.at_level(logging.WARNING):
            build_pipeline(beam.Pipeline(), [str(tmp_path / "in")], str(tmp_path / "out"), Config())
        assert [r for r in caplog.records if "type hint will be ignored" in r.getMessage()]
    finally:
        beam_notices.install()
