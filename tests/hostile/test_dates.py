"""Dates far outside reason: the header year range, trailers of odd lengths, trailers before headers.

Policy (docs/robustness.md): a header year outside ``parse.min_year..max_year`` (1800..2200)
is ``implausible_date``; a header that cannot exist (month 13) is ``bad_timestamp``; a
header in the future but inside the range is kept; a trailer is 9 to 11 ASCII digits and
is kept as written, even years before the header, because it is the collector's own clock.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from newsflow.config import ParseConfig
from newsflow.core.parse import ParseError, parse_document
from newsflow.io.tables import date_partition
from newsflow.reasons import Reason
from newsflow.schema import DOCS_SCHEMA, make_doc, rows_to_table

EPOCH = dt.datetime(1970, 1, 1)


def _doc(header: str, trailer: str | None = None, body: str = "A body line.") -> bytes:
    return (f"{header}\n{body}\n" + (f"{trailer}\n" if trailer is not None else "")).encode()


def _seconds(*args: int) -> int:
    return int((dt.datetime(*args) - EPOCH).total_seconds())


@pytest.mark.parametrize(
    "header",
    ["0001-01-01 00:00:00", "1799-12-31 23:59:59", "2201-01-01 00:00:00", "9999-12-31 23:59:59", "0000-01-01 00:00:00"],
)
def test_years_outside_the_range_are_implausible(header: str) -> None:
    with pytest.raises(ParseError) as e:
        parse_document(_doc(header))
    # year 0 does not exist at all: that is an impossible time, not an implausible one
    assert e.value.reason is (Reason.BAD_TIMESTAMP if header.startswith("0000") else Reason.IMPLAUSIBLE_DATE)


@pytest.mark.parametrize(
    ("header", "when"), [("1800-01-01 00:00:00", (1800, 1, 1)), ("2200-12-31 23:59:59", (2200, 12, 31, 23, 59, 59))]
)
def test_range_edges_are_kept_and_partitioned(header: str, when: tuple) -> None:
    parsed = parse_document(_doc(header))
    assert parsed.published_at == _seconds(*when)
    assert date_partition(parsed.published_at) == header[:10]


def test_the_range_is_a_setting() -> None:
    cfg = ParseConfig(min_year=1, max_year=9999)
    cfg.validate()
    got = parse_document(_doc("0001-01-01 00:00:00"), min_year=cfg.min_year, max_year=cfg.max_year)
    assert got.published_at == _seconds(1, 1, 1) and date_partition(got.published_at) == "0001-01-01"
    got = parse_document(_doc("9999-12-31 23:59:59"), min_year=cfg.min_year, max_year=cfg.max_year)
    assert date_partition(got.published_at) == "9999-12-31"


@pytest.mark.parametrize(
    "header",
    [
        "2024-13-01 00:00:00",
        "2024-02-30 00:00:00",
        "2023-02-29 12:00:00",
        "2024-07-05 24:00:00",
        "2024-07-05 23:60:00",
        "2024-07-05 23:59:60",
    ],
)
def test_impossible_times_are_bad_timestamps(header: str) -> None:
    with pytest.raises(ParseError) as e:
        parse_document(_doc(header))
    assert e.value.reason is Reason.BAD_TIMESTAMP


def test_a_header_in_the_future_is_kept() -> None:
    """A header decades ahead but inside the year range is kept as written (see docs/robustness.md)."""
    parsed = parse_document(_doc("2199-01-01 00:00:00", "1720111917"))
    assert parsed.published_at == _seconds(2199, 1, 1) and parsed.collected_at == 1720111917


def test_a_trailer_years_before_the_header_is_kept_as_written() -> None:
    parsed = parse_document(_doc("2024-07-05 10:00:00", "946684800"))  # collected in 2000
    assert parsed.collected_at == 946_684_800 and parsed.published_at == _seconds(2024, 7, 5, 10)
    assert parsed.text == "A body line."


@pytest.mark.parametrize(
    ("trailer", "collected"),
    [
        ("172011191", 172_011_191),  # 9 digits: 1975
        ("1720111917", 1_720_111_917),  # 10 digits: 2024
        ("17201119170", 17_201_119_170),  # 11 digits: year 2515, still a trailer by the format
        ("000000000", 0),
    ],
)
def test_trailers_of_nine_to_eleven_digits(trailer: str, collected: int) -> None:
    parsed = parse_document(_doc("2024-07-05 10:00:00", trailer))
    assert parsed.collected_at == collected and parsed.text == "A body line."


@pytest.mark.parametrize("line", ["17201119", "172011191700", "-1720111917", "1720111917.5", "1 720 111 917"])
def test_other_numbers_stay_in_the_body(line: str) -> None:
    parsed = parse_document(_doc("2024-07-05 10:00:00", line))
    assert parsed.collected_at is None and parsed.text.endswith(line)


def test_extreme_times_fit_the_parquet_columns() -> None:
    """The widest header range and the largest trailer are representable in the docs table."""
    rows = [
        make_doc(
            doc_id="a",
            source_path="p",
            doc_index=0,
            published_at=_seconds(1, 1, 1),
            collected_at=99_999_999_999,
            text="t",
        ),
        make_doc(
            doc_id="b",
            source_path="p",
            doc_index=1,
            published_at=_seconds(9999, 12, 31, 23, 59, 59),
            collected_at=0,
            text="t",
        ),
    ]
    table = rows_to_table(rows, DOCS_SCHEMA)
    assert table.column("published_at").type == pa.timestamp("ms")
    assert table.column("published_at").to_pylist()[0] == dt.datetime(1, 1, 1)
    assert table.column("collected_at").to_pylist()[0].year == 5138


def test_only_ascii_digits_make_a_header_or_a_trailer() -> None:
    arabic_header = "٢٠٢٤-٠٧-٠٥ ١٠:٠٠:٠٠"
    with pytest.raises(ParseError) as e:
        parse_document(f"{arabic_header}\nbody\n".encode())
    assert e.value.reason is Reason.NO_HEADER
    parsed = parse_document("2024-07-05 10:00:00\nbody\n١٧٢٠١١١٩١٧\n".encode())
    assert parsed.collected_at is None
