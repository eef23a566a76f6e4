"""ReadDump: file patterns in, one raw document per element out (plus file-level rejects).

::

    read = pipeline | ReadDump(["dumps/day1/", "gs://bucket/day2/*.tar.gz"])
    read.docs     # RawDoc dicts: source_path, doc_index, data, size
    read.rejects  # Reject dicts for files/members that could not be read
    read.counts   # one int per file read: its documents and rejects (sum = documents read)

Patterns may be folders (read recursively), globs or single files, on any Beam
filesystem.  ``source_path`` is relative to the pattern's root (its folder); with
several patterns whose roots differ it is relative to the roots' common parent folder
(``a/000.txt``, ``b/000.txt``), so every document names exactly one input file.  A file
matched by several patterns is read once, with a warning.  Matched files are grouped by
path (a shuffle, so that large inputs spread over workers); each file is streamed (never
read whole) by :func:`newsflow.io.sources.read_source`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from newsflow.config import ReadConfig
from newsflow.io.sources import ReadFailure, read_source
from newsflow.memory import start_releasing
from newsflow.metrics import counter, reject_counter
from newsflow.progress import ProgressReporter
from newsflow.schema import make_reject

__all__ = ["ReadDump", "ReadResult", "common_root", "expand_pattern", "plan_sources", "relative_path", "source_roots"]

_LOGGER = logging.getLogger(__name__)
_GLOB_RE = re.compile(r"[*?\[]")
_EXCERPT_BYTES = 4096


class ReadResult(NamedTuple):
    """What ReadDump yields: raw documents, file-level rejects and per-file counts of both."""

    docs: beam.PCollection
    rejects: beam.PCollection
    counts: beam.PCollection


def _is_dir(path: str) -> bool:
    """True for a local folder, or a remote prefix that is not itself a file."""
    if "://" not in path:
        return os.path.isdir(path)
    if path.endswith("/"):
        return True
    try:
        res = FileSystems.match([path])[0].metadata_list
    except Exception:  # noqa: BLE001 - an unmatchable path is treated as a prefix
        return True
    return not any(m.path == path for m in res)


def expand_pattern(pattern: str) -> tuple[str, str]:
    """Return (root, glob) for a folder, glob or file; ``root`` is what source paths are relative to."""
    if _GLOB_RE.search(pattern):
        prefix = pattern[: _GLOB_RE.search(pattern).start()]
        root = prefix[: prefix.rfind("/") + 1] if "/" in prefix else ""
        return root, pattern
    if _is_dir(pattern):
        root = pattern if pattern.endswith("/") else pattern + "/"
        return root, root + "**"
    slash = pattern.rfind("/")
    return (pattern[: slash + 1] if slash >= 0 else ""), pattern


def relative_path(root: str, path: str) -> str:
    """``path`` relative to ``root`` (absolute when it is not under it)."""
    if root and path.startswith(root):
        return path[len(root) :]
    if root and "://" not in path:
        a, b = os.path.abspath(root), os.path.abspath(path)
        if b.startswith(a.rstrip("/") + "/"):
            return b[len(a.rstrip("/")) + 1 :]
    return path


def common_root(roots: Sequence[str]) -> str:
    """The deepest folder holding every one of ``roots`` (``""`` when they share none).

    Local roots are compared as absolute paths, remote ones (``gs://...``) as strings.
    """
    if not roots:
        return ""
    if _one_folder(roots):
        return roots[0]
    if all("://" not in r for r in roots):
        common = os.path.commonpath([os.path.abspath(r or ".") for r in roots])
        return common.rstrip("/") + "/"
    if all("://" in r for r in roots):
        prefix = os.path.commonprefix(list(roots))
        scheme_end = prefix.find("://")
        if scheme_end >= 0 and roots[0][:scheme_end] == prefix[:scheme_end]:
            return prefix[: prefix.rfind("/") + 1]
    return ""  # local and remote inputs together: source paths stay whole


def source_roots(patterns: Sequence[str], roots: Sequence[str] | None = None) -> list[str]:
    """The folder each pattern's source paths are relative to.

    One root (one pattern, or several under the same folder): the pattern's own root,
    as it always was.  Several different roots: their common parent folder, so that
    ``a/000.txt`` and ``b/000.txt`` stay two source paths.  ``roots`` are the patterns'
    own roots when already known (see :func:`expand_pattern`).
    """
    own = list(roots) if roots is not None else [expand_pattern(p)[0] for p in patterns]
    if _one_folder(own):
        return own
    return [common_root(own)] * len(own)


def _one_folder(roots: Sequence[str]) -> bool:
    return len({_file_key(r or ".") for r in roots}) <= 1


def _is_relative_local(path: str) -> bool:
    return "://" not in path and not os.path.isabs(path)


def _file_key(path: str) -> str:
    """One key per file whatever the spelling of its path (``./a/x`` and ``a/x`` locally)."""
    return os.path.abspath(path) if "://" not in path else path


def plan_sources(
    patterns: Sequence[str], matched: Sequence[Sequence[str]], roots: Sequence[str] | None = None
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(path, source_path) of every distinct file the patterns matched, and (path, pattern) of repeats.

    ``matched[i]`` are the paths pattern ``i`` matched, ``roots`` the patterns' own roots
    (computed when None).  A file matched again (the same pattern twice, a file inside a
    folder also given) is listed once, at its first match.
    """
    own = list(roots) if roots is not None else [expand_pattern(p)[0] for p in patterns]
    used = source_roots(patterns, own)
    whole = not _one_folder(own) and used[0] == ""  # local and remote inputs: no common folder
    seen: set[str] = set()
    files: list[tuple[str, str]] = []
    repeats: list[tuple[str, str]] = []
    for pattern, root, paths in zip(patterns, used, matched, strict=True):
        for path in sorted(paths):
            key = _file_key(path)
            if key in seen:
                repeats.append((path, pattern))
                continue
            seen.add(key)
            rel = relative_path(root, path)
            if whole and _is_relative_local(rel):
                rel = os.path.abspath(path)  # a whole path names the file
            files.append((path, rel))
    return files, repeats


class _MatchFn(beam.DoFn):
    """Every pattern -> (full path, source path) for every distinct file they match."""

    def __init__(self, patterns: Sequence[str]):
        self._patterns = list(patterns)

    def process(self, _start: Any) -> Iterator[tuple[str, str]]:
        roots, matched = [], []
        for pattern in self._patterns:
            root, glob = expand_pattern(pattern)
            paths = [m.path for m in FileSystems.match([glob])[0].metadata_list]
            if not paths:
                raise FileNotFoundError(f"input {pattern!r} matches no file")
            roots.append(root)
            matched.append(paths)
        files, repeats = plan_sources(self._patterns, matched, roots)
        for path, pattern in repeats:
            _LOGGER.warning("input file %s is matched again by %r: read once", path, pattern)
        if repeats:
            counter("files_matched_again").inc(len(repeats))
        counter("files_matched").inc(len(files))
        yield from files


class _ReadFileFn(beam.DoFn):
    """Streams files into RawDocs; unreadable parts go to ``rejects``, one count per file to ``counts``."""

    def __init__(self, config: ReadConfig, progress_interval: float | None = None):
        self._cfg = config
        self._progress_interval = progress_interval
        self._progress: ProgressReporter | None = None

    def setup(self) -> None:
        start_releasing()
        if self._progress_interval:
            self._progress = ProgressReporter(self._progress_interval)

    def process(self, item: tuple[str, Iterable[str]]) -> Iterator[Any]:
        path, rels = item  # one source path per file: _MatchFn lists every file once
        for rel in rels:
            yield from self._read(rel, path)

    def _read(self, rel: str, path: str) -> Iterator[Any]:
        def opener():  # noqa: ANN202 - a raw binary stream
            return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)

        docs = nbytes = failures = 0
        progress = self._progress
        try:
            for got in read_source(rel, opener, self._cfg):
                if isinstance(got, ReadFailure):
                    reject_counter(got.reason.value).inc()
                    failures += 1
                    yield beam.pvalue.TaggedOutput(
                        "rejects",
                        make_reject(got.source_path, got.doc_index, got.reason, got.detail, got.excerpt),
                    )
                    continue
                chunk = got.chunk
                docs += 1
                nbytes += chunk.size
                if progress is not None:
                    progress.add(1, chunk.size)
                data = chunk.data if not chunk.truncated else chunk.data[:_EXCERPT_BYTES]
                yield {"source_path": got.source_path, "doc_index": chunk.doc_index, "data": data, "size": chunk.size}
        finally:  # counted once per file, not per document
            if docs:
                counter("docs_read").inc(docs)
                counter("bytes_read").inc(nbytes)
            if failures:
                counter("read_failures").inc(failures)
        yield beam.pvalue.TaggedOutput("counts", docs + failures)


