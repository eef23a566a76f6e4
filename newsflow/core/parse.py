"""Pure parsing of the dump format: split a byte stream into documents, parse one document.

No Beam here: these functions are what ``ReadDump`` and ``SplitHeader`` wrap, and they
are tested directly.  The format (header, body, optional hashtag line, optional
trailer) is described in FORMAT.md of the dump producer and in the README::

    2024-07-04 18:03:53        <- header: local publication time, no zone
    Les délégations ...        <- body: one paragraph per line
    #quoi #aton ...            <- hashtag line (optional)
    1720111917                 <- trailer: Unix seconds UTC (optional)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from typing import IO, Any

from newsflow.reasons import Reason

__all__ = [
    "DocumentChunk",
    "ParseError",
    "ParsedDocument",
    "decode_text",
    "make_doc_id",
    "make_excerpt",
    "parse_document",
    "split_documents",
]

HEADER_RE = re.compile(rb"^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$")
_HEADER_STR_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$", re.ASCII)
TRAILER_RE = re.compile(r"^\d{9,11}$", re.ASCII)
BOM = b"\xef\xbb\xbf"
_MAX_HEADER_LINE = 64  # a header line is 19 bytes; longer lines are never headers
_EXCERPT_CHARS = 200
_EPOCH = dt.datetime(1970, 1, 1)
# Control characters that do not belong in text (tab, LF, CR, FF and VT are fine).
_CONTROL_RE = re.compile("[\x00-\x08\x0e-\x1f\x7f]")


@dataclasses.dataclass(frozen=True)
class DocumentChunk:
    """One document cut out of a stream.

    ``data`` holds at most ``max_doc_bytes`` bytes; ``size`` is the full size, so
    ``size > len(data)`` means the document was too large and was not kept whole.
    """

    doc_index: int
    data: bytes
    size: int

    @property
    def truncated(self) -> bool:
        return self.size > len(self.data)


def _is_header_line(line: bytes) -> bool:
    if len(line) > _MAX_HEADER_LINE:
        return False
    if line.startswith(BOM):
        line = line[3:]
    return HEADER_RE.match(line.rstrip()) is not None


def split_documents(stream: IO[bytes], max_doc_bytes: int = 4 * 1024 * 1024) -> Iterator[DocumentChunk]:
    """Yield the documents of a binary stream, one per header line, without reading it whole.

    A document starts at a line that is a header (``YYYY-MM-DD HH:MM:SS``, trailing
    spaces and a BOM allowed) and runs to the next one.  Non-blank text before the
    first header is yielded as a document of its own (it has no header).  A document
    is yielded only once its end is seen (next header or end of stream), so an error
    raised by the stream while reading never yields a torn document.  Memory is bounded
    by ``max_doc_bytes`` plus one read, whatever the line lengths.
    """
    index = 0
    parts: list[bytes] = []
    kept = 0  # bytes in parts
    size = 0  # full size of the current document
    started = False  # the current document has a header
    first = True
    pending_blank = True  # nothing but whitespace so far in a headerless prefix
    at_line_start = True  # the previous read ended a line (a cut long line goes on)
    while True:
        line = stream.readline(max_doc_bytes + 1)
        if not line:
            break
        if first:
            if line.startswith(BOM):
                line = line[3:]
            first = False
        line_start, at_line_start = at_line_start, line.endswith(b"\n")
        if line_start and _is_header_line(line):
            if started or not pending_blank:
                yield DocumentChunk(index, b"".join(parts), size)
                index += 1
            parts, kept, size, started, pending_blank = [line], len(line), len(line), True, False
            continue
        size += len(line)
        if not started and pending_blank and not line.strip():
            parts, kept, size = [], 0, 0  # blank lines before the first header are not a document
            continue
        pending_blank = False
        room = max_doc_bytes - kept
        if room > 0:
            piece = line[:room]
            parts.append(piece)
            kept += len(piece)
    if started or not pending_blank:
        yield DocumentChunk(index, b"".join(parts), size)


def decode_text(data: bytes) -> tuple[str, int]:
    """Decode UTF-8 (BOM stripped), replacing bad bytes; return the text and how many were replaced."""
    if data.startswith(BOM):
        data = data[3:]
    try:
        return data.decode("utf-8"), 0
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        genuine = data.count("\ufffd".encode())
        return text, text.count("\ufffd") - genuine


def make_doc_id(source_path: str, doc_index: int, data: bytes) -> str:
    """Stable 128-bit id: the same document at the same place gets the same id on every run and runner."""
    h = hashlib.blake2b(digest_size=16)
    h.update(source_path.encode("utf-8", "surrogatepass"))
    h.update(b"\x00")
    h.update(str(doc_index).encode("ascii"))
    h.update(b"\x00")
    h.update(data)
    return h.hexdigest()


def make_excerpt(data: bytes | str, limit: int = _EXCERPT_CHARS) -> str:
    """A short printable excerpt of a document for the rejects table."""
    text = decode_text(data[: limit * 4])[0] if isinstance(data, bytes) else data[: limit * 4]
    text = _CONTROL_RE.sub("\ufffd", text.replace("\r", ""))
    text = " | ".join(line.strip() for line in text.split("\n") if line.strip())
    return text[:limit]


class ParseError(Exception):
    """A document that cannot become a record; carries its reject reason."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclasses.dataclass(frozen=True)
