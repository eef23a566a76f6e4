"""Element types and the explicit Parquet schema of every output table.

Elements travel through the pipeline as plain dicts (cheap to encode with Beam's
default coder); the keys below are the contract between transforms.

RawDoc (from ``ReadDump``)::

    {"source_path": str, "doc_index": int, "data": bytes, "size": int}

``data`` holds the document's bytes (at most ``read.max_doc_bytes``); ``size`` is
its full size, which may be larger when the document was too large to keep.

Doc (from ``SplitHeader`` on, one per kept document)::

    doc_id, source_path, doc_index, published_at (int: seconds since 1970-01-01
    of the naive header time), published_at_utc (int | None), collected_at
    (int | None, Unix seconds UTC), text (str), hashtags_raw (list[str]),
    hashtags (list[str]), lang (str), lang_score (float), lang_alt (str | None),
    lang_alt_score (float | None), invalid_bytes (int)

Reject::

    {"source_path": str, "doc_index": int | None, "reason": str,
     "detail": str, "excerpt": str}

Duplicate::

    {"doc_id", "source_path", "doc_index", "kept_id", "method", "similarity",
     "published_at", "lang"}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "DOCS_SCHEMA",
    "DUPLICATES_SCHEMA",
    "INDEX_SCHEMA",
    "REJECTS_SCHEMA",
    "TABLE_SCHEMAS",
    "UNDETERMINED",
    "make_doc",
    "make_reject",
    "rows_to_table",
    "epoch_to_datetime",
]

UNDETERMINED = "und"

DOCS_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("source_path", pa.string(), nullable=False),
        pa.field("doc_index", pa.int64(), nullable=False),
        pa.field("published_at", pa.timestamp("ms"), nullable=False),
        pa.field("published_at_utc", pa.timestamp("ms", tz="UTC")),
        pa.field("collected_at", pa.timestamp("ms", tz="UTC")),
        pa.field("text", pa.string(), nullable=False),
        pa.field("hashtags_raw", pa.list_(pa.string()), nullable=False),
        pa.field("hashtags", pa.list_(pa.string()), nullable=False),
        pa.field("lang", pa.string(), nullable=False),
        pa.field("lang_score", pa.float32(), nullable=False),
        pa.field("lang_alt", pa.string()),
        pa.field("lang_alt_score", pa.float32()),
        pa.field("invalid_bytes", pa.int32(), nullable=False),
    ],
    metadata={"newsflow.table": "docs", "newsflow.schema_version": "1"},
)

DUPLICATES_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("source_path", pa.string(), nullable=False),
        pa.field("doc_index", pa.int64(), nullable=False),
        pa.field("kept_id", pa.string(), nullable=False),
        pa.field("method", pa.string(), nullable=False),
        pa.field("similarity", pa.float32(), nullable=False),
        pa.field("published_at", pa.timestamp("ms")),
        pa.field("lang", pa.string()),
    ],
    metadata={"newsflow.table": "duplicates", "newsflow.schema_version": "1"},
)

REJECTS_SCHEMA = pa.schema(
    [
        pa.field("source_path", pa.string(), nullable=False),
        pa.field("doc_index", pa.int64()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("excerpt", pa.string(), nullable=False),
    ],
    metadata={"newsflow.table": "rejects", "newsflow.schema_version": "1"},
)

INDEX_SCHEMA = pa.schema(
    [
        pa.field("date", pa.string(), nullable=False),  # partition column: the kept doc's header date
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("published_at", pa.timestamp("s"), nullable=False),
        pa.field("collected_at", pa.timestamp("s", tz="UTC")),
        pa.field("exact_hash", pa.binary(16), nullable=False),
        pa.field("shingles", pa.int32(), nullable=False),  # distinct shingles; 0 = too short for near matching
        pa.field("signature", pa.binary()),  # num_perm little-endian uint32; null when too short
        pa.field("sketch", pa.binary()),  # bottom-k shingle hashes, little-endian uint32; null when too short
        pa.field("lede", pa.binary()),  # 8-byte key of the text's first characters; null when none
    ],
    metadata={"newsflow.table": "dedupe_index", "newsflow.schema_version": "1"},
)
"""One row per kept document: 16 + 4 + 4*num_perm + 4*sketch_size + 8 bytes of hashes (1,564 B
at 128 permutations and a 256-hash sketch) plus the id and two timestamps; hashes do not
compress, so that is about what a row costs on disk too."""

TABLE_SCHEMAS: dict[str, pa.Schema] = {
    "docs": DOCS_SCHEMA,
    "duplicates": DUPLICATES_SCHEMA,
    "rejects": REJECTS_SCHEMA,
}

_EPOCH = dt.datetime(1970, 1, 1)


def epoch_to_datetime(seconds: int) -> dt.datetime:
    """Naive datetime for seconds since 1970-01-01 (works for years 1..9999)."""
    return _EPOCH + dt.timedelta(seconds=seconds)


def make_doc(**fields: Any) -> dict[str, Any]:
    """A Doc dict with every column present (defaults for what is not given)."""
    doc: dict[str, Any] = {
        "doc_id": "",
        "source_path": "",
        "doc_index": 0,
        "published_at": 0,
        "published_at_utc": None,
        "collected_at": None,
        "text": "",
        "hashtags_raw": [],
        "hashtags": [],
        "lang": UNDETERMINED,
        "lang_score": 0.0,
        "lang_alt": None,
        "lang_alt_score": None,
        "invalid_bytes": 0,
    }
    unknown = set(fields) - set(doc)
    if unknown:
        raise KeyError(f"unknown Doc fields: {sorted(unknown)}")
    doc.update(fields)
    return doc


def make_reject(
    source_path: str, doc_index: int | None, reason: str, detail: str = "", excerpt: str = ""
) -> dict[str, Any]:
    """A Reject dict; ``reason`` should be a :class:`newsflow.reasons.Reason` value."""
    return {
        "source_path": source_path,
        "doc_index": doc_index,
        "reason": str(getattr(reason, "value", reason)),
        "detail": detail,
        "excerpt": excerpt,
    }


_UNIT_SCALE = {"s": 1, "ms": 1000, "us": 1_000_000, "ns": 1_000_000_000}


def rows_to_table(rows: Iterable[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """Build a table with exactly ``schema`` from dict rows (extra keys are ignored).

    Timestamp columns are given as integer seconds and stored as milliseconds (Parquet
    has no seconds unit) without going through Python datetimes.
    """
    rows = list(rows)
    arrays = []
    for field in schema:
        values = [r.get(field.name) for r in rows]
        if pa.types.is_timestamp(field.type):  # given in seconds; Parquet stores ms at the coarsest
            scale = _UNIT_SCALE[field.type.unit]
            arr = pc.multiply(pa.array(values, type=pa.int64()), scale).cast(field.type)
        else:
            arr = pa.array(values, type=field.type)
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=schema)
