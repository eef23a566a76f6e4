"""ReadDump as a Beam transform: folders, globs, several patterns, relative source paths, rejects."""

from __future__ import annotations

import gzip
import io
import logging
import tarfile

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from newsflow.io.read_dump import ReadDump, common_root, expand_pattern, plan_sources, relative_path, source_roots

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


def test_one_folder_gives_paths_relative_to_it(dump, seed_bytes) -> None:
    with TestPipeline() as p:
        read = p | ReadDump(str(dump / "day1"))
        assert_that(
            read.docs | "K" >> beam.Map(_keys),
            equal_to([("a/000_seed.txt", 0), ("bulk.txt.gz", 0), ("bulk.txt.gz", 1)]),
            label="docs",
        )
        seed = read.docs | beam.Filter(lambda d: d["source_path"] == "a/000_seed.txt") | beam.Map(lambda d: d["data"])
        assert_that(seed, equal_to([seed_bytes]), label="bytes")
        assert_that(
            read.rejects | "R" >> beam.Map(lambda r: r["source_path"]), equal_to(["empty.txt"]), label="rejects"
        )


def test_folder_and_glob_with_paths_relative_to_their_common_folder(dump, seed_bytes) -> None:
    with TestPipeline() as p:
        read = p | ReadDump([str(dump / "day1"), str(dump / "day2" / "*.tar.gz")])
        assert_that(
            read.docs | "K" >> beam.Map(_keys),
            equal_to(
                [
                    ("day1/a/000_seed.txt", 0),
                    ("day1/bulk.txt.gz", 0),
                    ("day1/bulk.txt.gz", 1),
                    ("day2/arch.tar.gz!2024/07/m.txt", 0),
                ]
            ),
            label="docs",
        )
        assert_that(
            read.rejects | "R" >> beam.Map(lambda r: (r["source_path"], r["doc_index"], r["reason"])),
            equal_to([("day1/empty.txt", None, "empty_file"), ("day2/arch.tar.gz!../../x.txt", None, "unsafe_path")]),
            label="rejects",
        )
        # one count per file (an archive is one file), documents and rejects alike
        assert_that(read.counts, equal_to([1, 2, 1, 2]), label="counts")


def test_two_roots_with_the_same_relative_paths_stay_apart(tmp_path) -> None:
    for name, body in (("a", b"First."), ("b", b"Second.")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "000.txt").write_bytes(b"2024-07-05 10:00:00\n" + body + b"\n")
    with TestPipeline() as p:
        read = p | ReadDump([str(tmp_path / "a"), str(tmp_path / "b") + "/"])
        assert_that(
            read.docs | beam.Map(lambda d: (d["source_path"], d["doc_index"], d["data"].split()[-1])),
            equal_to([("a/000.txt", 0, b"First."), ("b/000.txt", 0, b"Second.")]),
        )


@pytest.mark.parametrize("spelling", ["", "a/../"])
def test_several_files_of_one_folder_keep_paths_relative_to_it(dump, spelling: str) -> None:
    """What a shell makes of an unquoted ``day1/*``: several files, one folder, paths as with one input."""
    with TestPipeline() as p:
        read = p | ReadDump([str(dump / "day1" / "bulk.txt.gz"), str(dump / "day1") + f"/{spelling}empty.txt"])
        assert_that(read.docs | beam.Map(_keys), equal_to([("bulk.txt.gz", 0), ("bulk.txt.gz", 1)]), label="docs")
        assert_that(read.rejects | beam.Map(lambda r: r["source_path"]), equal_to(["empty.txt"]), label="rejects")


@pytest.mark.parametrize("second", ["same", "glob", "folder"])
def test_a_file_matched_twice_is_read_once_with_a_warning(dump, second: str, caplog) -> None:
    first = str(dump / "day1" / "bulk.txt.gz")
    other = {"same": first, "glob": str(dump / "day1" / "*.gz"), "folder": str(dump / "day1")}[second]
    with caplog.at_level(logging.WARNING, logger="newsflow.io.read_dump"), TestPipeline() as p:
        read = p | ReadDump([first, other])
        keys = read.docs | "K" >> beam.Map(_keys) | beam.Filter(lambda k: k[0].endswith("bulk.txt.gz"))
        assert_that(keys, equal_to([("bulk.txt.gz", 0), ("bulk.txt.gz", 1)]), label="docs")
    assert any("bulk.txt.gz" in r.getMessage() and "read once" in r.getMessage() for r in caplog.records)


def test_plan_sources_lists_each_file_once() -> None:
    files, repeats = plan_sources(
        ["gs://b/d1/", "gs://b/d2/", "gs://b/d1/x.txt"],
        [["gs://b/d1/x.txt"], ["gs://b/d2/x.txt"], ["gs://b/d1/x.txt"]],
        roots=["gs://b/d1/", "gs://b/d2/", "gs://b/d1/"],
    )
    assert files == [("gs://b/d1/x.txt", "d1/x.txt"), ("gs://b/d2/x.txt", "d2/x.txt")]
    assert repeats == [("gs://b/d1/x.txt", "gs://b/d1/x.txt")]
    files, _ = plan_sources(["gs://b/d1/"], [["gs://b/d1/y/x.txt"]], roots=["gs://b/d1/"])
    assert files == [("gs://b/d1/y/x.txt", "y/x.txt")]  # one input: relative to its own folder


def test_common_root() -> None:
    assert common_root(["gs://b/x/d1/", "gs://b/x/d2/"]) == "gs://b/x/"
    assert common_root(["gs://b/d1/", "gs://b/d1/"]) == "gs://b/d1/"
    assert common_root(["gs://b/d1/", "s3://b/d2/"]) == ""
    assert common_root(["/data/a/", "/data/b/c/"]) == "/data/"
    assert common_root(["/data/a/", "gs://b/"]) == ""
    assert source_roots(["/x/p.txt", "/x/q.txt"], roots=["/x/", "/x/"]) == ["/x/", "/x/"]


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
