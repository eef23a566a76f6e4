"""SplitHeader as a Beam transform: records, reason-coded rejects, counters."""

from __future__ import annotations

import datetime as dt

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from newsflow.config import ParseConfig
from newsflow.core.parse import make_doc_id
from newsflow.transforms.split_header import SplitHeader, split_raw_doc


def _raw(data: bytes, path: str = "f.txt", idx: int = 0, size: int | None = None) -> dict:
    return {"source_path": path, "doc_index": idx, "data": data, "size": len(data) if size is None else size}


def test_seed_record(seed_bytes) -> None:
    kind, doc = split_raw_doc(_raw(seed_bytes, "feeds/000_9e7363cd7f7dbcf0.txt"), ParseConfig())
    assert kind == "doc"
    assert doc["doc_id"] == make_doc_id("feeds/000_9e7363cd7f7dbcf0.txt", 0, seed_bytes)
    assert dt.datetime(1970, 1, 1) + dt.timedelta(seconds=doc["published_at"]) == dt.datetime(2024, 7, 4, 18, 3, 53)
    assert doc["collected_at"] == 1720111917
    assert doc["hashtags_raw"][0] == "#quoi" and doc["lang"] == "und" and doc["hashtags"] == []


def test_truncated_raw_doc_is_too_large() -> None:
    kind, rej = split_raw_doc(_raw(b"2024-07-05 10:00:00\nxx", size=10_000_000), ParseConfig())
    assert kind == "reject" and rej["reason"] == "too_large" and rej["excerpt"].startswith("2024-07-05")


def test_transform_routes_rejects(seed_bytes) -> None:
    raws = [
        _raw(seed_bytes, "a.txt"),
        _raw(b"no header here\n", "b.txt"),
        _raw(b"2024-13-45 25:61:00\nbody\n", "c.txt"),
        _raw(b"2024-07-05 10:00:00\n", "d.txt"),
        _raw(b"2024-07-05 10:00:00\n" + bytes(range(32)) * 20, "e.txt"),
        _raw(b"2024-07-05 10:00:00\nbig", "f.txt", size=9_000_000),
    ]
    with TestPipeline() as p:
        out = p | beam.Create(raws) | SplitHeader()
        assert_that(out.docs | "D" >> beam.Map(lambda d: d["source_path"]), equal_to(["a.txt"]), label="docs")
        assert_that(
            out.rejects | "R" >> beam.Map(lambda r: (r["source_path"], r["reason"])),
            equal_to(
                [
                    ("b.txt", "no_header"),
                    ("c.txt", "bad_timestamp"),
                    ("d.txt", "empty_body"),
                    ("e.txt", "binary"),
                    ("f.txt", "too_large"),
                ]
            ),
            label="rejects",
        )
