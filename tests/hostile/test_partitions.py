"""Partition values from data and models can never make a path outside the output or a bad Hive folder."""

from __future__ import annotations

import json
import re

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from hypothesis import given, settings
from hypothesis import strategies as st

from newsflow.config import OutputConfig
from newsflow.io.tables import date_partition, lang_partition
from newsflow.io.write_tables import WriteTables
from newsflow.schema import make_doc

DAY = 19_908 * 86_400  # 2024-07-04
# What a safe Hive value looks like here: ASCII letters, digits, '-' and '_', nothing else.
SAFE_LANG = re.compile(r"[A-Za-z0-9_-]{1,32}")
SAFE_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

HOSTILE_LANGS = [
    "../../x",
    "/",
    "=",
    "a=b",
    "fr\x00",
    "\x00",
    "x" * 10_000,
    "",
    " ",
    "fr ",
    " fr",
    "fr/..",
    "..",
    ".",
    "fr\\..\\..",
    "\u0440\u0443",
    "fr\u200b",
    "\uff46\uff52",
    "\u0192r",
    "fr\u0301",
    "f\u0433",
    "en%2F..",
    "%2e%2e",
    "fr\n",
    "fr\r\n",
    "en\t",
    "en-US/../../x",
    "en-" + "a" * 40,
    "und/../docs",
    "C:",
    "fr:",
    "*",
    "?",
    "fr*",
    None,
    12,
    1.5,
    ["fr"],
    b"fr",
    "\ud800",
]


def _check_lang(value: object) -> None:
    got = lang_partition(value)
    assert isinstance(got, str) and SAFE_LANG.fullmatch(got), repr(got)
    assert got == value or got == "und"


@pytest.mark.parametrize("value", [v for v in HOSTILE_LANGS if v not in ("fr\n", "fr\r\n")])
def test_hostile_lang_values_become_safe(value: object) -> None:
    _check_lang(value)


def test_a_trailing_newline_is_not_a_language() -> None:
    assert lang_partition("fr\n") == "und"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=40), st.from_regex(r"[a-z]{2,3}([-_][A-Za-z0-9]{1,8}){0,3}", fullmatch=True)))
def test_any_text_gives_a_safe_lang(value: str) -> None:
    _check_lang(value)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.integers(), st.floats(allow_nan=True), st.text(max_size=20), st.none()))
def test_any_timestamp_gives_a_safe_date(value: object) -> None:
    got = date_partition(value)
    assert SAFE_DATE.fullmatch(got), repr(got)


def test_dates_at_and_beyond_the_edges() -> None:
    assert date_partition(-62135596800) == "0001-01-01"
    assert date_partition(253402300799) == "9999-12-31"
    assert date_partition(253402300800) == "0000-00-00"  # year 10000 does not fit: the invalid-date folder
    assert date_partition(-62135596801) == "0000-00-00"
    assert date_partition(float("nan")) == "0000-00-00" and date_partition(10**30) == "0000-00-00"


def test_hostile_langs_end_to_end_land_under_safe_partitions(tmp_path) -> None:
    """WriteTables with hostile lang values: every file is <out>/docs/lang=<safe>/date=<YYYY-MM-DD>/."""
    out = tmp_path / "out"
    langs = [v for v in HOSTILE_LANGS if isinstance(v, str) and v not in ("fr\n", "fr\r\n", "\ud800")]
    langs += ["fr", "pcm", "zh-Hant"]
    docs = [
        make_doc(
            doc_id=f"{i:032x}",
            source_path=f"f{i}.txt",
            doc_index=0,
            published_at=DAY + i * 86_400 * 40,
            text=f"text {i}",
            lang=lang,
            lang_score=0.5,
        )
        for i, lang in enumerate(langs)
    ]
    with TestPipeline() as p:
        tables = {
            "docs": p | "D" >> beam.Create(docs),
            "rejects": p | "R" >> beam.Create([]),
            "duplicates": p | "U" >> beam.Create([]),
        }
        _ = tables | WriteTables(
            str(out), OutputConfig(), read_count=p | "N" >> beam.Create([len(docs)]), run_id="hostile"
        )
    assert sorted(x.name for x in tmp_path.iterdir()) == ["out"]  # nothing beside the output folder
    files = [f for f in out.rglob("*") if f.is_file()]
    data = [f for f in files if f.suffix == ".parquet"]
    assert {f.name for f in files if f.suffix != ".parquet"} == {"_manifest.json"}
    rows = 0
    seen = set()
    for f in data:
        rel = f.relative_to(out).parts
        if rel[0] != "docs":
            continue
        assert len(rel) == 4, rel
        lang_dir, date_dir = rel[1], rel[2]
        assert lang_dir.startswith("lang=") and SAFE_LANG.fullmatch(lang_dir[5:]), lang_dir
        assert date_dir.startswith("date=") and SAFE_DATE.fullmatch(date_dir[5:]), date_dir
        assert f.resolve().is_relative_to(out.resolve())
        rows += pq.read_metadata(f).num_rows
        seen.add(lang_dir[5:])
    assert rows == len(docs)
    assert seen == {"und", "fr", "pcm", "zh-Hant"}


def _write_langs(out, langs: list[str]) -> dict:
    docs = [
        make_doc(doc_id=f"{i:032x}", source_path=f"f{i}.txt", doc_index=0, published_at=DAY, text=f"t{i}", lang=lang)
        for i, lang in enumerate(langs)
    ]
    with TestPipeline() as p:
        tables = {
            "docs": p | "D" >> beam.Create(docs),
            "rejects": p | "R" >> beam.Create([]),
            "duplicates": p | "U" >> beam.Create([]),
        }
        _ = tables | WriteTables(str(out), OutputConfig(), read_count=p | "N" >> beam.Create([len(docs)]), run_id="m")
    return json.loads((out / "_manifest.json").read_text())


def test_manifest_counts_languages_as_partitioned(tmp_path) -> None:
    manifest = _write_langs(tmp_path / "out", ["../../x", "fr", "a=b"])
    assert manifest["counts"]["kept_by_lang"] == {"fr": 1, "und": 2}
