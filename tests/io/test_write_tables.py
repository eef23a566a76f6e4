"""WriteTables: partition layout, explicit schemas, deterministic names, reruns, verification, manifest."""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import time

import apache_beam as beam
import pandas as pd
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from newsflow.config import ConfigError, OutputConfig
from newsflow.io.tables import TABLES, date_partition, lang_partition
from newsflow.io.write_tables import TmpFolder, WriteTables, stale_reason
from newsflow.schema import epoch_to_datetime, make_doc, make_reject

DAY = 19_908 * 86_400  # 2024-07-04


def _docs(n: int, lang: str = "fr") -> list[dict]:
    return [
        make_doc(
            doc_id=f"{i:032x}",
            source_path=f"f{i}.txt",
            doc_index=0,
            published_at=DAY + i * 3600,
            text=f"text {i}",
            lang=lang,
            lang_score=0.9,
        )
        for i in range(n)
    ]


def _write(out, docs, rejects=(), dups=(), mode="error", run_id="r1", cfg=None, read=None):
    with TestPipeline() as p:
        tables = {
            "docs": p | "D" >> beam.Create(docs),
            "rejects": p | "R" >> beam.Create(list(rejects)),
            "duplicates": p | "U" >> beam.Create(list(dups)),
        }
        n = len(docs) + len(rejects) + len(dups) if read is None else read
        count = p | "N" >> beam.Create([n])
        _ = tables | WriteTables(str(out), cfg or OutputConfig(), read_count=count, mode=mode, run_id=run_id)
    return json.loads((out / "_manifest.json").read_text())


def _files(out) -> list[str]:
    """Visible data files (readers skip hidden and ``_`` folders)."""
    rels = (p.relative_to(out) for p in out.rglob("*.parquet"))
    return sorted(str(r) for r in rels if not any(part.startswith((".", "_")) for part in r.parts))


def test_layout_schema_and_manifest(tmp_path) -> None:
    out = tmp_path / "out"
    docs = _docs(30)
    rej = [make_reject("bad.txt", None, "empty_file", "empty")]
    manifest = _write(out, docs, rej)
    assert _files(out) == [
        "docs/lang=fr/date=2024-07-04/part-00000-of-00001.parquet",
        "docs/lang=fr/date=2024-07-05/part-00000-of-00001.parquet",
        "duplicates/part-00000-of-00001.parquet",
        "rejects/part-00000-of-00001.parquet",
    ]
    f = out / "docs/lang=fr/date=2024-07-04/part-00000-of-00001.parquet"
    assert pq.read_schema(f).remove_metadata() == TABLES["docs"].file_schema.remove_metadata()
    assert pq.read_schema(out / "duplicates/part-00000-of-00001.parquet").names == TABLES["duplicates"].schema.names
    back = pd.read_parquet(out / "docs")
    assert len(back) == 30 and set(back["lang"]) == {"fr"} and back["doc_id"].is_unique
    assert manifest["counts"] == {
        "read": 31,
        "kept": 30,
        "duplicates": 0,
        "duplicates_by_method": {},
        "rejects": 1,
        "rejects_by_reason": {"empty_file": 1},
        "kept_by_lang": {"fr": 30},
    }
    assert manifest["accounting_ok"] is True
    assert not [p for p in out.iterdir() if p.name.startswith(".newsflow-tmp")]


def test_large_partitions_are_sharded_deterministically(tmp_path) -> None:
    docs = [dict(d, published_at=DAY) for d in _docs(50)]
    cfg = OutputConfig(max_rows_per_file=20)
    _write(tmp_path / "a", docs, cfg=cfg)
    _write(tmp_path / "b", list(reversed(docs)), cfg=cfg)
    files = [f for f in _files(tmp_path / "a") if f.startswith("docs/")]
    assert files == [f"docs/lang=fr/date=2024-07-04/part-0000{i}-of-00003.parquet" for i in range(3)]
    for f in files:
        a, b = pq.read_table(tmp_path / "a" / f), pq.read_table(tmp_path / "b" / f)
        assert a.equals(b)  # same rows, same order, whatever the input order
    assert sum(pq.read_metadata(tmp_path / "a" / f).num_rows for f in files) == 50


