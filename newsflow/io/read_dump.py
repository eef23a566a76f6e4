"""ReadDump: file patterns in, one raw document per element out (plus file-level rejects).

::

    read = pipeline | ReadDump(["dumps/day1/", "gs://bucket/day2/*.tar.gz"])
    read.docs     # RawDoc dicts: source_path, doc_index, data, size
    read.rejects  # Reject dicts for files/members that could not be read

Patterns may be folders (read recursively), globs or single files, on any Beam
filesystem.  Matched files are reshuffled so that large inputs spread over workers;
each file is streamed (never read whole) by :func:`newsflow.io.sources.read_source`.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from newsflow.config import ReadConfig
from newsflow.io.sources import ReadFailure, read_source
from newsflow.metrics import counter, reject_counter
from newsflow.progress import ProgressReporter
from newsflow.schema import make_reject

__all__ = ["ReadDump", "ReadResult", "expand_pattern", "relative_path"]

_LOGGER = logging.getLogger(__name__)
_GLOB_RE = re.compile(r"[*?\[]")
_EXCERPT_BYTES = 4096


class ReadResult(NamedTuple):
    """What ReadDump yields: raw documents and file-level rejects."""

    docs: beam.PCollection
    rejects: beam.PCollection


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
        return path[len(root):]
    if root and "://" not in path:
        a, b = os.path.abspath(root), os.path.abspath(path)
        if b.startswith(a.rstrip("/") + "/"):
            return b[len(a.rstrip("/")) + 1:]
    return path


class _MatchFn(beam.DoFn):
    """Pattern -> (relative path, full path) for every file it matches."""

    def process(self, pattern: str) -> Iterator[tuple[str, str]]:
        root, glob = expand_pattern(pattern)
        result = FileSystems.match([glob])[0]
        paths = sorted(m.path for m in result.metadata_list)
        if not paths:
            raise FileNotFoundError(f"input {pattern!r} matches no file")
        counter("files_matched").inc(len(paths))
        for path in paths:
            yield relative_path(root, path), path


class _ReadFileFn(beam.DoFn):
    """Streams one file into RawDocs; unreadable parts go to the ``rejects`` output."""

    def __init__(self, config: ReadConfig, progress_interval: float | None = None):
        self._cfg = config
        self._progress_interval = progress_interval
        self._progress: ProgressReporter | None = None

    def setup(self) -> None:
        if self._progress_interval:
            self._progress = ProgressReporter(self._progress_interval)

    def process(self, item: tuple[str, str]) -> Iterator[Any]:
        rel, path = item

        def opener():  # noqa: ANN202 - a raw binary stream
            return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)

        for got in read_source(rel, opener, self._cfg):
            if isinstance(got, ReadFailure):
                reject_counter(got.reason.value).inc()
                counter("read_failures").inc()
                yield beam.pvalue.TaggedOutput(
                    "rejects",
                    make_reject(got.source_path, got.doc_index, got.reason, got.detail, got.excerpt),
                )
                continue
            chunk = got.chunk
            counter("docs_read").inc()
            counter("bytes_read").inc(chunk.size)
            if self._progress is not None:
                self._progress.add(1, chunk.size)
            data = chunk.data if not chunk.truncated else chunk.data[:_EXCERPT_BYTES]
            yield {"source_path": got.source_path, "doc_index": chunk.doc_index, "data": data, "size": chunk.size}


class ReadDump(beam.PTransform):
    """Read news dumps from file patterns into raw documents and file-level rejects.

    Args:
      patterns: one pattern or several (folders are read recursively).
      config: read limits (document size, archive members, decompression bombs).
      progress_interval: print a progress line on stderr every this many seconds (None: never).
    """

    def __init__(self, patterns: str | Sequence[str], config: ReadConfig | None = None,
                 progress_interval: float | None = None):
        super().__init__()
        self._progress_interval = progress_interval
        self._patterns = [patterns] if isinstance(patterns, str) else list(patterns)
        if not self._patterns:
            raise ValueError("ReadDump needs at least one input pattern")
        self._cfg = config or ReadConfig()

    def expand(self, pbegin: beam.pvalue.PBegin) -> ReadResult:
        files = (
            pbegin
            | "Patterns" >> beam.Create(self._patterns)
            | "MatchFiles" >> beam.ParDo(_MatchFn())
            | "SpreadFiles" >> beam.Reshuffle()
        )
        read_fn = _ReadFileFn(self._cfg, self._progress_interval)
        out = files | "ReadFiles" >> beam.ParDo(read_fn).with_outputs("rejects", main="docs")
        return ReadResult(out.docs, out.rejects)


