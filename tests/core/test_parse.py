"""Pure tests of document splitting and parsing: the golden seed and every case real dumps contain."""

from __future__ import annotations

import datetime as dt
import io

import pytest

from newsflow.core.parse import (
    ParseError,
    decode_text,
    make_doc_id,
    make_excerpt,
    parse_document,
    split_documents,
)
from newsflow.reasons import Reason

HEADER = "2024-07-04 18:03:53"


def _ts(seconds: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(seconds=seconds)


def _split(data: bytes, limit: int = 4 * 1024 * 1024):
    return list(split_documents(io.BytesIO(data), limit))


def test_seed_parses_exactly(seed_bytes: bytes) -> None:
    chunks = _split(seed_bytes)
    assert [c.doc_index for c in chunks] == [0]
    assert chunks[0].data == seed_bytes and chunks[0].size == 2619
    doc = parse_document(chunks[0].data)
    assert _ts(doc.published_at) == dt.datetime(2024, 7, 4, 18, 3, 53)
    assert doc.collected_at == 1720111917
    assert dt.datetime.fromtimestamp(doc.collected_at, dt.timezone.utc) == dt.datetime(
        2024, 7, 4, 16, 51, 57, tzinfo=dt.timezone.utc
    )
    lines = doc.text.split("\n")
    assert len(lines) == 11
    assert lines[0].startswith("Les délégations")
    assert len(doc.hashtags_raw) == 11
    assert doc.hashtags_raw[0] == "#quoi" and doc.hashtags_raw[-1] == "#ÉtatsUnis"
    assert doc.invalid_bytes == 0 and doc.published_at_utc is None


def test_timezone_fills_utc_time(seed_bytes: bytes) -> None:
    doc = parse_document(seed_bytes, timezone="Europe/Paris")
    # 18:03:53 in Paris (UTC+2 in July) is 16:03:53 UTC, 48 minutes before the trailer.
    assert doc.published_at_utc == int(dt.datetime(2024, 7, 4, 16, 3, 53, tzinfo=dt.timezone.utc).timestamp())
    assert doc.collected_at - doc.published_at_utc == 48 * 60 + 4


def test_crlf_bom_blank_and_trailing_spaces(seed_bytes: bytes) -> None:
    clean = parse_document(seed_bytes)
    text = seed_bytes.decode("utf-8")
    lines = text.split("\n")
    noisy_lines = [lines[0] + "  ", "", *[ln + " \t" for ln in lines[1:6]], "   ", *lines[6:]]
    noisy = ("\ufeff" + "\r\n".join(noisy_lines) + "\r\n\r\n").encode("utf-8")
    chunks = _split(noisy)
    assert len(chunks) == 1
    doc = parse_document(chunks[0].data)
    assert doc.text == clean.text
    assert doc.hashtags_raw == clean.hashtags_raw
    assert doc.published_at == clean.published_at and doc.collected_at == clean.collected_at


def test_many_documents_back_to_back(seed_bytes: bytes) -> None:
    other = b"2024-07-05 10:00:00\nSecond article body.\n#tag\n"
    third = b"2024-07-06 11:00:00\nThird article, no trailer, no tags."
    chunks = _split(seed_bytes + b"\n" + other + third)
    assert [c.doc_index for c in chunks] == [0, 1, 2]
    assert parse_document(chunks[1].data).text == "Second article body."
    assert parse_document(chunks[1].data).hashtags_raw == ["#tag"]
    last = parse_document(chunks[2].data)
    assert last.collected_at is None and last.hashtags_raw == []


def test_text_before_first_header_is_its_own_document() -> None:
    chunks = _split(b"\n\nstray line\n2024-07-05 10:00:00\nbody\n")
    assert [c.doc_index for c in chunks] == [0, 1]
    with pytest.raises(ParseError) as err:
        parse_document(chunks[0].data)
    assert err.value.reason is Reason.NO_HEADER
    assert parse_document(chunks[1].data).text == "body"


def test_leading_blank_lines_are_not_a_document() -> None:
    chunks = _split(b"\n  \n2024-07-05 10:00:00\nbody\n")
    assert [c.doc_index for c in chunks] == [0]


def test_empty_and_whitespace_streams_yield_nothing() -> None:
    assert _split(b"") == []
    assert _split(b"\n \r\n\t\n") == []


def test_oversized_document_is_cut_but_sized(seed_bytes: bytes) -> None:
    big = b"2024-07-05 10:00:00\n" + b"x" * 5000 + b"\n" + b"y" * 5000 + b"\n"
    chunks = _split(big + seed_bytes, limit=3000)
    assert [c.doc_index for c in chunks] == [0, 1]
    assert chunks[0].truncated and len(chunks[0].data) == 3000 and chunks[0].size == len(big)
    assert not chunks[1].truncated and chunks[1].data == seed_bytes


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"2024-13-45 25:61:00\nbody\n", Reason.BAD_TIMESTAMP),
        (b"2023-02-29 10:00:00\nbody\n", Reason.BAD_TIMESTAMP),
        (b"0001-01-01 00:00:00\nbody\n", Reason.IMPLAUSIBLE_DATE),
        (b"9999-12-31 23:59:59\nbody\n", Reason.IMPLAUSIBLE_DATE),
        (b"Just text\nwith no header\n", Reason.NO_HEADER),
        (b"2024-07-05 10:00:00\n", Reason.EMPTY_BODY),
        (b"2024-07-05 10:00:00\n#only #tags\n1720111917", Reason.EMPTY_BODY),
        (b"2024-07-05 10:00:00\n1720111917\n", Reason.EMPTY_BODY),
        (b"", Reason.EMPTY_BODY),
        (b"2024-07-05 10:00:00\n\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + bytes(range(256)) * 4, Reason.BINARY),
    ],
)
def test_reject_reasons(data: bytes, reason: Reason) -> None:
    with pytest.raises(ParseError) as err:
        parse_document(data)
    assert err.value.reason is reason
    assert err.value.detail