def test_read_count_may_come_as_several_counts_and_files_are_listed_in_path_order(tmp_path) -> None:
    out = tmp_path / "out"
    docs = _docs(30)
    with TestPipeline() as p:
        tables = {
            "docs": p | "D" >> beam.Create(docs),
            "rejects": p | "R" >> beam.Create([]),
            "duplicates": p | "U" >> beam.Create([]),
        }
        counts = p | "N" >> beam.Create([10, 0, 20])  # e.g. one count per file read
        _ = tables | WriteTables(str(out), OutputConfig(), read_count=counts)
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["counts"]["read"] == 30 and manifest["accounting_ok"] is True
    paths = [f["path"] for f in manifest["files"]]
    assert paths == sorted(paths) and len(paths) == 4
    assert [f["rows"] for f in manifest["files"]] == [24, 6, 0, 0]


def test_rows_are_written_with_every_column_as_given(tmp_path) -> None:
    out = tmp_path / "out"
    doc = make_doc(
        doc_id="a" * 32,
        source_path="x.txt",
        doc_index=3,
        published_at=DAY + 61,
        collected_at=DAY + 90,
        text="t",
        hashtags_raw=["#A", "#b"],
        hashtags=["a"],
        lang="fr",
        lang_score=0.5,
        lang_alt="de",
        lang_alt_score=0.25,
        invalid_bytes=2,
    )
    _write(out, [doc])
    back = pq.read_table(out / "docs/lang=fr/date=2024-07-04/part-00000-of-00001.parquet").to_pylist()
    assert len(back) == 1
    got = back[0]
    assert got["published_at"] == epoch_to_datetime(DAY + 61) and got["collected_at"].timestamp() == DAY + 90
    assert got["published_at_utc"] is None
    expected = {k: v for k, v in doc.items() if k not in ("lang", "published_at", "collected_at", "published_at_utc")}
    assert {k: got[k] for k in expected} == expected


def test_rerun_overwrite_replaces_instead_of_adding(tmp_path) -> None:
    out = tmp_path / "out"
    _write(out, _docs(10), run_id="x1")
    _write(out, _docs(4, lang="de"), mode="overwrite", run_id="x2")
    back = pd.read_parquet(out / "docs")
    assert len(back) == 4 and set(back["lang"]) == {"de"}


def test_append_mode_adds_runs_and_replaces_its_own(tmp_path) -> None:
    out = tmp_path / "out"
    day1 = _docs(3)
    day2 = [dict(d, doc_id=f"{i + 100:032x}", published_at=DAY + 5 * 86400) for i, d in enumerate(_docs(2))]
    _write(out, day1, mode="append", run_id="day1")
    _write(out, day2, mode="append", run_id="day2")
    _write(out, day2, mode="append", run_id="day2")  # rerun of day 2
    assert len(pd.read_parquet(out / "docs")) == 5
    assert any("part-day1-" in f for f in _files(out)) and any("part-day2-" in f for f in _files(out))
    assert (out / "_runs" / "day2.json").exists()


def test_count_mismatch_fails_and_leaves_output_untouched(tmp_path) -> None:
    out = tmp_path / "out"
    with pytest.raises(Exception, match="documents read but"):
        _write(out, _docs(3), read=5)
    assert _files(out) == []
    assert not (out / "_manifest.json").exists()


@pytest.mark.parametrize("value", ["../../x", "/", "a=b", "fr\x00", "x" * 100, "", None, "FR", "en/../.."])
def test_partition_values_from_data_are_made_safe(value) -> None:
    assert lang_partition(value) == "und"


