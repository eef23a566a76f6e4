"""Read the dedupe index an earlier run wrote, so a later run can match against it.

The index is a Hive-partitioned Parquet table, ``<output>/index/month=YYYY-MM/*.parquet``
(schema :data:`newsflow.schema.INDEX_SCHEMA`, the day in its ``date`` column; earlier
versions wrote ``index/date=YYYY-MM-DD/`` folders, which are read too). ``against``
names an earlier output folder, the index folder itself, or several of either separated
by commas, on any Beam filesystem (local, ``gs://``...)::

    entries = p | ReadDedupeIndex("gs://bucket/run-2024-07-01", num_perm=128,
                                  retention_days=30, days=run_days_side_input)

Every index file records, in its Parquet key/value metadata (``newsflow.dedupe_settings``,
JSON), the settings that decide its hashes (:func:`index_settings`); write it with
:func:`index_schema`. A run refuses an index written with other settings before it
starts (:func:`check_index_settings`), and the reader checks each file it opens again.

Files are listed and read on workers (``MatchAll`` + ``ReadMatches``-style opening
through :class:`~apache_beam.io.filesystems.FileSystems`), never on the driver.
Only rows dated at most ``retention_days`` from the date of one of the run's documents
are read (the union of the windows around the run's dates): ``month=`` (and ``date=``)
folders outside every window are skipped without being opened, and rows are filtered
by day (rows without one on their ``published_at``).
"""

from __future__ import annotations

import bisect
import calendar
import datetime as dt
import json
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems

from newsflow.config import DedupeConfig
from newsflow.core.dedupe import FINGERPRINT_VERSION, within_days
from newsflow.io.index_codec import index_entry
from newsflow.io.tables import date_partition
from newsflow.metrics import counter
from newsflow.schema import INDEX_SCHEMA

__all__ = [
    "SETTINGS_KEY",
    "IndexSettingsError",
    "ReadDedupeIndex",
    "check_index_settings",
    "index_patterns",
    "index_schema",
    "index_settings",
    "partition_date",
    "read_index_rows",
    "settings_mismatch",
]

_LOGGER = logging.getLogger(__name__)
_DATE_RE = re.compile(r"(?:^|/)date=(\d{4}-\d{2}-\d{2})(?:/|$)")
_MONTH_RE = re.compile(r"(?:^|/)month=(\d{4})-(\d{2})(?:/|$)")
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


SETTINGS_KEY = "newsflow.dedupe_settings"
INDEX_FORMAT = 1  # the index rows' layout (INDEX_SCHEMA) and meaning
# settings that must be equal for an index row to be matched as written; sketch_size may differ (two
# bottom-k sketches are compared below the smaller one's threshold) and bands/rows are cut from the stored
# signature at read time
_MUST_MATCH = ("format", "fingerprint", "shingle", "shingle_size", "num_perm", "seed", "lede_chars")
_LABELS = {"format": "index format", "fingerprint": "fingerprint version"}


class IndexSettingsError(ValueError):
    """An earlier index cannot be matched with this run's settings; the message is one line for the user."""


def index_settings(cfg: DedupeConfig) -> dict[str, Any]:
    """The settings that decide an index row's hashes (recorded in every index file)."""
    return {
        "format": INDEX_FORMAT,
        "fingerprint": FINGERPRINT_VERSION,
        "shingle": cfg.shingle,
        "shingle_size": cfg.shingle_size,
        "num_perm": cfg.num_perm,
        "seed": cfg.seed,
        "lede_chars": cfg.lede_chars,
        "sketch_size": cfg.sketch_size,
    }


def index_schema(cfg: DedupeConfig) -> pa.Schema:
    """`INDEX_SCHEMA` with :func:`index_settings` in its metadata: the schema to write index files with."""
    meta = dict(INDEX_SCHEMA.metadata or {})
    meta[SETTINGS_KEY.encode()] = json.dumps(index_settings(cfg), sort_keys=True).encode()
    return INDEX_SCHEMA.with_metadata(meta)


def _recorded_settings(metadata: Mapping[bytes, bytes] | None) -> dict[str, Any] | None:
    raw = (metadata or {}).get(SETTINGS_KEY.encode())
    if raw is None:
        return None
    try:
        found = json.loads(raw)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def settings_mismatch(found: Mapping[str, Any] | None, expected: Mapping[str, Any]) -> str | None:
    """Why an index file's recorded settings cannot be matched with ``expected`` (None: they can)."""
    if found is None:
        return "records no dedupe settings (written by an older newsflow), so its fingerprints may not match"
    diffs = [
        f"{_LABELS.get(key, 'dedupe.' + key)} {found.get(key)!r} there, {expected[key]!r} here"
        for key in _MUST_MATCH
        if found.get(key) != expected[key]
    ]
    if not diffs:
        return None
    return "was written with other dedupe settings (" + "; ".join(diffs) + ")"


def _index_files(against: str) -> list[str]:
    found = set()
    for result in FileSystems.match(index_patterns(against)):
        found.update(m.path for m in result.metadata_list if _is_index_file(m.path))
    return sorted(found)


def _is_index_file(path: str) -> bool:
    p = path.replace("\\", "/")
    return p.endswith(".parquet") and "/." not in p and "/_" not in p


def _file_settings(path: str) -> dict[str, Any] | None:
    with FileSystems.open(path) as fh:
        return _recorded_settings(pq.ParquetFile(fh).schema_arrow.metadata)


