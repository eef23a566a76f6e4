"""Open dump files of every supported kind and yield their documents or failures.

Plain Python (no Beam): ``read_source`` is what ``ReadDump``'s DoFn calls for each
matched file.  It handles per-file compression (``.gz``, ``.bz2``, ``.zst``, ``.xz``)
and archives (``.tar`` with any of those, ``.tgz``, ``.zip``), read member by member
from the stream: nothing is ever extracted to disk.  Every failure becomes a
:class:`ReadFailure` with a reason code, and documents read before a fault are kept.
"""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import io
import lzma
import posixpath
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import IO

import zstandard

from newsflow.config import ReadConfig
from newsflow.core.parse import DocumentChunk, split_documents
from newsflow.reasons import Reason

__all__ = ["ReadFailure", "SourceDoc", "container_kind", "member_path_is_safe", "read_source"]

_BOMB_CHECK_AFTER = 64 * 1024 * 1024  # expansion ratio is checked once this much was produced
_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst", ".zip")
_COMPRESSION_SUFFIXES = {".gz": "gz", ".gzip": "gz", ".bz2": "bz2", ".zst": "zst", ".zstd": "zst", ".xz": "xz"}


@dataclasses.dataclass(frozen=True)
class SourceDoc:
    """A document read from ``source_path`` (``file`` or ``archive!member``)."""

    source_path: str
    chunk: DocumentChunk


@dataclasses.dataclass(frozen=True)
class ReadFailure:
    """A file, member or tail of one that could not be read.

    ``doc_index`` is None when nothing of it was read, else the index of the first
    document that was lost.
    """

    source_path: str
    doc_index: int | None
    reason: Reason
    detail: str
    excerpt: str = ""


class _Bomb(Exception):
    pass


class _LimitedReader(io.RawIOBase):
    """Counts what a decompressor produces and stops a decompression bomb."""

    def __init__(self, inner: IO[bytes], counted_in: _CountingReader | None, max_bytes: int, max_ratio: float):
        self._inner = inner
        # read1 returns what one decompression step gives: a fault then loses no earlier data
        self._read = getattr(inner, "read1", inner.read)
        self._in = counted_in
        self._max_bytes = max_bytes
        self._max_ratio = max_ratio
        self.produced = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._read(len(b))
        n = len(data)
        b[:n] = data
        self.produced += n
        if self.produced > self._max_bytes:
            raise _Bomb(f"expands past {self._max_bytes} bytes")
        if self._in is not None and self.produced > _BOMB_CHECK_AFTER:
            ratio = self.produced / max(1, self._in.consumed)
            if ratio > self._max_ratio:
                raise _Bomb(f"expansion ratio {ratio:.0f} exceeds {self._max_ratio:.0f}")
        return n


class _CountingReader(io.RawIOBase):
    """Counts compressed bytes consumed from the underlying file."""

    def __init__(self, inner: IO[bytes]):
        self._inner = inner
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(b))
        n = len(data)
        b[:n] = data
        self.consumed += n
        return n


def container_kind(name: str) -> tuple[str, str | None]:
    """Return (``"tar"``/``"zip"``/``"file"``, compression or None) from a file name."""
    low = name.lower()
    if low.endswith(".zip"):
        return "zip", None
    for suffix, comp in ((".tar", None), (".tgz", "gz"), (".tbz2", "bz2"), (".txz", "xz")):
        if low.endswith(suffix):
            return "tar", comp
    for suffix, comp in _COMPRESSION_SUFFIXES.items():
        if low.endswith(suffix):
            return ("tar" if low[: -len(suffix)].endswith(".tar") else "file"), comp
    return "file", None


def _is_archive_name(name: str) -> bool:
    return name.lower().endswith(_ARCHIVE_SUFFIXES)


def member_path_is_safe(name: str) -> bool:
    """False for member paths that are absolute or climb out of the archive (``..``)."""
    if not name or "\x00" in name:
        return False
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return False
    return ".." not in posixpath.normpath(norm).split("/") and ".." not in norm.split("/")


