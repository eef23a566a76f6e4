"""The dedupe index's rows: what a kept document's row records, and what matching reads back from one.

The table's schema is :data:`newsflow.schema.INDEX_SCHEMA`; :mod:`newsflow.io.dedupe_index` reads and
checks index files. No Beam here: the in-memory reference uses the same codec.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from newsflow.core.dedupe.fingerprint import Fingerprint
from newsflow.core.dedupe.keepers import node_key

__all__ = ["index_entry", "index_row"]

_LEDE_BYTES = 8


def index_row(doc: Mapping[str, Any], date: str, key: bytes, fp: Fingerprint | None) -> dict[str, Any]:
    """The index row of a kept document (timestamps stay int seconds)."""
    return {
        "date": date,
        "doc_id": doc["doc_id"],
        "published_at": int(doc["published_at"]),
        "collected_at": None if doc.get("collected_at") is None else int(doc["collected_at"]),
        "exact_hash": key,
        "shingles": 0 if fp is None else fp.shingles,
        "signature": None if fp is None else fp.signature,
        "sketch": None if fp is None else fp.sketch,
        "lede": None if fp is None or not fp.lede else fp.lede,
    }


def _seconds(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if hasattr(value, "timestamp"):  # datetime (naive = UTC wall time) or pandas Timestamp
        import datetime as dt

        if getattr(value, "tzinfo", None) is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return int(value.timestamp())
    return int(value)


def index_entry(row: Mapping[str, Any], num_perm: int) -> dict[str, Any]:
    """What matching needs from an index row: node key, exact key and fingerprint (or None).

    A signature of another length (an index written with other MinHash
    settings) is ignored: the document then takes part in exact matching only.
    A lede key of another length is ignored too (the bands still find the copies).
    """
    published = _seconds(row["published_at"])
    collected = _seconds(row.get("collected_at"))
    fp = None
    sig, sketch = row.get("signature"), row.get("sketch")
    if sig is not None and sketch is not None and len(sig) == 4 * num_perm and int(row.get("shingles") or 0) > 0:
        lede = bytes(row.get("lede") or b"")
        fp = Fingerprint(int(row["shingles"]), bytes(sig), bytes(sketch), lede if len(lede) == _LEDE_BYTES else b"")
    return {
        "node": node_key(str(row["doc_id"]), published, collected, earlier=True),
        "exact": bytes(row["exact_hash"]),
        "fp": fp,
    }
