"""Read the dedupe index an earlier run wrote, so a later run can match against it.

The index is a Hive-partitioned Parquet table, ``<output>/index/date=YYYY-MM-DD/*.parquet``
(schema :data:`newsflow.core.dedupe.INDEX_SCHEMA`; the ``date`` column lives in the
folder name).  ``against`` names an earlier output folder, the index folder itself,
or several of either separated by commas, on any Beam filesystem (local, ``gs://``...)::

    entries = p | ReadDedupeIndex("gs://bucket/run-2024-07-01", num_perm=128,
                                  retention_days=30, newest=newest_side_input)

Files are listed and read on workers (``MatchAll`` + ``ReadMatches``-style opening
through :class:`~apache_beam.io.filesystems.FileSystems`), never on the driver.
Whole ``date=`` folders older than the retention window are skipped without being
opened; rows without a partition folder are filtered on their ``published_at``.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems

from newsflow.core.dedupe import index_entry
from newsflow.metrics import counter

__all__ = ["ReadDedupeIndex", "index_patterns", "partition_date", "read_index_rows"]

_LOGGER = logging.getLogger(__name__)
_DATE_RE = re.compile(r"(?:^|/)date=(\d{4}-\d{2}-\d{2})(?:/|$)")


def index_patterns(against: str) -> list[str]:
    """Glob patterns of the index files under each comma-separated folder of ``against``.

    ``<folder>/index/**`` covers an output folder; ``<folder>/date=*/*`` covers an
    index folder given directly.
    """
    out = []
    for folder in (f.strip() for f in against.split(",")):
        if not folder:
            continue
        folder = folder.rstrip("/")
        out.append(FileSystems.join(folder, "index", "**"))
        out.append(FileSystems.join(folder, "date=*", "*"))
        out.append(FileSystems.join(folder, "month=*", "*"))
    return out


def partition_date(path: str) -> str | None:
    """The ``YYYY-MM-DD`` of the innermost ``date=`` folder of ``path`` (None when absent)."""
    found = _DATE_RE.findall(path.replace("\\", "/"))
    return found[-1] if found else None


def _cutoff_date(newest_published_at: int | None, retention_days: int) -> str | None:
    if newest_published_at is None:
        return None
    newest = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=int(newest_published_at))
    return (newest.date() - dt.timedelta(days=retention_days)).isoformat()


def read_index_rows(path: str, cutoff: str | None = None) -> Iterator[dict[str, Any]]:
    """Index rows of one Parquet file (dicts with int-second timestamps), dates before ``cutoff`` left out."""
    folder_date = partition_date(path)
    if cutoff is not None and folder_date is not None and folder_date < cutoff:
        return
    with FileSystems.open(path) as fh:
        table = pq.read_table(fh)
    for name in ("published_at", "collected_at"):
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, _to_seconds(table.column(name)))
    for row in table.to_pylist():
        date = row.get("date") or folder_date
        if cutoff is not None:
            if date is None and row.get("published_at") is not None:
                date = _cutoff_date(row["published_at"], 0)
            if date is not None and date < cutoff:
                continue
        row["date"] = date
        yield row


def _to_seconds(col: Any) -> Any:
    """An int64 column of seconds from a timestamp (any unit, any zone) or integer column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_timestamp(col.type):
        unit = col.type.unit
        ints = col.cast(pa.int64())
        div = {"s": 1, "ms": 1000, "us": 1_000_000, "ns": 1_000_000_000}[unit]
        return pc.divide(ints, div) if div > 1 else ints
    return col.cast(pa.int64())


class _ReadIndexFileFn(beam.DoFn):
    """Turns one matched index file into matching entries (see :func:`index_entry`)."""

    def __init__(self, num_perm: int, retention_days: int) -> None:
        self._num_perm = num_perm
        self._retention_days = retention_days

    def process(self, metadata: Any, newest: int | None = None) -> Iterator[dict[str, Any]]:
        path = metadata.path
        if not path.endswith(".parquet") or "/." in path.replace("\\", "/") or "/_" in path.replace("\\", "/"):
            return
        cutoff = _cutoff_date(newest, self._retention_days)
        n = 0
        for row in read_index_rows(path, cutoff):
            n += 1
            yield index_entry(row, self._num_perm)
        counter("dedupe_index_rows_loaded").inc(n)


class ReadDedupeIndex(beam.PTransform):
    """Index entries of earlier runs (dicts from :func:`newsflow.core.dedupe.index_entry`).

    Args:
      against: earlier output folder(s) or index folder(s), comma-separated.
      num_perm: the current MinHash size; signatures of another size are ignored.
      retention_days: rows dated more than this many days before ``newest`` are skipped.
      newest: side input (``AsSingleton``) with the newest ``published_at`` of the
        current run, or None to load everything.
    """

    def __init__(self, against: str, num_perm: int, retention_days: int, newest: Any = None) -> None:
        super().__init__()
        self._against = against
        self._num_perm = num_perm
        self._retention_days = retention_days
        self._newest = newest

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        patterns = index_patterns(self._against)
        matched = (
            pbegin
            | "IndexPatterns" >> beam.Create(patterns)
            | "MatchIndex" >> fileio.MatchAll(empty_match_treatment=fileio.EmptyMatchTreatment.ALLOW)
            | "DistinctFiles" >> beam.Map(lambda m: (m.path, m))
            | "GroupFiles" >> beam.CombinePerKey(lambda ms: next(iter(ms)))
            | "FileMeta" >> beam.Values()
            | "SpreadFiles" >> beam.Reshuffle()
        )
        fn = _ReadIndexFileFn(self._num_perm, self._retention_days)
        if self._newest is None:
            return matched | "ReadIndexFiles" >> beam.ParDo(fn)
        return matched | "ReadIndexFiles" >> beam.ParDo(fn, newest=self._newest)