def _decompress(raw: IO[bytes], comp: str | None, cfg: ReadConfig) -> IO[bytes]:
    if comp is None:
        limited = _LimitedReader(raw, None, cfg.max_member_bytes, float("inf"))
        return io.BufferedReader(limited, buffer_size=cfg.read_block_bytes)
    counted = _CountingReader(raw)
    src = io.BufferedReader(counted, buffer_size=256 * 1024)
    inner: IO[bytes]
    if comp == "gz":
        inner = gzip.GzipFile(fileobj=src, mode="rb")  # noqa: SIM115 - closed with the stream
    elif comp == "bz2":
        inner = bz2.BZ2File(src, mode="rb")  # noqa: SIM115 - closed with the stream
    elif comp == "xz":
        inner = lzma.LZMAFile(src, mode="rb")  # noqa: SIM115 - closed with the stream
    elif comp == "zst":
        import zstandard

        inner = zstandard.ZstdDecompressor().stream_reader(src, read_across_frames=True)
    else:  # pragma: no cover - container_kind only returns the above
        raise ValueError(comp)
    limited = _LimitedReader(inner, counted, cfg.max_member_bytes, cfg.max_expansion_ratio)
    return io.BufferedReader(limited, buffer_size=cfg.read_block_bytes)


_READ_ERRORS = (
    EOFError,
    OSError,
    zlib.error,
    lzma.LZMAError,
    ValueError,
    tarfile.TarError,
    zipfile.BadZipFile,
    zstandard.ZstdError,
)


def _read_stream(source_path: str, stream: IO[bytes], cfg: ReadConfig) -> Iterator[SourceDoc | ReadFailure]:
    """Documents of one stream; a fault ends it with a failure naming the first lost document."""
    next_index = 0
    try:
        for chunk in split_documents(stream, cfg.max_doc_bytes):
            next_index = chunk.doc_index + 1
            yield SourceDoc(source_path, chunk)
    except _Bomb as e:
        yield ReadFailure(source_path, next_index or None, Reason.DECOMPRESSION_BOMB, str(e))
        return
    except _READ_ERRORS as e:
        yield ReadFailure(source_path, next_index or None, Reason.UNREADABLE, f"{type(e).__name__}: {e}")
        return
    if next_index == 0:
        yield ReadFailure(source_path, None, Reason.EMPTY_FILE, "no document in it (empty or only whitespace)")


def _read_tar(rel: str, raw: IO[bytes], comp: str | None, cfg: ReadConfig) -> Iterator[SourceDoc | ReadFailure]:
    stream = _decompress(raw, comp, cfg)
    members = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tf:
            for member in tf:
                name = member.name
                path = f"{rel}!{name}"
                if member.isdir():
                    continue
                members += 1
                if members > cfg.max_members:
                    yield ReadFailure(
                        rel,
                        None,
                        Reason.TOO_MANY_MEMBERS,
                        f"archive has more than {cfg.max_members} members; the rest were not read",
                    )
                    return
                if not member_path_is_safe(name):
                    yield ReadFailure(path, None, Reason.UNSAFE_PATH, "member path is absolute or climbs out (..)")
                    continue
                if not member.isfile():
                    kind = "symlink" if member.issym() else "hardlink" if member.islnk() else "special file"
                    yield ReadFailure(path, None, Reason.UNSUPPORTED_MEMBER, f"{kind} members are not read")
                    continue
                if _is_archive_name(name):
                    yield ReadFailure(path, None, Reason.NESTED_ARCHIVE, "archives inside archives are not read")
                    continue
                fh = tf.extractfile(member)
                if fh is None:  # pragma: no cover - isfile() members always have data
                    continue
                _, mcomp = container_kind(name)
                yield from _read_stream(path, _decompress(fh, mcomp, cfg), cfg)
                tf.members = []  # stream mode keeps every TarInfo otherwise: memory would grow per member
    except _Bomb as e:
        yield ReadFailure(rel, None, Reason.DECOMPRESSION_BOMB, str(e))
    except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError, zstandard.ZstdError) as e:
        reason = Reason.CORRUPT_ARCHIVE if members == 0 else Reason.UNREADABLE
        yield ReadFailure(rel, None, reason, f"{type(e).__name__}: {e} (after {members} members)")
        return
    if members == 0:
        yield ReadFailure(rel, None, Reason.EMPTY_FILE, "archive holds no file")


