"""Keeper order and dates: the node key whose smallest value in a cluster is its keeper.

A node key is a string ordered as the keeper rule orders documents (earlier runs first, then earliest
``published_at``, earliest ``collected_at``, smallest ``doc_id``), so plain string comparison picks the
same keeper on every runner. It also carries the document's day for the cross-run window.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

__all__ = ["is_earlier", "kept_id_of", "node_day", "node_key", "published_day", "within_days"]

_NULL_TIME = 9_999_999_999_999  # collected_at missing: sorts after every real time
_TIME_OFFSET = 10**12  # makes published_at (may be negative: before 1970) non-negative


def node_key(doc_id: str, published_at: int | None, collected_at: int | None, earlier: bool = False) -> str:
    """A string whose order is the keeper order; the smallest key of a cluster is its keeper.

    Order: documents from an earlier run's index first (they are already
    published), then earliest ``published_at``, then earliest
    ``collected_at`` (missing last), then smallest ``doc_id``.  Fixed-width
    fields make plain string comparison give this order on every runner.
    """
    pub = _NULL_TIME if published_at is None else _TIME_OFFSET + int(published_at)
    col = _NULL_TIME if collected_at is None else _TIME_OFFSET + int(collected_at)
    pub = min(max(pub, 0), _NULL_TIME)
    col = min(max(col, 0), _NULL_TIME)
    return f"{0 if earlier else 1}|{pub:013d}|{col:013d}|{doc_id}"


def kept_id_of(node: str) -> str:
    """The doc_id inside a :func:`node_key`."""
    return node.split("|", 3)[3]


def is_earlier(node: str) -> bool:
    """Whether a :func:`node_key` names a document of an earlier run's index (already kept)."""
    return node[0] == "0"


_DAY = 86400


def node_day(node: str) -> int:
    """The day (days since 1970-01-01, the ``date`` partition's day) of a :func:`node_key`'s ``published_at``."""
    return (int(node[2:15]) - _TIME_OFFSET) // _DAY


def published_day(published_at: int) -> int:
    """The day (days since 1970-01-01) of a naive ``published_at`` in seconds."""
    return int(published_at) // _DAY


def within_days(day: int, days: Sequence[int], window: int) -> bool:
    """Whether ``day`` is at most ``window`` days away from one of the sorted ``days``.

    The cross-run window: an earlier run's document is a candidate for a document of this
    run when their dates are at most ``index_retention_days`` apart.
    """
    i = bisect.bisect_left(days, day - window)
    return i < len(days) and days[i] <= day + window