def check_index_settings(against: str, cfg: DedupeConfig, threads: int = 8) -> int:
    """Check that every index file under ``against`` was written with ``cfg``'s fingerprint settings.

    Reads each file's footer only (a few threads, on the driver, before the pipeline is
    built); returns the number of files checked. Raises :class:`IndexSettingsError`
    naming the first file (by path) that differs, or that records no settings. An index
    written with other settings would silently match nothing or match wrongly: rebuild it
    by rerunning its input with these settings, or run with the settings it records.
    """
    expected = index_settings(cfg)
    files = _index_files(against)
    if not files:
        _LOGGER.warning("--dedupe_against %s: no index files found; nothing to match against", against)
        return 0
    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(files)))) as pool:
        found = list(pool.map(_file_settings, files))
    for path, settings in zip(files, found, strict=True):
        why = settings_mismatch(settings, expected)
        if why is not None:
            raise IndexSettingsError(
                f"--dedupe_against {against}: index file {path} {why}; run with the settings it records or "
                "rebuild that index by rerunning its input with these"
            )
    return len(files)


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


def _date_day(date: str) -> int | None:
    """Days since 1970-01-01 of a ``YYYY-MM-DD`` string (None when it is no valid date)."""
    try:
        return dt.date.fromisoformat(date).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return None


def month_days(path: str) -> tuple[int, int] | None:
    """First and last day (days since 1970-01-01) of the innermost ``month=YYYY-MM`` folder of ``path``."""
    found = _MONTH_RE.findall(path.replace("\\", "/"))
    if not found:
        return None
    year, month = (int(x) for x in found[-1])
    if not (1 <= year <= 9999 and 1 <= month <= 12):
        return None
    first = dt.date(year, month, 1)
    last = dt.date(year, month, calendar.monthrange(year, month)[1])
    return first.toordinal() - _EPOCH_ORDINAL, last.toordinal() - _EPOCH_ORDINAL


def _month_outside(span: tuple[int, int] | None, days: Sequence[int] | None, window: int) -> bool:
    """Whether every day of a month is farther than ``window`` days from every one of ``days``."""
    if days is None or span is None:
        return False
    i = bisect.bisect_left(days, span[0] - window)
    return not (i < len(days) and days[i] <= span[1] + window)


def _outside(date: str | None, days: Sequence[int] | None, window: int) -> bool:
    """Whether ``date`` is farther than ``window`` days from every one of ``days`` (unknown dates are not)."""
    if days is None or date is None:
        return False
    day = _date_day(date)
    return day is not None and not within_days(day, days, window)


def read_index_rows(
    path: str, days: Sequence[int] | None = None, window: int = 0, settings: Mapping[str, Any] | None = None
) -> Iterator[dict[str, Any]]:
    """Index rows of one Parquet file (dicts with int-second timestamps).

    With ``days`` (the sorted days of this run's documents), only rows dated at most
    ``window`` days from one of them are read: a file whose ``month=`` (or ``date=``)
    folder is outside every window is not opened. With ``settings`` (:func:`index_settings`), a file that
    records other settings raises :class:`IndexSettingsError`.
    """
    folder_date = partition_date(path)
    if _outside(folder_date, days, window) or _month_outside(month_days(path), days, window):
        return
    with FileSystems.open(path) as fh:
        table = pq.read_table(fh)
    if settings is not None:
        why = settings_mismatch(_recorded_settings(table.schema.metadata), settings)
        if why is not None:
            raise IndexSettingsError(f"index file {path} {why}")
    for name in ("published_at", "collected_at"):
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, _to_seconds(table.column(name)))
    for row in table.to_pylist():
        date = row.get("date") or folder_date
        if date is None and row.get("published_at") is not None:
            date = date_partition(row["published_at"])
        if _outside(date, days, window):
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

    def __init__(self, num_perm: int, retention_days: int, settings: Mapping[str, Any] | None = None) -> None:
        self._num_perm = num_perm
        self._retention_days = retention_days
        self._settings = settings

    def process(self, metadata: Any, days: Sequence[int] | None = None) -> Iterator[dict[str, Any]]:
        path = metadata.path
        if not _is_index_file(path):
            return
        n = 0
        for row in read_index_rows(path, days, self._retention_days, self._settings):
            n += 1
            yield index_entry(row, self._num_perm)
        counter("dedupe_index_rows_loaded").inc(n)


class ReadDedupeIndex(beam.PTransform):
    """Index entries of earlier runs (dicts from :func:`newsflow.io.index_codec.index_entry`).

    Args:
      against: earlier output folder(s) or index folder(s), comma-separated.
      num_perm: the current MinHash size; signatures of another size are ignored.
      retention_days: only rows dated at most this many days from one of ``days`` are read.
      days: side input (``AsSingleton``) with the sorted days (since 1970-01-01) of the
        current run's documents, or None to load everything.
      settings: :func:`index_settings` of the current run; a file recording other
        settings fails the read (:class:`IndexSettingsError`). None: not checked.
    """

    def __init__(
        self,
        against: str,
        num_perm: int,
        retention_days: int,
        days: Any = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self._against = against
        self._num_perm = num_perm
        self._retention_days = retention_days
        self._days = days
        self._settings = None if settings is None else dict(settings)

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
        fn = _ReadIndexFileFn(self._num_perm, self._retention_days, self._settings)
        if self._days is None:
            return matched | "ReadIndexFiles" >> beam.ParDo(fn)
        return matched | "ReadIndexFiles" >> beam.ParDo(fn, days=self._days)