def _zip_member_kind(info: zipfile.ZipInfo) -> str | None:
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "symlink"
    kind = stat.S_IFMT(mode)
    if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
        return "special file"
    return None


def _read_zip(rel: str, raw: IO[bytes], cfg: ReadConfig) -> Iterator[SourceDoc | ReadFailure]:
    try:
        zf = zipfile.ZipFile(raw)
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        yield ReadFailure(rel, None, Reason.CORRUPT_ARCHIVE, f"{type(e).__name__}: {e}")
        return
    files = [i for i in infos if not i.is_dir()]
    if not files:
        yield ReadFailure(rel, None, Reason.EMPTY_FILE, "archive holds no file")
        return
    for n, info in enumerate(files):
        if n >= cfg.max_members:
            yield ReadFailure(
                rel,
                None,
                Reason.TOO_MANY_MEMBERS,
                f"archive has {len(files)} members, over the limit of {cfg.max_members}",
            )
            return
        name = info.filename
        path = f"{rel}!{name}"
        if not member_path_is_safe(name):
            yield ReadFailure(path, None, Reason.UNSAFE_PATH, "member path is absolute or climbs out (..)")
            continue
        odd = _zip_member_kind(info)
        if odd:
            yield ReadFailure(path, None, Reason.UNSUPPORTED_MEMBER, f"{odd} members are not read")
            continue
        if _is_archive_name(name):
            yield ReadFailure(path, None, Reason.NESTED_ARCHIVE, "archives inside archives are not read")
            continue
        if info.file_size > cfg.max_member_bytes or (
            info.file_size > _BOMB_CHECK_AFTER and info.file_size / max(1, info.compress_size) > cfg.max_expansion_ratio
        ):
            yield ReadFailure(
                path,
                None,
                Reason.DECOMPRESSION_BOMB,
                f"declares {info.file_size} bytes from {info.compress_size} compressed",
            )
            continue
        try:
            fh = zf.open(info)
        except (RuntimeError, NotImplementedError, zipfile.BadZipFile, OSError, ValueError) as e:
            yield ReadFailure(path, None, Reason.UNREADABLE, f"{type(e).__name__}: {e}")
            continue
        with fh:
            counted = _CountingReader(fh)
            limited = _LimitedReader(counted, None, min(cfg.max_member_bytes, info.file_size + 1), float("inf"))
            stream = io.BufferedReader(limited, buffer_size=cfg.read_block_bytes)
            _, mcomp = container_kind(name)
            if mcomp is not None:
                stream = _decompress(stream, mcomp, cfg)
            yield from _read_stream(path, stream, cfg)


def read_source(
    rel: str, opener: Callable[[], IO[bytes]], cfg: ReadConfig | None = None
) -> Iterator[SourceDoc | ReadFailure]:
    """Yield every document (or failure) of one dump file.

    Args:
      rel: the file's path relative to its input root; used in ``source_path``.
      opener: returns the file's raw (still compressed) bytes as a readable stream.
      cfg: read limits.
    """
    cfg = cfg or ReadConfig()
    kind, comp = container_kind(rel)
    try:
        raw = opener()
    except (OSError, ValueError) as e:
        yield ReadFailure(rel, None, Reason.UNREADABLE, f"cannot open: {type(e).__name__}: {e}")
        return
    with raw:
        if kind == "zip":
            yield from _read_zip(rel, raw, cfg)
        elif kind == "tar":
            yield from _read_tar(rel, raw, comp, cfg)
        else:
            try:
                stream = _decompress(raw, comp, cfg)
            except _READ_ERRORS as e:
                yield ReadFailure(rel, None, Reason.UNREADABLE, f"{type(e).__name__}: {e}")
                return
            yield from _read_stream(rel, stream, cfg)
