"""Property tests: arbitrary and mutated bytes never escape the reader and parser, and nothing is lost.

For any input, ``split_documents`` cuts the stream into documents whose sizes add up to
the input (minus a BOM and blank lines before the first header), every document either
parses or raises :class:`ParseError` with a :class:`Reason`, and ``read_source`` yields
documents and reason-coded failures that cover the input, whatever the container.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import shutil
import tarfile
import tempfile
import zipfile

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from newsflow.config import ParseConfig, ReadConfig
from newsflow.core.parse import ParsedDocument, ParseError, parse_document, split_documents
from newsflow.io.read_dump import ReadDump
from newsflow.io.sources import ReadFailure, SourceDoc, read_source
from newsflow.reasons import Reason
from newsflow.transforms.split_header import SplitHeader, split_raw_doc
from tests.hostile._corpus import masakhane_documents

BOM = b"\xef\xbb\xbf"
# A header as the format defines it, written independently of the parser: ASCII digits,
# optional BOM, trailing ASCII whitespace, at most 64 bytes.
_HEADER = re.compile(rb"(?:\xef\xbb\xbf)?[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}[ \t\r\n\x0b\x0c]*")
_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Lines that look like the format, mixed with noise, so that documents and edge cases are frequent.
_LINES = st.one_of(
    st.sampled_from(
        [
            b"2024-07-04 18:03:53",
            b"\xef\xbb\xbf2024-07-05 10:00:00",
            b"2024-13-40 25:61:61",
            b"0001-01-01 00:00:00",
            b"9999-12-31 23:59:59",
            b"2024-07-04 18:03:53   ",
            b"#a #b",
            b"#",
            b"1720111917",
            b"17201119170",
            b"172011191",
            b"",
            b"   ",
            b"\r",
            b"\x00\x01\x02",
            b"\xff\xfe",
            b"text \xe2\x80\xa8 more",
        ]
    ),
    st.binary(max_size=80),
    st.text(max_size=60).map(lambda s: s.encode("utf-8", "surrogatepass")),
)
_DOCUMENT_BYTES = st.lists(_LINES, max_size=25).flatmap(
    lambda lines: st.sampled_from([b"\n", b"\r\n"]).map(lambda nl: nl.join(lines))
)
_ANY_BYTES = st.one_of(st.binary(max_size=600), _DOCUMENT_BYTES)


def _kept_stream(data: bytes, max_doc_bytes: int) -> bytes:
    """What split_documents keeps of a stream: without the BOM and the blank pieces before any text."""
    stream = io.BytesIO(data)
    first = stream.readline(max_doc_bytes + 1)
    if first.startswith(BOM):
        first = first[3:]
    piece = first
    while piece and not piece.strip():
        piece = stream.readline(max_doc_bytes + 1)
    return piece + stream.read()


def _outcome(chunk, cfg: ParseConfig | None = None) -> str:
    """``doc`` or the reason value: the only two things a document may become."""
    cfg = cfg or ParseConfig()
    if chunk.truncated:
        return Reason.TOO_LARGE.value
    try:
        parsed = parse_document(
            chunk.data,
            timezone=cfg.timezone,
            min_year=cfg.min_year,
            max_year=cfg.max_year,
            max_control_ratio=cfg.max_control_ratio,
        )
    except ParseError as e:
        assert isinstance(e.reason, Reason), e
        return e.reason.value
    assert isinstance(parsed, ParsedDocument)
    return "doc"


def _check_split(data: bytes, max_doc_bytes: int) -> list:
    chunks = list(split_documents(io.BytesIO(data), max_doc_bytes))
    kept = _kept_stream(data, max_doc_bytes)
    assert [c.doc_index for c in chunks] == list(range(len(chunks)))
    assert sum(c.size for c in chunks) == len(kept)  # every byte is in exactly one document
    offset = 0
    for c in chunks:
        whole = kept[offset : offset + c.size]
        offset += c.size
        assert whole.startswith(c.data)  # a document's data is its own bytes, cut only when too large
        assert (len(c.data) == c.size) != c.truncated
        assert len(c.data) <= max(max_doc_bytes, 65)  # 65: a header line is always kept whole
    assert bool(chunks) == bool(kept)
    for c in chunks:
        _outcome(c)
    return chunks


@_SETTINGS
@given(data=_ANY_BYTES, max_doc_bytes=st.sampled_from([64, 100, 1024, 4 * 1024 * 1024]))
@example(data=BOM + b"\n\n2024-07-04 18:03:53\nbody\n", max_doc_bytes=1024)
@example(data=b"x" * 300 + b"\n2024-07-04 18:03:53\nbody", max_doc_bytes=64)
def test_split_documents_accounts_for_every_byte(data: bytes, max_doc_bytes: int) -> None:
    _check_split(data, max_doc_bytes)


@_SETTINGS
@given(data=_ANY_BYTES)
def test_one_document_per_header_line(data: bytes) -> None:
    chunks = list(split_documents(io.BytesIO(data)))
    kept = _kept_stream(data, 4 * 1024 * 1024)
    lines = [ln for ln in re.split(rb"(?<=\n)", kept) if ln]
    headers = sum(1 for ln in lines if len(ln) <= 64 and _HEADER.fullmatch(ln))
    headerless_prefix = 1 if lines and not (len(lines[0]) <= 64 and _HEADER.fullmatch(lines[0])) else 0
    assert len(chunks) == headers + headerless_prefix


def _mutations(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    """Real documents, concatenated, then cut, spliced with noise, with bytes flipped or lines dropped."""

    def mutate(draw_data: tuple[list[bytes], int, int, bytes, int, str]) -> bytes:
        docs, cut, pos, noise, flip, how = draw_data
        data = b"".join(docs)
        if not data:
            return noise
        cut %= len(data) + 1
        pos %= len(data) + 1
        if how == "truncate":
            return data[:cut]
        if how == "splice":
            return data[:pos] + noise + data[pos:]
        if how == "flip":
            return data[:pos] + bytes([flip]) + data[pos + 1 :]
        if how == "drop_line":
            lines = data.split(b"\n")
            del lines[cut % len(lines)]
            return b"\n".join(lines)
        if how == "crlf":
            return data.replace(b"\n", b"\r\n")
        return data[pos:] + data[:pos]  # rotate: the stream starts mid-document

    return st.tuples(
        st.lists(st.sampled_from(seeds), min_size=1, max_size=4),
        st.integers(0, 1 << 20),
        st.integers(0, 1 << 20),
        st.binary(max_size=40),
        st.integers(0, 255),
        st.sampled_from(["truncate", "splice", "flip", "drop_line", "crlf", "rotate"]),
    ).map(mutate)


@pytest.fixture(scope="module")
def real_docs(shared_dir, seed_bytes) -> list[bytes]:
    return [seed_bytes, *masakhane_documents(shared_dir)]


def test_real_documents_parse(real_docs) -> None:
    """The unmutated documents are good ones: mutation tests start from documents that parse."""
    for doc in real_docs:
        chunks = list(split_documents(io.BytesIO(doc)))
        assert len(chunks) == 1 and _outcome(chunks[0]) == "doc"


def test_mutated_real_documents_never_escape(real_docs) -> None:
    @_SETTINGS
    @given(data=_mutations(real_docs))
    def check(data: bytes) -> None:
        chunks = _check_split(data, 4 * 1024 * 1024)
        outcomes = [_outcome(c) for c in chunks]
        assert all(o == "doc" or o in {r.value for r in Reason} for o in outcomes)

    check()


def _wrap(kind: str, data: bytes) -> tuple[str, bytes]:
    if kind == "txt":
        return "f.txt", data
    if kind == "gz":
        return "f.txt.gz", gzip.compress(data, mtime=0)
    if kind == "tar.gz":
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tf:
            ti = tarfile.TarInfo("d/m.txt")
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        return "f.tar.gz", buf.getvalue()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("d/m.txt", data)
    return "f.zip", buf.getvalue()


_MEMBER = {"txt": "f.txt", "gz": "f.txt.gz", "tar.gz": "f.tar.gz!d/m.txt", "zip": "f.zip!d/m.txt"}


@_SETTINGS
@given(data=_ANY_BYTES, kind=st.sampled_from(["txt", "gz", "tar.gz", "zip"]))
def test_read_source_yields_what_the_splitter_finds(data: bytes, kind: str) -> None:
    name, blob = _wrap(kind, data)
    items = list(read_source(name, lambda: io.BytesIO(blob), ReadConfig()))
    expected = list(split_documents(io.BytesIO(data)))
    docs = [x for x in items if isinstance(x, SourceDoc)]
    fails = [x for x in items if isinstance(x, ReadFailure)]
    assert len(docs) + len(fails) == len(items)
    assert [(d.source_path, d.chunk) for d in docs] == [(_MEMBER[kind], c) for c in expected]
    if expected:
        assert fails == []
    else:
        assert [(f.source_path, f.reason) for f in fails] == [(_MEMBER[kind], Reason.EMPTY_FILE)]


@_SETTINGS
@given(
    blob=st.binary(max_size=2000),
    kind=st.sampled_from(["f.txt.gz", "f.tar.gz", "f.tar", "f.zip", "f.txt.bz2", "f.txt.xz", "f.tgz"]),
)
@example(blob=b"PK\x05\x06" + b"\x00" * 18, kind="f.zip")
@example(blob=b"\x1f\x8b\x08\x00" + b"\x00" * 6, kind="f.txt.gz")
def test_garbage_containers_become_failures_not_exceptions(blob: bytes, kind: str) -> None:
    items = list(read_source(kind, lambda: io.BytesIO(blob), ReadConfig()))
    assert items  # every input, even an empty archive, yields at least one row
    for it in items:
        assert isinstance(it, (SourceDoc, ReadFailure))
        if isinstance(it, ReadFailure):
            assert isinstance(it.reason, Reason) and it.detail


def _zip_with(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "blob"),
    [
        ("c.txt.zst", b"\x00not zstd"),
        ("c.tar.zst", b"\x00not zstd"),
        ("c.zip", _zip_with("m.txt.zst", b"not zstd")),
    ],
    ids=["txt.zst", "tar.zst", "zst-member"],
)
def test_corrupt_zstd_is_a_failure_not_an_exception(name: str, blob: bytes) -> None:
    items = list(read_source(name, lambda: io.BytesIO(blob), ReadConfig()))
    assert [f.reason for f in items] in ([Reason.UNREADABLE], [Reason.CORRUPT_ARCHIVE])


def _empty_tar(mode: str, with_dir: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        if with_dir:
            ti = tarfile.TarInfo("only-a-folder")
            ti.type = tarfile.DIRTYPE
            tf.addfile(ti)
    return buf.getvalue()


def _empty_zip() -> bytes:
    buf = io.BytesIO()
    zipfile.ZipFile(buf, "w").close()
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "blob"),
    [
        ("e.tar.gz", _empty_tar("w:gz")),
        ("e.tar", _empty_tar("w", with_dir=True)),
        ("e.zip", _empty_zip()),
    ],
    ids=["tar.gz", "tar-only-folders", "zip"],
)
def test_empty_archives_are_accounted_for(name: str, blob: bytes) -> None:
    items = list(read_source(name, lambda: io.BytesIO(blob), ReadConfig()))
    assert [(f.source_path, f.reason) for f in items] == [(name, Reason.EMPTY_FILE)]


@_SETTINGS
@given(data=st.binary(max_size=3000), cut=st.integers(0, 3000), kind=st.sampled_from(["gz", "tar.gz", "zip"]))
def test_truncated_containers_keep_what_was_read(data: bytes, cut: int, kind: str) -> None:
    """A container cut anywhere: documents before the cut are yielded whole, the rest is one failure."""
    name, blob = _wrap(kind, data)
    items = list(read_source(name, lambda: io.BytesIO(blob[:cut]), ReadConfig()))
    expected = {c.doc_index: c for c in split_documents(io.BytesIO(data))}
    assert items
    for it in items:
        if isinstance(it, SourceDoc):
            assert it.chunk == expected[it.chunk.doc_index]  # never a torn document
        else:
            assert isinstance(it.reason, Reason)


@_SETTINGS
@given(data=_ANY_BYTES)
def test_split_raw_doc_never_raises(data: bytes) -> None:
    for c in split_documents(io.BytesIO(data), 256):
        kind, row = split_raw_doc(
            {"source_path": "p", "doc_index": c.doc_index, "data": c.data, "size": c.size}, ParseConfig()
        )
        assert kind in ("doc", "reject")
        assert kind == "doc" or row["reason"] in {r.value for r in Reason}


def _pure_expectation(folder: str) -> list[tuple[str, int | None]]:
    """(source_path, doc_index) of everything a run over the folder must account for."""
    out: list[tuple[str, int | None]] = []
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as fh:
            chunks = list(split_documents(fh))
        out += [(name, c.doc_index) for c in chunks] or [(name, None)]
    return out


_FILES = st.lists(_ANY_BYTES, min_size=1, max_size=12)


@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=_FILES)
def test_beam_read_and_split_account_for_every_document(files: list[bytes]) -> None:
    """ReadDump -> SplitHeader: docs + rejects name exactly the documents the pure splitter finds."""
    folder = tempfile.mkdtemp(prefix="nf-hostile-")
    try:
        for i, data in enumerate(files):
            with open(os.path.join(folder, f"f{i:02d}.txt"), "wb") as fh:
                fh.write(data)
        expected = _pure_expectation(folder)
        with TestPipeline() as p:
            read = p | ReadDump(folder + "/")
            parsed = read.docs | SplitHeader()
            everything = (parsed.docs, parsed.rejects, read.rejects) | beam.Flatten()
            keys = everything | beam.Map(lambda r: (r["source_path"], r["doc_index"]))
            assert_that(keys, equal_to(expected))
    finally:
        shutil.rmtree(folder)