def test_partition_values_that_are_fine() -> None:
    assert [lang_partition(v) for v in ("fr", "pcm", "zh-Hant", "und")] == ["fr", "pcm", "zh-Hant", "und"]
    assert date_partition(DAY) == "2024-07-04"
    assert date_partition(-62135596800) == "0001-01-01"
    assert date_partition("nope") == "0000-00-00"


def test_hostile_lang_cannot_escape_the_output(tmp_path) -> None:
    out = tmp_path / "out"
    _write(out, _docs(2, lang="../../escape"))
    assert _files(out)[0].startswith("docs/lang=und/date=2024-07-04/")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# ----------------------------------------------------------------------------- temporary folders


def _glob_parquet(out) -> list[str]:
    """What ``out/**/*.parquet`` finds, hidden folders included (as DuckDB and Spark globs do)."""
    return sorted(str(p.relative_to(out)) for p in out.rglob("*.parquet"))


def test_a_run_that_fails_before_finalize_leaves_no_parquet_for_globs(tmp_path) -> None:
    out = tmp_path / "out"
    with pytest.raises(Exception, match="documents read but"):
        _write(out, _docs(3), read=5)
    leftovers = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".parquet.tmp") for p in leftovers)  # the shards were written, then left
    assert _glob_parquet(out) == []


def _tmp_folder(out, name: str, age_s: float, writer: tuple[str, int] | None = None):
    folder = out / name
    folder.mkdir(parents=True)
    f = folder / "docs+lang=fr+date=2024-07-04+part-00000-of-00001.parquet.tmp"
    f.write_bytes(b"x" * 1000)
    if writer:
        (folder / f"_writer-{writer[0]}-{writer[1]}.json").write_text("{}")
    when = time.time() - age_s
    for p in folder.iterdir():
        os.utime(p, (when, when))
    return folder


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_rule() -> None:
    now = 1_000_000.0
    old = TmpFolder("o/.newsflow-tmp-a", (("f", 1, now - 7 * 3600),), (("other", 1),))
    fresh_remote = TmpFolder("o/.newsflow-tmp-b", (("f", 1, now - 60),), (("other", 1),))
    fresh_here_dead = TmpFolder("o/.newsflow-tmp-c", (("f", 1, now - 60),), (("me", 11), ("me", 12)))
    fresh_here_alive = TmpFolder("o/.newsflow-tmp-d", (("f", 1, now - 60),), (("me", 11), ("me", 13)))
    unknown_time = TmpFolder("o/.newsflow-tmp-e", (("f", 1, 0.0),), ())
    alive = {13}.__contains__
    assert "7.0 h ago" in stale_reason(old, now, 6 * 3600, "me", alive)
    assert stale_reason(fresh_remote, now, 6 * 3600, "me", alive) is None
    assert "11, 12" in stale_reason(fresh_here_dead, now, 6 * 3600, "me", alive)
    assert stale_reason(fresh_here_alive, now, 6 * 3600, "me", alive) is None
    assert stale_reason(unknown_time, now, 6 * 3600, "me", alive) is None


def test_next_run_removes_stale_temporary_folders_and_keeps_live_ones(tmp_path, caplog) -> None:
    from newsflow.io.write_tables import _host

    out = tmp_path / "out"
    old = _tmp_folder(out, ".newsflow-tmp-old", 7 * 3600, ("elsewhere", 1))
    killed_here = _tmp_folder(out, ".newsflow-tmp-killed", 30, (_host(), _dead_pid()))
    running_elsewhere = _tmp_folder(out, ".newsflow-tmp-running", 30, ("elsewhere", 1))
    running_here = _tmp_folder(out, ".newsflow-tmp-mine", 30, (_host(), os.getpid()))
    (out / ".newsflow-tmp-empty").mkdir()
    os.utime(out / ".newsflow-tmp-empty", (time.time() - 7 * 3600,) * 2)
    with caplog.at_level(logging.WARNING, logger="newsflow.io.write_tables"):
        _write(out, _docs(3), run_id="new")
    assert not old.exists() and not killed_here.exists() and not (out / ".newsflow-tmp-empty").exists()
    assert running_elsewhere.exists() and running_here.exists()
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".newsflow-tmp")) == [
        ".newsflow-tmp-mine",
        ".newsflow-tmp-running",
    ]  # this run's own folder is gone too
    text = caplog.text
    assert f"removed stale temporary folder {old}" in text and "7.0 h ago" in text
    assert f"removed stale temporary folder {killed_here}" in text and "have exited" in text
    assert f"kept temporary folder {running_elsewhere}" in text
    assert len(pd.read_parquet(out / "docs")) == 3


