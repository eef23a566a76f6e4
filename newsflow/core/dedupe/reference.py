"""The whole dedupe algorithm in one process: the reference the Beam transform is tested against.

:func:`dedupe` applies the same rules as :class:`newsflow.transforms.dedupe.Dedupe`, each from its own
module (exact groups, boilerplate, fingerprints, candidate pairs, verification, components, resolve), with
a global union-find for the clusters (fine in one process; the transform must not collect anything).
Benchmarks use it as the no-Beam baseline; tests use it as the oracle (same rows on random corpora).
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from newsflow.core.dedupe.candidates import bucket_pairs, in_window
from newsflow.core.dedupe.components import components
from newsflow.core.dedupe.exact import DOC, EARLIER, exact_group
from newsflow.core.dedupe.fingerprint import Fingerprint, MinHasher, NearDoc, bucket_keys, text_fingerprint
from newsflow.core.dedupe.keepers import is_earlier, node_key
from newsflow.core.dedupe.match import CONTAINMENT, MatchParams, best_container, pair_edge
from newsflow.core.dedupe.resolve import keeper_similarity, resolve
from newsflow.core.dedupe.text import exact_key, line_keys

if TYPE_CHECKING:
    from newsflow.config import DedupeConfig

__all__ = ["DedupeOutcome", "boilerplate_keys", "dedupe", "doc_node", "match_params", "near_of"]


@dataclasses.dataclass
class DedupeOutcome:
    """What :func:`dedupe` decides, as the transform's outputs (lists sorted by doc_id).

    ``kept``: the documents kept, unchanged; ``duplicates``: duplicates-table rows; ``kept_fingerprints``:
    doc_id -> (exact key, fingerprint or None) of each kept document (what its index row records);
    ``warnings``: counter -> count of the warnings that may mean a wrong decision.
    """

    kept: list[dict[str, Any]]
    duplicates: list[dict[str, Any]]
    kept_fingerprints: dict[str, tuple[bytes, Fingerprint | None]]
    warnings: dict[str, int]


def match_params(cfg: DedupeConfig) -> MatchParams:
    """The verification settings of a ``dedupe`` config."""
    return MatchParams(
        threshold=cfg.threshold,
        containment_threshold=cfg.containment_threshold,
        min_overlap=cfg.min_overlap,
        containment_min_jaccard=cfg.containment_min_jaccard,
        method=cfg.verification,
        edit_threshold=cfg.edit_threshold,
        edit_min_jaccard=cfg.edit_min_jaccard,
        edit_min_chars=cfg.edit_min_chars,
    )


def doc_node(doc: dict[str, Any]) -> str:
    """The node key of a document of this run."""
    return node_key(str(doc["doc_id"]), doc.get("published_at"), doc.get("collected_at"))


def boilerplate_keys(texts: Iterable[str], min_docs: int) -> frozenset[bytes]:
    """Line keys found in at least ``min_docs`` of the texts (one count per text and line)."""
    counts: collections.Counter[bytes] = collections.Counter()
    for text in texts:
        counts.update(line_keys(text))
    return frozenset(k for k, n in counts.items() if n >= min_docs)


def near_of(
    rep: dict[str, Any], text: str | None, cfg: DedupeConfig, boilerplate: frozenset[bytes] | None, hasher: MinHasher
) -> NearDoc | None:
    """What near matching compares of a representative (None: exact matching only).

    An earlier run's entry alone brings its stored fingerprint; a document, or an entry standing for documents
    of this run, is fingerprinted from ``text`` (its own, or its group's first document's).
    """
    entry = rep["entry"]
    if entry is not None and rep.get("text") is None:
        return None if entry["fp"] is None else NearDoc(Fingerprint._make(entry["fp"]))
    return text_fingerprint(text or "", cfg, boilerplate, hasher)


def dedupe(docs: Iterable[dict[str, Any]], cfg: DedupeConfig, earlier: Iterable[dict[str, Any]] = ()) -> DedupeOutcome:
    """Exact and near duplicates of ``docs`` (and against an earlier run's index ``earlier``), in memory.

    ``earlier`` holds index entries as :func:`newsflow.io.index_codec.index_entry` makes them. The clusters
    are exact connected components, which the transform reaches when its ``cc_rounds`` suffice (otherwise it
    warns).
    """
    groups: dict[bytes, list[tuple[str, str, Any]]] = collections.defaultdict(list)
    for doc in docs:
        node = doc_node(doc)
        groups[exact_key(doc.get("text") or "") if cfg.exact else b"id:" + node.encode("utf-8")].append(
            (DOC, node, doc)
        )
    for entry in earlier:
        groups[entry["exact"]].append((EARLIER, entry["node"], entry))
    reps: dict[str, dict[str, Any]] = {}
    members: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for key, items in groups.items():
        group = exact_group(key, items, cfg.index_retention_days, lambda d: d.get("text") or "")
        reps.update(group.reps)
        for node, doc in group.members:
            members[node].append(doc)

    def text_of(rep: dict[str, Any]) -> str | None:
        return (rep["doc"].get("text") or "") if rep["doc"] is not None else rep.get("text")

    warnings: collections.Counter[str] = collections.Counter()
    labels: dict[str, tuple[str, float]] = {}
    nears: dict[str, NearDoc] = {}
    if cfg.near:
        boiler = None
        if cfg.boilerplate_min_docs:
            boiler = boilerplate_keys((t for r in reps.values() if (t := text_of(r))), cfg.boilerplate_min_docs)
        hasher = MinHasher(cfg.num_perm, cfg.seed)
        buckets: dict[bytes, list[str]] = collections.defaultdict(list)
        for node, rep in reps.items():
            near = near_of(rep, text_of(rep), cfg, boiler, hasher)
            if near is None:
                continue
            nears[node] = near
            for key in bucket_keys(near.fp, cfg.bands, cfg.rows):
                buckets[key].append(node)
        pairs = set()
        for nodes in buckets.values():
            distinct = set(nodes)
            if len(distinct) < 2 or all(map(is_earlier, distinct)):
                continue
            if len(distinct) > cfg.max_bucket:
                warnings["dedupe_oversized_buckets"] += 1
            pairs.update(bucket_pairs(distinct, cfg.max_bucket))
        params = match_params(cfg)
        edges: list[tuple[str, str]] = []
        best: dict[str, tuple[float, str]] = {}
        for a, b in sorted(pairs):
            na, nb = nears[a], nears[b]
            if not in_window(a, reps[a]["days"], b, reps[b]["days"], cfg.index_retention_days):
                continue
            found = pair_edge(a, na, b, nb, params)
            if found is None:
                continue
            kind, x, y, sim = found
            if kind == CONTAINMENT:
                best[x] = best_container(best[x], (sim, y)) if x in best else (sim, y)
            else:
                edges.append((x, y))
        edges += [(small, big) for small, (_, big) in best.items()]
        for node, keeper in components(edges).items():
            labels[node] = (keeper, keeper_similarity(nears[node].fp, nears[keeper].fp, params))
    kept, duplicates, kept_fps = [], [], {}
    for node, rep in reps.items():
        out = resolve(node, rep["doc"], members.get(node, ()), labels.get(node))
        duplicates += out.duplicates
        if out.kept is not None:
            kept.append(out.kept)
            kept_fps[str(out.kept["doc_id"])] = (rep["exact"], nears[node].fp if node in nears else None)
    kept.sort(key=lambda d: str(d["doc_id"]))
    duplicates.sort(key=lambda d: str(d["doc_id"]))
    return DedupeOutcome(kept, duplicates, kept_fps, dict(warnings))
