"""ReadDump as a Beam transform: folders, globs, several patterns, relative source paths, rejects."""
from __future__ import annotations

import gzip
import io
import tarfile

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from newsflow.io.read_dump import ReadDump, expand_pattern, relative_path

DOC = b"2024-07-05 10:00:00\nAn article.\n"


@pytest.fixture()
def dump(tmp_path, seed_bytes):
    (tmp_path / "day1" / "a").mkdir(parents=True)
    (tmp_path / "day1" / "a" / "000_seed.txt").write_bytes(seed_bytes)
    (tmp_path / "day1" / "bulk.txt.gz").write_bytes(gzip.compress(DOC + DOC))
    (tmp_path / "day1" / "empty.txt").write_bytes(b"")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name in ("2024/07/m.txt", "../../x.txt"):
            ti = tarfile.TarInfo(name)
            ti.size = len(DOC)
            tf.addfile(ti, io.BytesIO(DOC))
    (tmp_path / "day2").mkdir()
    (tmp_path / "day2" / "arch.tar.gz").write_bytes(buf.getvalue())
    return tmp_path


def _keys(doc):
    return doc["source_path"], doc["doc_index"]


def test_read_folder_and_glob_with_relative_paths(dump, seed_bytes) -> None:
    with TestPipeline() as p:
        read = p | ReadDump([str(dump / "day1"), str(dump / "day2" / "*.tar.gz")])
        assert_that(read.docs | "K" >> beam.Map(_keys), equal_to([
            ("a/000_seed.txt", 0), ("bulk.txt.gz", 0), ("bulk.txt.gz", 1), ("arch.tar.gz!2024/07/m.txt", 0),
        ]), label="docs")
        assert_that(read.rejects | "R" >> beam.Map(lambda r: (r["source_path"], r["doc_index"], r["reason"])),
                    equal_to([("empty.txt", None, "empty_file"), ("arch.tar.gz!../../x.txt", None, "unsafe_path")]),
                    label="rejects")
        seed = read.docs | beam.Filter(lambda d: d["source_path"] == "a/000_seed.txt") | beam.Map(lambda d: d["data"])
        assert_that(seed, equal_to([seed_bytes]), label="bytes")
        # one count per file (an archive is one file), documents and rejects alike
        assert_that(read.counts, equal_to([1, 2, 1, 2]), label="counts")


def test_a_file_matched_by_two_patterns_is_read_once_per_match(dump) -> None:
    with TestPipeline() as p:
        read = p | ReadDump([str(dump / "day1" / "bulk.txt.gz"), str(dump / "day1" / "*.gz")])
        assert_that(read.docs | "K" >> beam.Map(_keys), equal_to([("bulk.txt.gz", 0), ("bulk.txt.gz", 1)] * 2),
                    label="docs")
        assert_that(read.counts, equal_to([2, 2]), label="counts")


def test_pattern_matching_nothing_fails_loudly(tmp_path) -> None:
    with pytest.raises(Exception, match="matches no file"), TestPipeline() as p:
        _ = p | ReadDump(str(tmp_path / "nothing-*.txt"))


def test_expand_pattern_and_relative_path(tmp_path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.txt").write_bytes(DOC)
    root, glob = expand_pattern(str(tmp_path / "d"))
    assert root == str(tmp_path / "d") + "/" and glob.endswith("/d/**")
    assert expand_pattern(str(tmp_path / "d" / "f.txt")) == (str(tmp_path / "d") + "/", str(tmp_path / "d" / "f.txt"))
    assert expand_pattern("gs://b/x/*/y.gz") == ("gs://b/x/", "gs://b/x/*/y.gz")
    assert relative_path("gs://b/x/", "gs://b/x/2024/a.txt") == "2024/a.txt"
    assert relative_path("/other/", "/data/a.txt") == "/data/a.txt"


def test_no_pattern_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ReadDump([])