def test_rerun_with_the_same_run_id_clears_the_killed_attempts_files(tmp_path) -> None:
    out = tmp_path / "out"
    _tmp_folder(out, ".newsflow-tmp-day1", 30, ("elsewhere", 1))  # same id: an earlier attempt of this run
    _write(out, _docs(3), mode="append", run_id="day1")
    assert not (out / ".newsflow-tmp-day1").exists()
    assert len(pd.read_parquet(out / "docs")) == 3


# ----------------------------------------------------------------------------- file and row-group sizes


def _big_docs(n: int, chars: int) -> list[dict]:
    return [dict(d, text=f"{i} " + "x" * chars) for i, d in enumerate(_docs(n))]


def test_a_partition_of_a_few_thousand_rows_is_one_file_with_zstd(tmp_path) -> None:
    docs = [dict(d, published_at=DAY) for d in _big_docs(3000, 2000)]
    _write(tmp_path / "out", docs)
    files = [f for f in _files(tmp_path / "out") if f.startswith("docs/")]
    assert files == ["docs/lang=fr/date=2024-07-04/part-00000-of-00001.parquet"]
    meta = pq.read_metadata(tmp_path / "out" / files[0])
    assert meta.num_rows == 3000 and meta.num_row_groups == 1
    assert meta.row_group(0).column(0).compression == "ZSTD"


def test_files_and_row_groups_are_bounded_by_size_too(tmp_path) -> None:
    docs = [dict(d, published_at=DAY) for d in _big_docs(40, 1000)]  # about 45 kB
    cfg = OutputConfig(max_file_mb=0.02, row_group_mb=0.004)  # rows of ~1.1 kB: 3 files, groups of 3 rows
    _write(tmp_path / "a", docs, cfg=cfg)
    _write(tmp_path / "b", list(reversed(docs)), cfg=cfg)
    files = [f for f in _files(tmp_path / "a") if f.startswith("docs/")]
    assert len(files) == 3 and all(f.endswith("-of-00003.parquet") for f in files)
    assert sum(pq.read_metadata(tmp_path / "a" / f).num_rows for f in files) == 40
    for f in files:
        meta = pq.read_metadata(tmp_path / "a" / f)
        assert meta.num_row_groups == math.ceil(meta.num_rows / 3)
        assert pq.read_table(tmp_path / "a" / f).equals(pq.read_table(tmp_path / "b" / f))


@pytest.mark.parametrize(
    ("compression", "level", "ok"),
    [("zstd", 9, True), ("gzip", 9, True), ("zstd", 23, False), ("snappy", 1, False), ("snappy", None, True)],
)
def test_compression_level_is_checked(compression, level, ok) -> None:
    cfg = OutputConfig(compression=compression, compression_level=level)
    if ok:
        cfg.validate()
    else:
        with pytest.raises(ConfigError, match="compression_level"):
            cfg.validate()


