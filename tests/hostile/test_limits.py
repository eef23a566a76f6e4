"""Bounded resources: bombs, huge lines, member floods, odd and unsafe members, nothing extracted to disk.

Memory is measured in a child process (``_read_in_child``) started by a small driver that
reports ``getrusage(RUSAGE_CHILDREN).ru_maxrss``: the peak RSS of that read alone.  The
bombs are made from repeated compressed frames or a streamed deflate, so a bomb that
expands to 1 GiB costs about a megabyte on disk and never exists uncompressed.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import os
import pathlib
import struct
import subprocess
import sys
import tarfile
import zipfile
import zlib

import pytest
import zstandard

from newsflow.config import ReadConfig
from newsflow.core.parse import split_documents
from newsflow.io.sources import ReadFailure, SourceDoc, read_source
from newsflow.reasons import Reason

REPO = pathlib.Path(__file__).resolve().parents[2]
MiB = 1 << 20
GiB = 1 << 30
HEADER = b"2024-07-05 10:00:00\n"
RSS_BOUND_KIB = 400 * 1024  # generous: the reader holds one document (4 MiB) and a few read buffers
# Limits lifted so that a bomb is streamed to its end: what memory does when no limit stops it early.
NO_BOMB_LIMITS = {"max_expansion_ratio": 1e12, "max_member_bytes": 4 * GiB}
DOC = b"2024-07-05 10:00:00\nA body line.\n#tag\n1720170000\n"

_DRIVER = """
import json, os, resource, subprocess, sys
proc = subprocess.run([sys.executable, "-m", "tests.hostile._read_in_child", sys.argv[1]],
                      capture_output=True, text=True, env=dict(os.environ))
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr[-3000:], "children_kib": peak}))
"""


def read_in_child(jobs: list[tuple[str, str, dict]], cwd: pathlib.Path, tmp: pathlib.Path) -> tuple[list, int]:
    """Run reads one after the other in a fresh process with an empty cwd and TMPDIR.

    Returns each read's outcome counts and first items, and the child's peak RSS in KiB.
    """
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp)}
    proc = subprocess.run(
        [sys.executable, "-c", _DRIVER, json.dumps(jobs)], capture_output=True, text=True, cwd=cwd, env=env, check=True
    )
    outer = json.loads(proc.stdout)
    assert outer["rc"] == 0, outer["stderr"]
    result = json.loads(outer["stdout"])
    assert list(cwd.iterdir()) == [] and list(tmp.iterdir()) == []  # nothing was extracted or spilled to disk
    return result["results"], outer["children_kib"]


@pytest.fixture()
def sandbox(tmp_path) -> tuple[pathlib.Path, pathlib.Path]:
    cwd, tmp = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    tmp.mkdir()
    return cwd, tmp


def _gzip_bomb(total: int) -> bytes:
    """A header then one line of ``total`` bytes of ``a``: concatenated gzip members of 1 MiB each."""
    block = gzip.compress(b"a" * MiB, compresslevel=9, mtime=0)
    return gzip.compress(HEADER, mtime=0) + block * (total // MiB)


def _bz2_bomb(total: int) -> bytes:
    block = bz2.compress(b"a" * MiB, 9)
    return bz2.compress(HEADER) + block * (total // MiB)


def _zst_bomb(total: int) -> bytes:
    comp = zstandard.ZstdCompressor(level=19)
    return comp.compress(HEADER) + comp.compress(b"a" * MiB) * (total // MiB)


def _deflate_stream(total: int) -> tuple[bytes, int]:
    """Raw deflate of a header and ``total`` bytes of ``a``; returns (compressed, crc32 of the plain bytes).

    Each 1 MiB block ends with a full flush, which resets the compressor, so one compressed
    block repeated is a valid stream and 1 GiB is never compressed for real.
    """
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = b"a" * MiB
    head = comp.compress(HEADER) + comp.flush(zlib.Z_FULL_FLUSH)
    one = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    assert comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH) == one  # the repeat is byte-identical
    crc = zlib.crc32(HEADER)
    for _ in range(total // MiB):
        crc = zlib.crc32(block, crc)
    return head + one * (total // MiB) + comp.flush(), crc


def _zip_bomb(total: int, declared: int | None = None) -> bytes:
    """A zip with one deflated member ``m.txt`` expanding to ``total`` bytes (size as declared, or a lie)."""
    data, crc = _deflate_stream(total)
    size = len(HEADER) + total if declared is None else declared
    name = b"m.txt"
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(data), size, len(name), 0) + name
    central = (
        struct.pack(
            "<4s6H3L5H2L",
            b"PK\x01\x02",
            20,
            20,
            0,
            8,
            0,
            0,
            crc,
            len(data),
            size,
            len(name),
            0,
            0,
            0,
            0,
            0o100644 << 16,
            0,
        )
        + name
    )
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local) + len(data), 0)
    return local + data + central + end


def _tar_gz_bomb(total: int) -> bytes:
    """A .tar.gz whose one member ``inner/m.txt`` is ``total`` bytes (a header then ``a``)."""
    ti = tarfile.TarInfo("inner/m.txt")
    ti.size = total
    first = ti.tobuf(tarfile.USTAR_FORMAT) + HEADER + b"a" * (MiB - len(HEADER))
    return (
        gzip.compress(first, mtime=0)
        + gzip.compress(b"a" * MiB, 9, mtime=0) * (total // MiB - 1)
        + gzip.compress(b"\x00" * 1024, mtime=0)
    )


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, pathlib.Path]:
    """1 GiB bombs (plus the header) in every compression, a few MB on disk in all."""
    folder = tmp_path_factory.mktemp("bombs")
    made = {
        "bomb.txt.gz": _gzip_bomb(GiB),
        "bomb.txt.bz2": _bz2_bomb(GiB),
        "bomb.txt.zst": _zst_bomb(GiB),
        "bomb.zip": _zip_bomb(GiB),
        "liar.zip": _zip_bomb(GiB, declared=4096),
        "bomb.tar.gz": _tar_gz_bomb(GiB),
    }
    for name, data in made.items():
        (folder / name).write_bytes(data)
    return {name: folder / name for name in made}


def test_bomb_files_are_small_but_expand_to_a_gibibyte(bombs) -> None:
    for name in bombs:
        assert bombs[name].stat().st_size < 8 * MiB, name
    with gzip.GzipFile(bombs["bomb.txt.gz"]) as fh:
        assert fh.read(len(HEADER) + 10) == HEADER + b"a" * 10
    with zipfile.ZipFile(bombs["bomb.zip"]) as zf:
        assert zf.getinfo("m.txt").file_size == len(HEADER) + GiB
        with zf.open("m.txt") as fh:
            assert fh.read(len(HEADER) + 10) == HEADER + b"a" * 10


def test_bombs_are_stopped_by_default_with_bounded_memory(bombs, sandbox) -> None:
    names = ["bomb.txt.gz", "bomb.txt.bz2", "bomb.txt.zst", "bomb.zip", "bomb.tar.gz"]
    results, peak_kib = read_in_child([(str(bombs[n]), n, {}) for n in names], *sandbox)
    got = {n: [(it["source_path"], it["reason"]) for it in r["items"]] for n, r in zip(names, results, strict=True)}
    assert got == {
        "bomb.txt.gz": [("bomb.txt.gz", "decompression_bomb")],
        "bomb.txt.bz2": [("bomb.txt.bz2", "decompression_bomb")],
        "bomb.txt.zst": [("bomb.txt.zst", "decompression_bomb")],
        "bomb.zip": [("bomb.zip!m.txt", "decompression_bomb")],  # refused from its declared sizes
        # the member that was being read, then the rest of the archive
        "bomb.tar.gz": [("bomb.tar.gz!inner/m.txt", "decompression_bomb"), ("bomb.tar.gz", "decompression_bomb")],
    }
    assert peak_kib < RSS_BOUND_KIB


def test_gibibyte_lines_streamed_to_the_end_stay_bounded(bombs, sandbox) -> None:
    """Bomb limits lifted: 1 GiB lines are decompressed to the end, yet only one document is ever held."""
    jobs = [(str(bombs[n]), n, NO_BOMB_LIMITS) for n in ("bomb.txt.gz", "bomb.zip", "liar.zip")]
    jobs.append(("synthetic:314572800", "line.txt", {}))  # 300 MiB line, generated as it is read
    results, peak_kib = read_in_child(jobs, *sandbox)
    whole = {"reason": None, "doc_index": 0, "size": len(HEADER) + GiB, "kept_bytes": 4 * MiB}
    assert results[0]["items"] == [{**whole, "source_path": "bomb.txt.gz"}]
    assert results[1]["items"] == [{**whole, "source_path": "bomb.zip!m.txt"}]
    liar = results[2]["items"]  # declares 4 KiB: cut there, never decompressed further
    assert liar[-1]["reason"] in ("unreadable", "decompression_bomb") and all(i.get("size", 0) <= 4096 for i in liar)
    assert results[3]["items"] == [
        {
            "reason": None,
            "source_path": "line.txt",
            "doc_index": 0,
            "size": len(HEADER) + 300 * MiB,
            "kept_bytes": 4 * MiB,
        }
    ]
    assert peak_kib < RSS_BOUND_KIB


def test_a_huge_line_becomes_a_too_large_reject() -> None:
    from newsflow.config import ParseConfig
    from newsflow.transforms.split_header import split_raw_doc

    data = HEADER + b"x" * (8 * 1024) + b"\n" + DOC
    chunks = list(split_documents(io.BytesIO(data), max_doc_bytes=1024))
    assert [c.truncated for c in chunks] == [True, False]
    raw = {"source_path": "a.txt", "doc_index": 0, "data": chunks[0].data, "size": chunks[0].size}
    kind, row = split_raw_doc(raw, ParseConfig())
    assert (kind, row["reason"]) == ("reject", "too_large") and len(row["excerpt"]) <= 200


def test_the_tail_of_an_over_long_line_is_never_a_header() -> None:
    line = b"x" * 1025 + b"2024-07-05 10:00:00\n"  # the second readline(1025) returns exactly a header
    data = HEADER + line + b"body\n"
    chunks = list(split_documents(io.BytesIO(data), max_doc_bytes=1024))
    assert len(chunks) == 1 and chunks[0].truncated and chunks[0].size == len(data)


def _tar_many(n: int) -> bytes:
    out = io.BytesIO()
    for i in range(n):
        ti = tarfile.TarInfo(f"m/{i:07d}.txt")
        ti.size = len(DOC)
        out.write(ti.tobuf(tarfile.USTAR_FORMAT) + DOC + b"\x00" * (512 - len(DOC)))
    out.write(b"\x00" * 1024)
    return gzip.compress(out.getvalue(), compresslevel=1, mtime=0)


def test_a_flood_of_members_stops_at_the_limit(tmp_path, sandbox) -> None:
    """20,005 members against a limit of 20,000 (the default 100,000 works the same, five times slower)."""
    limit = 20_000
    path = tmp_path / "many.tar.gz"
    path.write_bytes(_tar_many(limit + 5))
    results, peak_kib = read_in_child([(str(path), "many.tar.gz", {"max_members": limit})], *sandbox)
    assert results[0]["counts"] == {"doc": limit, "too_many_members": 1}
    assert peak_kib < RSS_BOUND_KIB


def test_zip_member_flood_stops_at_the_limit() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(300):
            zf.writestr(f"m{i}.txt", DOC)
    items = list(read_source("many.zip", lambda: io.BytesIO(buf.getvalue()), ReadConfig(max_members=100)))
    assert sum(isinstance(x, SourceDoc) for x in items) == 100
    assert [(x.reason, x.source_path) for x in items if isinstance(x, ReadFailure)] == [
        (Reason.TOO_MANY_MEMBERS, "many.zip")
    ]


def _tar_with(entries: list[tuple[str, bytes, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name, kind, data in entries:
            ti = tarfile.TarInfo(name)
            ti.type = kind
            if kind == tarfile.REGTYPE:
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
            else:
                ti.linkname = "ok.txt"
                tf.addfile(ti)
    return buf.getvalue()


def _zip_with(entries: list[tuple[str, int, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, mode, data in entries:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            info.create_system = 3
            zf.writestr(info, data)
    return buf.getvalue()


def _outcomes(name: str, blob: bytes) -> list[tuple[str, str]]:
    return [
        (x.source_path, "doc" if isinstance(x, SourceDoc) else x.reason.value)
        for x in read_source(name, lambda: io.BytesIO(blob), ReadConfig())
    ]


def test_odd_tar_members_are_unsupported_and_the_rest_is_read() -> None:
    blob = _tar_with(
        [
            ("blk", tarfile.BLKTYPE, b""),
            ("fifo", tarfile.FIFOTYPE, b""),
            ("chr", tarfile.CHRTYPE, b""),
            ("ok.txt", tarfile.REGTYPE, DOC),
            ("sym", tarfile.SYMTYPE, b""),
            ("hard", tarfile.LNKTYPE, b""),
        ]
    )
    assert _outcomes("t.tar", blob) == [
        ("t.tar!blk", "unsupported_member"),
        ("t.tar!fifo", "unsupported_member"),
        ("t.tar!chr", "unsupported_member"),
        ("t.tar!ok.txt", "doc"),
        ("t.tar!sym", "unsupported_member"),
        ("t.tar!hard", "unsupported_member"),
    ]


def test_zip_symlink_and_device_members_are_unsupported() -> None:
    blob = _zip_with(
        [
            ("link.txt", 0o120777, b"../../etc/passwd"),
            ("dev", 0o020644, b""),
            ("fifo", 0o010644, b""),
            ("ok.txt", 0o100644, DOC),
            ("plain.txt", 0, DOC),
        ]
    )
    assert _outcomes("z.zip", blob) == [
        ("z.zip!link.txt", "unsupported_member"),
        ("z.zip!dev", "unsupported_member"),
        ("z.zip!fifo", "unsupported_member"),
        ("z.zip!ok.txt", "doc"),
        ("z.zip!plain.txt", "doc"),
    ]


NESTED = [
    "inner.tar",
    "inner.tar.gz",
    "inner.tgz",
    "inner.zip",
    "INNER.ZIP",
    "inner.tar.zst",
    "inner.tar.bz2",
    "inner.tar.xz",
]


@pytest.mark.parametrize("inner", NESTED)
def test_nested_archives_are_rejected_in_tar_and_zip(inner: str) -> None:
    assert _outcomes("o.tar", _tar_with([(inner, tarfile.REGTYPE, b"data"), ("ok.txt", tarfile.REGTYPE, DOC)])) == [
        (f"o.tar!{inner}", "nested_archive"),
        ("o.tar!ok.txt", "doc"),
    ]
    assert _outcomes("o.zip", _zip_with([(inner, 0o100644, b"data"), ("ok.txt", 0o100644, DOC)])) == [
        (f"o.zip!{inner}", "nested_archive"),
        ("o.zip!ok.txt", "doc"),
    ]


def test_compressed_members_are_read_not_treated_as_archives() -> None:
    blob = _tar_with(
        [("a.txt.gz", tarfile.REGTYPE, gzip.compress(DOC)), ("b.txt.bz2", tarfile.REGTYPE, bz2.compress(DOC))]
    )
    assert _outcomes("o.tar", blob) == [("o.tar!a.txt.gz", "doc"), ("o.tar!b.txt.bz2", "doc")]


UNSAFE = [
    "../x.txt",
    "/etc/x.txt",
    "a/../../x.txt",
    "..",
    "a/..",
    "C:/x.txt",
    "C:\\x.txt",
    "c:x.txt",
    "..\\..\\x.txt",
    "a\\..\\..\\x.txt",
    "\\\\server\\share\\x.txt",
    "//host/x.txt",
]


@pytest.mark.parametrize("bad", UNSAFE)
def test_unsafe_member_paths_in_tar_and_zip(bad: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    tar = _tar_with([(bad, tarfile.REGTYPE, DOC), ("ok.txt", tarfile.REGTYPE, DOC)])
    assert _outcomes("o.tar", tar) == [(f"o.tar!{bad}", "unsafe_path"), ("o.tar!ok.txt", "doc")]
    zipped = _zip_with([(bad, 0o100644, DOC), ("ok.txt", 0o100644, DOC)])
    got = _outcomes("o.zip", zipped)
    # zipfile itself turns "\\" into "/" on Windows only; the reader must refuse both spellings
    assert got[1] == ("o.zip!ok.txt", "doc") and got[0][1] == "unsafe_path" and len(got) == 2
    assert list(tmp_path.iterdir()) == []


def test_nul_in_a_member_name() -> None:
    """tar stores names NUL-terminated and zipfile cuts names at NUL: the part before is what is read."""
    zipped = _zip_with([("ok.txt\x00../../evil", 0o100644, DOC)])
    assert _outcomes("o.zip", zipped) == [("o.zip!ok.txt", "doc")]
    raw = bytearray(_tar_with([("ok.txt", tarfile.REGTYPE, DOC)]))
    raw[6:9] = b"\x00.."  # name field "ok.txt\0.." -> the name ends at the NUL
    raw[148:156] = b" " * 8
    raw[148:156] = b"%06o\x00 " % sum(raw[:512])  # the header checksum, recomputed
    assert _outcomes("o.tar", bytes(raw)) == [("o.tar!ok.txt", "doc")]
