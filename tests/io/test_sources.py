"""Pure tests of file and archive reading: compression, archives, unsafe members, faults, limits."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
import zipfile

import pytest
import zstandard

from newsflow.config import ReadConfig
from newsflow.io.sources import ReadFailure, SourceDoc, container_kind, member_path_is_safe, read_source
from newsflow.reasons import Reason

DOC_B = b"2024-07-05 10:00:00\nSecond article.\n#b\n1720170000\n"


def _read(name: str, data: bytes, cfg: ReadConfig | None = None) -> list[SourceDoc | ReadFailure]:
    return list(read_source(name, lambda: io.BytesIO(data), cfg))


def _summary(items: list[SourceDoc | ReadFailure]) -> list[tuple]:
    out = []
    for it in items:
        if isinstance(it, SourceDoc):
            out.append(("doc", it.source_path, it.chunk.doc_index))
        else:
            out.append((it.reason.value, it.source_path, it.doc_index))
    return out


def _tar(entries: list[tuple[str, bytes]], mode: str = "w:gz", kind: bytes = tarfile.REGTYPE) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in entries:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "compress"),
    [
        ("a.txt", lambda d: d),
        ("a.txt.gz", lambda d: gzip.compress(d)),
        ("a.txt.bz2", bz2.compress),
        ("a.txt.zst", lambda d: zstandard.ZstdCompressor().compress(d)),
        ("a.txt.xz", lzma.compress),
    ],
)
def test_single_file_compressions(name: str, compress, seed_bytes: bytes) -> None:
    items = _read(name, compress(seed_bytes + b"\n" + DOC_B))
    assert _summary(items) == [("doc", name, 0), ("doc", name, 1)]
    assert items[0].chunk.data.rstrip(b"\n") == seed_bytes


def test_concatenated_gzip_members_are_read(seed_bytes: bytes) -> None:
    data = gzip.compress(seed_bytes + b"\n") + gzip.compress(DOC_B)
    assert [x.chunk.doc_index for x in _read("a.gz", data)] == [0, 1]


@pytest.mark.parametrize(
    ("name", "mode"), [("b.tar", "w"), ("b.tar.gz", "w:gz"), ("b.tgz", "w:gz"), ("b.tar.bz2", "w:bz2")]
)
def test_tar_members_are_read_one_by_one(name: str, mode: str, seed_bytes: bytes) -> None:
    data = _tar([("2024/07/x.txt", seed_bytes), ("2024/07/y.txt", DOC_B + DOC_B)], mode)
    assert _summary(_read(name, data)) == [
        ("doc", f"{name}!2024/07/x.txt", 0),
        ("doc", f"{name}!2024/07/y.txt", 0),
        ("doc", f"{name}!2024/07/y.txt", 1),
    ]


def test_zip_members_and_compressed_member(seed_bytes: bytes) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("d/x.txt", seed_bytes)
        zf.writestr("d/y.txt.gz", gzip.compress(DOC_B))
        zf.writestr("d/", b"")
    assert _summary(_read("c.zip", buf.getvalue())) == [("doc", "c.zip!d/x.txt", 0), ("doc", "c.zip!d/y.txt.gz", 0)]


@pytest.mark.parametrize("bad", ["../../x.txt", "/etc/passwd", "a/../../x.txt", "C:/x.txt", "..\\..\\x.txt"])
def test_unsafe_members_are_rejected_not_extracted(bad: str, seed_bytes: bytes, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = _tar([("ok.txt", seed_bytes), (bad, DOC_B)])
    expected = [("doc", "t.tar.gz!ok.txt", 0), ("unsafe_path", f"t.tar.gz!{bad}", None)]
    assert _summary(_read("t.tar.gz", data)) == expected
    assert list(tmp_path.iterdir()) == []  # nothing was written anywhere


def test_member_path_safety() -> None:
    assert member_path_is_safe("a/b/c.txt") and member_path_is_safe("a/..b/c.txt")
    assert not member_path_is_safe("../x") and not member_path_is_safe("/x") and not member_path_is_safe("")


def test_symlink_hardlink_and_nested_archive_members(seed_bytes: bytes) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, kind in [("s", tarfile.SYMTYPE), ("h", tarfile.LNKTYPE), ("dev", tarfile.CHRTYPE)]:
            ti = tarfile.TarInfo(name)
            ti.type = kind
            ti.linkname = "ok.txt"
            tf.addfile(ti)
        ti = tarfile.TarInfo("inner.tar.gz")
        ti.size = 10
        tf.addfile(ti, io.BytesIO(b"0123456789"))
    assert [r for r, _, _ in _summary(_read("t.tar", buf.getvalue()))] == [
        "unsupported_member",
        "unsupported_member",
        "unsupported_member",
        "nested_archive",
    ]


def test_truncated_gzip_keeps_documents_read_before_the_fault(seed_bytes: bytes) -> None:
    many = b"\n".join([seed_bytes] * 50)
    gz = gzip.compress(many)
    items = _read("big.txt.gz", gz[: len(gz) * 3 // 4])
    docs = [x for x in items if isinstance(x, SourceDoc)]
    fails = [x for x in items if isinstance(x, ReadFailure)]
    assert 10 < len(docs) < 50
    assert len(fails) == 1 and fails[0].reason is Reason.UNREADABLE
    assert fails[0].doc_index == len(docs)  # the first document that was lost
    assert all(d.chunk.data.rstrip(b"\n") == seed_bytes for d in docs)  # no torn document


def test_truncated_single_document_gzip_is_one_file_reject(seed_bytes: bytes) -> None:
    gz = gzip.compress(seed_bytes)
    assert _summary(_read("a.txt.gz", gz[: len(gz) // 2])) == [("unreadable", "a.txt.gz", None)]


def test_empty_and_blank_files() -> None:
    assert _summary(_read("e.txt", b"")) == [("empty_file", "e.txt", None)]
    assert _summary(_read("e.txt", b"\n  \n")) == [("empty_file", "e.txt", None)]
    assert _summary(_read("e.txt.gz", gzip.compress(b""))) == [("empty_file", "e.txt.gz", None)]


def test_corrupt_archives() -> None:
    assert _summary(_read("x.zip", b"PK\x03\x04 not a zip")) == [("corrupt_archive", "x.zip", None)]
    assert _summary(_read("x.tar.gz", gzip.compress(b"not a tar" * 100)))[0][0] == "corrupt_archive"


def test_too_many_members_stops_reading(seed_bytes: bytes) -> None:
    data = _tar([(f"m{i}.txt", seed_bytes) for i in range(5)])
    got = _summary(_read("t.tgz", data, ReadConfig(max_members=3)))
    assert got[:3] == [("doc", f"t.tgz!m{i}.txt", 0) for i in range(3)]
    assert got[3] == ("too_many_members", "t.tgz", None) and len(got) == 4


def test_decompression_bomb_is_stopped_with_bounded_memory() -> None:
    bomb = gzip.compress(b"2024-07-05 10:00:00\n" + b"a" * (80 * 1024 * 1024))  # ~80 KiB -> 80 MiB
    cfg = ReadConfig(max_doc_bytes=1024 * 1024, max_expansion_ratio=100)
    got = _summary(_read("bomb.txt.gz", bomb, cfg))
    assert got == [("decompression_bomb", "bomb.txt.gz", None)]


def test_member_size_cap_applies_to_plain_files() -> None:
    data = b"2024-07-05 10:00:00\n" + b"b\n" * 3000
    cfg = ReadConfig(max_doc_bytes=1024, max_member_bytes=4096)
    assert _summary(_read("p.txt", data, cfg)) == [("decompression_bomb", "p.txt", None)]


def test_container_kind() -> None:
    assert container_kind("a/b.TXT") == ("file", None)
    assert container_kind("a.txt.gz") == ("file", "gz")
    assert container_kind("a.tar.gz") == ("tar", "gz")
    assert container_kind("a.tgz") == ("tar", "gz")
    assert container_kind("a.tar.zst") == ("tar", "zst")
    assert container_kind("a.zip") == ("zip", None)


def test_opener_failure_is_a_reject() -> None:
    def boom():
        raise OSError("permission denied")

    got = list(read_source("locked.txt", boom))
    assert _summary(got) == [("unreadable", "locked.txt", None)]