def test_the_index_is_one_file_per_month_and_still_read_by_date(tmp_path) -> None:
    from apache_beam.io.filesystems import FileSystems

    from newsflow.io.dedupe_index import index_patterns, read_index_rows
    from newsflow.io.index_codec import index_row
    from newsflow.io.tables import date_partition, register_table
    from newsflow.schema import INDEX_SCHEMA

    out = tmp_path / "out"
    docs = (
        _docs(3)
        + [dict(d, doc_id=f"{i + 10:032x}", published_at=DAY + (i + 2) * 86400) for i, d in enumerate(_docs(20))]
        + [dict(_docs(1)[0], doc_id="f" * 32, published_at=DAY - 120 * 86400)]
    )
    index = [index_row(d, date_partition(d["published_at"]), b"k" * 16, None) for d in docs]
    with TestPipeline() as p:
        tables = {
            "docs": p | "D" >> beam.Create(docs),
            "rejects": p | "R" >> beam.Create([]),
            "duplicates": p | "U" >> beam.Create([]),
            "index": p | "I" >> beam.Create(index),
        }
        _ = tables | WriteTables(
            str(out),
            OutputConfig(),
            read_count=p | "N" >> beam.Create([len(docs)]),
            extra_tables={"index": register_table("index", INDEX_SCHEMA)},
        )
    index_files = [f for f in _files(out) if f.startswith("index/")]
    assert index_files == [
        "index/month=2024-03/part-00000-of-00001.parquet",
        "index/month=2024-07/part-00000-of-00001.parquet",
    ]
    assert len([f for f in _files(out) if f.startswith("docs/")]) == 22  # docs keep one folder per day
    back = pd.read_parquet(out / "index")
    assert len(back) == 24 and set(back["month"].astype(str)) == {"2024-03", "2024-07"}
    july = out / index_files[1]
    rows = list(read_index_rows(str(july)))
    assert sorted({r["date"] for r in rows}) == ["2024-07-04"] + [f"2024-07-{d:02d}" for d in range(6, 26)]
    run_day = (pd.Timestamp("2024-07-25") - pd.Timestamp("1970-01-01")).days
    assert {r["date"] for r in read_index_rows(str(july), days=[run_day], window=5)} == {
        f"2024-07-{d:02d}" for d in range(20, 26)
    }
    for against in (out, out / "index"):  # an output folder or its index folder
        found = {m.path for pat in index_patterns(str(against)) for m in FileSystems.match([pat])[0].metadata_list}
        assert sorted(found) == [str(out / f) for f in index_files]


def test_run_stats_of_bundles_equal_the_stats_of_every_row() -> None:
    # _PartitionFn sends one accumulator per bundle; adding them must give what adding each row gives
    from newsflow.io.write_tables import _count_row, _RunStats

    rows = [("docs", f"lang={lang}/date=2024-07-0{d}", lang, 10 * d) for lang in "ab" for d in range(1, 4)]
    rows += [
        ("rejects", "", "empty_file", 7),
        ("rejects", "", "too_large", 9),
        ("docs", "lang=a/date=2024-07-01", "a", 1),
    ]
    fn = _RunStats()
    one_by_one = fn.create_accumulator()
    for row in rows:
        one_by_one = fn.add_input(one_by_one, row)
    one_by_one = fn.add_input(one_by_one, 12)
    for cut in (1, 4, len(rows)):
        bundles = []
        for start in range(0, len(rows), cut):
            acc = fn.create_accumulator()
            for row in rows[start : start + cut]:
                _count_row(acc, *row)
            bundles.append(acc)
        acc = fn.create_accumulator()
        for item in [*bundles, 12]:
            acc = fn.add_input(acc, item)
        assert fn.extract_output(acc) == fn.extract_output(one_by_one)
    out = fn.extract_output(one_by_one)
    assert out["read"] == 12 and out["tables"]["docs"]["rows"] == 7 and out["tables"]["rejects"]["rows"] == 2
    assert out["tables"]["docs"]["parts"]["lang=a/date=2024-07-01"] == [2, 11]
    assert out["tables"]["rejects"]["by"] == {"empty_file": 1, "too_large": 1}
