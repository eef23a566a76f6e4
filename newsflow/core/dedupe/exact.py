"""Exact groups: documents with the same normalized text, one representative each.

The representative of a group is its smallest node key (the keeper order), so it is the group's keeper
unless near matching finds an earlier copy. Documents of an earlier run's index (``earlier`` entries)
join a group only within the cross-run window of one of its documents.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from newsflow.core.dedupe.keepers import kept_id_of, node_day, within_days

__all__ = ["DOC", "EARLIER", "ExactGroup", "exact_group"]

DOC = "doc"  # an item of this run: a document
EARLIER = "idx"  # an item of an earlier run's index: an entry (node, exact, fp)


@dataclasses.dataclass
class ExactGroup:
    """What one exact group decides.

    Attributes:
        reps: (node, rep) for the group's representative and, when an earlier run's entry lies outside every
            document's window, that entry as a representative of its own (this run's near copies within its
            window must still meet it). A rep is ``{"node", "exact", "doc", "entry", "days"}`` plus ``"text"``
            (the first document's text) when an earlier entry represents documents of this run.
        members: (representative node, document) for every other document of the group: exact copies.
        self_matches: earlier entries of documents read again (a rerun is not a copy of itself).
        outside_window: earlier entries left out of the group by the window.
    """

    reps: list[tuple[str, dict[str, Any]]]
    members: list[tuple[str, Any]]
    self_matches: int = 0
    outside_window: int = 0


def exact_group(
    key: bytes, items: Iterable[tuple[str, str, Any]], window: int, text_of: Callable[[Any], str]
) -> ExactGroup:
    """Decide one exact group from its (kind, node, item) members (kind :data:`DOC` or :data:`EARLIER`).

    ``days`` of a representative are the sorted days of the group's documents (empty for an earlier-run-only
    one), so near matching applies the same window. ``text_of`` gives a document item's text.
    """
    items = list(items)
    own_ids = {kept_id_of(node) for kind, node, _ in items if kind == DOC}
    days = tuple(sorted({node_day(node) for kind, node, _ in items if kind == DOC}))
    out = ExactGroup([], [])
    best_node, best = None, None
    docs = []
    outside: tuple[str, Any] | None = None  # the earliest entry outside every document's window
    for kind, node, item in items:
        if kind == EARLIER:
            if kept_id_of(node) in own_ids:
                out.self_matches += 1
                continue
            if days and not within_days(node_day(node), days, window):
                out.outside_window += 1
                if outside is None or node < outside[0]:
                    outside = (node, item)
                continue
        if kind == DOC:
            docs.append((node, item))
        if best_node is None or node < best_node:
            best_node, best = node, (kind, item)
    if outside is not None:
        node, item = outside
        out.reps.append((node, {"node": node, "exact": key, "doc": None, "entry": item, "days": ()}))
    if best is not None:
        kind, item = best
        rep = {
            "node": best_node,
            "exact": key,
            "doc": item if kind == DOC else None,
            "entry": item if kind == EARLIER else None,
            "days": days,
        }
        if kind == EARLIER and docs:
            rep["text"] = text_of(min(docs, key=lambda d: d[0])[1])
        out.reps.append((best_node, rep))
        out.members = [(best_node, doc) for node, doc in docs if node != best_node]
    return out
