"""Resolve: what each representative and its exact copies become once its cluster's keeper is known."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from newsflow.core.dedupe.fingerprint import Fingerprint
from newsflow.core.dedupe.keepers import kept_id_of
from newsflow.core.dedupe.match import MatchParams, verify_pair

__all__ = ["EXACT", "NEAR", "Resolved", "duplicate_row", "keeper_similarity", "resolve"]

EXACT = "exact"
NEAR = "near"


def duplicate_row(doc: dict[str, Any], kept_id: str, method: str, similarity: float) -> dict[str, Any]:
    """The duplicates-table row of a removed document (see ``newsflow.schema``)."""
    return {
        "doc_id": doc["doc_id"],
        "source_path": doc["source_path"],
        "doc_index": doc["doc_index"],
        "kept_id": kept_id,
        "method": method,
        "similarity": float(similarity),
        "published_at": doc.get("published_at"),
        "lang": doc.get("lang"),
    }


def keeper_similarity(node: Fingerprint | None, keeper: Fingerprint | None, params: MatchParams) -> float:
    """Similarity reported for a near duplicate: its sketch estimate against its keeper's (0.0 without one).

    Only the sketches count (no lede, no texts), so the figure is the same however the pair was found.
    """
    if node is None or keeper is None:
        return 0.0
    return verify_pair(_sketch_only(node), _sketch_only(keeper), params)[1]


def _sketch_only(fp: Fingerprint) -> Fingerprint:
    return Fingerprint(fp.shingles, b"", fp.sketch)


@dataclasses.dataclass
class Resolved:
    """A representative's outcome: the document kept (or None) and the duplicates rows of its group."""

    kept: dict[str, Any] | None
    duplicates: list[dict[str, Any]]


def resolve(
    node: str, doc: dict[str, Any] | None, members: Sequence[dict[str, Any]], label: tuple[str, float] | None
) -> Resolved:
    """Outcome of the representative ``node`` (its document ``doc``; None for an earlier run's entry).

    With a keeper (``label`` = (keeper node, similarity)) the representative and its exact copies are near
    duplicates of that keeper, all with the representative's similarity; without one the representative is
    kept and its copies are exact duplicates of it (similarity 1.0).
    """
    if label is not None:
        keeper, sim = label
        kept_id = kept_id_of(keeper)
        rows = [duplicate_row(doc, kept_id, NEAR, sim)] if doc is not None else []
        rows += [duplicate_row(m, kept_id, NEAR, sim) for m in members]
        return Resolved(None, rows)
    kept_id = kept_id_of(node)
    return Resolved(doc, [duplicate_row(m, kept_id, EXACT, 1.0) for m in members])
