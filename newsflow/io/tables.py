"""The output tables: their schemas, Hive partitions, stable row keys and safe partition values.

Partition values come from data (dates) and from a model (languages); they are
checked here so that no value can make a path outside the output folder or an
invalid Hive partition.  Partition columns are not stored inside the files (the
Hive convention), so ``pandas.read_parquet(out / "docs")`` gives them back as
columns.
"""

from __future__ import annotations

import dataclasses
import re
import zlib
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from newsflow.schema import DOCS_SCHEMA, DUPLICATES_SCHEMA, REJECTS_SCHEMA, UNDETERMINED, epoch_to_datetime

__all__ = [
    "TABLES",
    "TableSpec",
    "date_partition",
    "lang_partition",
    "register_table",
    "shard_of",
]

_LANG_RE = re.compile(r"[a-z]{2,3}(?:[-_][A-Za-z0-9]{1,8}){0,3}")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
INVALID_DATE = "0000-00-00"


def lang_partition(value: Any) -> str:
    """A language code safe as a Hive partition value; anything odd becomes ``und``."""
    if isinstance(value, str) and len(value) <= 32 and _LANG_RE.fullmatch(value):
        return value
    return UNDETERMINED


def date_partition(seconds: Any) -> str:
    """``YYYY-MM-DD`` of a naive timestamp given as seconds since 1970-01-01."""
    try:
        d = epoch_to_datetime(int(seconds))
    except (TypeError, ValueError, OverflowError):
        return INVALID_DATE
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


def _date_value(value: Any) -> str:
    return value if isinstance(value, str) and _DATE_RE.fullmatch(value) else INVALID_DATE


def shard_of(key: str, shards: int) -> int:
    """Deterministic shard of a row key (the same on every process and runner)."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % shards if shards > 1 else 0


@dataclasses.dataclass(frozen=True)
class TableSpec:
    """How one table is laid out under the output folder."""

    name: str
    schema: pa.Schema  # logical schema, partition columns included
    partitions: tuple[str, ...]  # Hive partition columns, outermost first
    partition_values: Callable[[dict[str, Any]], tuple[str, ...]]
    row_key: Callable[[dict[str, Any]], str]  # stable key: sort order and shard

    @property
    def file_schema(self) -> pa.Schema:
        """The schema of the files: partition columns live in the folder names."""
        keep = [f for f in self.schema if f.name not in self.partitions]
        return pa.schema(keep, metadata=self.schema.metadata)

    def partition_dir(self, row: dict[str, Any]) -> str:
        values = self.partition_values(row)
        return "/".join(f"{k}={v}" for k, v in zip(self.partitions, values, strict=True))


def _docs_partition(row: dict[str, Any]) -> tuple[str, ...]:
    return lang_partition(row.get("lang")), date_partition(row.get("published_at"))


def _no_partition(row: dict[str, Any]) -> tuple[str, ...]:
    return ()


def _index_partition(row: dict[str, Any]) -> tuple[str, ...]:
    return (_date_value(row.get("date")),)


def _month_partition(row: dict[str, Any]) -> tuple[str, ...]:
    return (_date_value(row.get("date"))[:7],)


def _doc_key(row: dict[str, Any]) -> str:
    return str(row["doc_id"])


def _source_key(row: dict[str, Any]) -> str:
    idx = row.get("doc_index")
    return f"{row['source_path']}\x00{'' if idx is None else int(idx):>12}\x00{row.get('reason', '')}"


TABLES: dict[str, TableSpec] = {
    "docs": TableSpec("docs", DOCS_SCHEMA, ("lang", "date"), _docs_partition, _doc_key),
    "duplicates": TableSpec("duplicates", DUPLICATES_SCHEMA, (), _no_partition, _doc_key),
    "rejects": TableSpec("rejects", REJECTS_SCHEMA, (), _no_partition, _source_key),
}


def register_table(name: str, schema: pa.Schema, by_date: bool = True, granularity: str = "month") -> TableSpec:
    """Declare an extra table (for example the dedupe index), partitioned by its ``date`` column.

    ``granularity="month"`` (the default) writes ``<name>/month=YYYY-MM/`` folders and keeps
    ``date`` as a column in the files: a month of a few documents a day is one file, not
    thirty.  ``"day"`` writes ``<name>/date=YYYY-MM-DD/`` with ``date`` in the folder name.
    """
    if not by_date:
        return TableSpec(name, schema, (), _no_partition, _doc_key)
    if granularity == "day":
        return TableSpec(name, schema, ("date",), _index_partition, _doc_key)
    if granularity != "month":
        raise ValueError(f"granularity must be 'month' or 'day', not {granularity!r}")
    return TableSpec(name, schema, ("month",), _month_partition, _doc_key)