def test_invalid_utf8_is_replaced_counted_and_kept(seed_bytes: bytes) -> None:
    # Latin-1 byte for 'é' in the body, as in mojibake sources.
    pos = seed_bytes.index("délégations".encode())
    data = seed_bytes[: pos + 1] + b"\xe9" + seed_bytes[pos + 3 :]
    doc = parse_document(data)
    assert doc.invalid_bytes == 1
    assert doc.text.startswith("Les d\ufffdl")


def test_genuine_replacement_characters_are_not_counted() -> None:
    text, bad = decode_text("a\ufffdb".encode() + b"\xff")
    assert text == "a\ufffdb\ufffd" and bad == 1


def test_unicode_line_separators_stay_inside_a_paragraph() -> None:
    doc = parse_document("2024-07-05 10:00:00\nfirst\u2028still first\nsecond\n".encode())
    assert doc.text.split("\n") == ["first\u2028still first", "second"]


def test_body_line_with_some_hashtags_is_body() -> None:
    doc = parse_document(b"2024-07-05 10:00:00\nbody\n#MeToo grows online\n")
    assert doc.hashtags_raw == [] and doc.text.endswith("#MeToo grows online")


def test_doc_id_is_stable_and_distinguishes_place_and_content() -> None:
    a = make_doc_id("f.txt", 0, b"x")
    assert a == make_doc_id("f.txt", 0, b"x") and len(a) == 32
    assert len({a, make_doc_id("f.txt", 1, b"x"), make_doc_id("g.txt", 0, b"x"), make_doc_id("f.txt", 0, b"y")}) == 4


def test_excerpt_is_short_and_printable() -> None:
    ex = make_excerpt(b"2024-07-05 10:00:00\r\nline \x00one\n\nline two\n" + b"z" * 1000)
    assert ex.startswith("2024-07-05 10:00:00 | line \ufffdone | line two")
    assert len(ex) <= 200 and "\x00" not in ex