class ReadDump(beam.PTransform):
    """Read news dumps from file patterns into raw documents and file-level rejects.

    Args:
      patterns: one pattern or several (folders are read recursively).
      config: read limits (document size, archive members, decompression bombs).
      progress_interval: print a progress line on stderr every this many seconds (None: never).
    """

    def __init__(
        self, patterns: str | Sequence[str], config: ReadConfig | None = None, progress_interval: float | None = None
    ):
        super().__init__()
        self._progress_interval = progress_interval
        self._patterns = [patterns] if isinstance(patterns, str) else list(patterns)
        if not self._patterns:
            raise ValueError("ReadDump needs at least one input pattern")
        self._cfg = config or ReadConfig()

    def expand(self, pbegin: beam.pvalue.PBegin) -> ReadResult:
        files = (
            pbegin
            | "Start" >> beam.Impulse()
            | "MatchFiles" >> beam.ParDo(_MatchFn(self._patterns))
            | "SpreadFiles" >> beam.GroupByKey()  # by path: a shuffle that spreads the files over workers
        )
        read_fn = _ReadFileFn(self._cfg, self._progress_interval)
        out = files | "ReadFiles" >> beam.ParDo(read_fn).with_outputs("rejects", "counts", main="docs")
        return ReadResult(out.docs, out.rejects, out.counts)
