"""Candidate pairs: which pairs of an LSH bucket are compared, and where.

A bucket (an LSH band key or a lede key) holds the nodes whose fingerprints share it. Its members are
sorted by node key; the first ``max_bucket`` are its head. A pair is a candidate in a bucket when at least
one of the two is a head member there (an oversized bucket, a template shared by thousands of texts, must
not cost n**2 comparisons), and it is checked only in the smallest bucket key where it is a candidate
(:func:`checked_in`), so once however many buckets it shares. Pairs of two earlier-run documents are
never checked (both are kept already), and an earlier run's document is a candidate only for documents
dated within the cross-run window (:func:`in_window`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from newsflow.core.dedupe.keepers import is_earlier, node_day, within_days

__all__ = ["bucket_pairs", "checked_in", "head_flags", "in_window"]


def head_flags(nodes: Iterable[str], max_bucket: int) -> list[tuple[str, bool]]:
    """The distinct members of one bucket in node order, each with whether it is a head member."""
    return [(node, j < max_bucket) for j, node in enumerate(sorted(set(nodes)))]


def bucket_pairs(nodes: Iterable[str], max_bucket: int) -> Iterator[tuple[str, str]]:
    """The candidate pairs (smaller node, larger node) of one LSH bucket.

    Members are sorted by keeper key and each is paired with every earlier
    member, or with the first ``max_bucket`` only in an oversized bucket (a
    template shared by thousands of texts must not cost n**2 comparisons).
    Pairs of two earlier-run documents are skipped: both are already kept.
    """
    items = sorted(set(nodes))
    for j in range(1, len(items)):
        for i in range(min(j, max_bucket)):
            if is_earlier(items[i]) and is_earlier(items[j]):
                continue
            yield items[i], items[j]


def checked_in(a: Mapping[bytes, bool], b: Mapping[bytes, bool]) -> bytes | None:
    """The bucket key where the pair of two nodes is checked: the smallest shared key where one is a head member.

    ``a`` and ``b`` map each bucket key a node is in (buckets of 2+) to whether it is a head member there.
    None when no shared bucket makes them a candidate pair.
    """
    keys = [k for k in a.keys() & b.keys() if a[k] or b[k]]
    return min(keys) if keys else None


def in_window(a: str, days_a: Sequence[int], b: str, days_b: Sequence[int], window: int) -> bool:
    """Whether a pair may match across runs: an earlier run's document only within ``window`` days of a document.

    ``days_x`` are the sorted days of the documents node ``x`` represents (empty for an earlier run's document
    that represents none of this run).
    """
    for old, old_days, new_days in ((a, days_a, days_b), (b, days_b, days_a)):
        if is_earlier(old) and not old_days and new_days:
            return within_days(node_day(old), new_days, window)
    return True