class ParsedDocument:
    """The fields SplitHeader takes from one document."""

    published_at: int  # seconds since 1970-01-01 of the naive header time
    published_at_utc: int | None
    collected_at: int | None
    text: str
    hashtags_raw: list[str]
    invalid_bytes: int

    def as_fields(self) -> dict[str, Any]:
        """The fields as a dict (shallow: ``dataclasses.asdict`` deep-copies and is slow here)."""
        return {
            "published_at": self.published_at,
            "published_at_utc": self.published_at_utc,
            "collected_at": self.collected_at,
            "text": self.text,
            "hashtags_raw": self.hashtags_raw,
            "invalid_bytes": self.invalid_bytes,
        }


def _parse_header(line: str, min_year: int, max_year: int) -> dt.datetime:
    m = _HEADER_STR_RE.match(line)
    if m is None:
        raise ParseError(Reason.NO_HEADER, f"first line is not a YYYY-MM-DD HH:MM:SS header: {line[:40]!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups())
    try:
        when = dt.datetime(year, month, day, hour, minute, second)
    except ValueError as e:
        raise ParseError(Reason.BAD_TIMESTAMP, f"impossible header time {line!r}: {e}") from e
    if not min_year <= year <= max_year:
        raise ParseError(Reason.IMPLAUSIBLE_DATE, f"header year {year} outside {min_year}..{max_year}")
    return when


def _to_utc_seconds(when: dt.datetime, timezone: str | None) -> int | None:
    if timezone is None:
        return None
    import zoneinfo

    aware = when.replace(tzinfo=zoneinfo.ZoneInfo(timezone))
    return int(aware.timestamp())


def _is_hashtag_line(line: str) -> bool:
    tokens = line.split()
    return bool(tokens) and all(len(t) > 1 and t[0] in "#\uff03" for t in tokens)


def parse_document(
    data: bytes,
    *,
    timezone: str | None = None,
    min_year: int = 1800,
    max_year: int = 2200,
    max_control_ratio: float = 0.10,
) -> ParsedDocument:
    """Parse one document's bytes; raise :class:`ParseError` with a reason when it cannot be kept.

    Lines are split on LF only (CR and trailing whitespace are dropped, blank lines
    skipped), so Unicode line separators inside a paragraph stay in it.
    """
    text, invalid = decode_text(data)
    lines = [ln.rstrip() for ln in text.split("\n")]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise ParseError(Reason.EMPTY_BODY, "document has no text")
    when = _parse_header(lines[0].lstrip("\ufeff"), min_year, max_year)
    rest = lines[1:]
    collected = None
    if rest and TRAILER_RE.match(rest[-1].strip()):
        collected = int(rest[-1].strip())
        rest = rest[:-1]
    tags: list[str] = []
    if rest and _is_hashtag_line(rest[-1]):
        tags = rest[-1].split()
        rest = rest[:-1]
    if not rest:
        raise ParseError(Reason.EMPTY_BODY, "header without body text")
    body = "\n".join(rest)
    chars = len(body)
    bad = len(_CONTROL_RE.findall(body)) + body.count("\ufffd")
    if chars and bad / chars > max_control_ratio:
        raise ParseError(Reason.BINARY, f"{bad} of {chars} body characters are control or undecodable bytes")
    published = int((when - _EPOCH).total_seconds())
    return ParsedDocument(
        published_at=published,
        published_at_utc=_to_utc_seconds(when, timezone),
        collected_at=collected,
        text=body,
        hashtags_raw=tags,
        invalid_bytes=invalid,
    )
