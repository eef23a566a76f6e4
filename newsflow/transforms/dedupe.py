"""Dedupe: remove exact and near-duplicate documents, keeping one deterministic copy per cluster.

::

    result = docs | Dedupe(DedupeConfig(), against="gs://bucket/out/2024-07-01")
    result.kept        # Doc dicts that survive, unchanged
    result.duplicates  # {doc_id, source_path, doc_index, kept_id, method, similarity, published_at, lang}
    result.index       # rows of INDEX_SCHEMA describing what this run kept (for later runs)
    result.warnings    # {counter, count, meaning} per decision that may be wrong (none: empty)

Stages (all GroupByKey/CoGroupByKey; nothing is collected on the driver):

1. Exact: group by the 16-byte hash of the normalized text; the group's
   smallest keeper key is its representative, the others are exact copies.
   Inside Dedupe a document is one pickled bytes value: a local runner holds a
   shuffle's values decoded, and a decoded doc dict takes about twice the memory.
2. Boilerplate: count, per normalized line, the representatives that contain
   it; lines found in ``boilerplate_min_docs`` or more are ignored when shingling.
3. Signatures: MinHash over shingles of each representative with at least
   ``min_shingles`` shingles (shorter texts are matched exactly only).
4. LSH: group node ids by band key (and lede key); a bucket of two or more
   tells each member it is in it. That first shuffle is keyed by a shard (2 digest
   bytes of the bucket key), not by bucket: nearly every bucket has one member and
   a runner pays per group. Each node's sketch rides the same shuffle in a shard
   of its node; a GroupByKey on the node then sends the sketch to
   each of its buckets of two or more, where the bucket's candidate pairs
   (:func:`~newsflow.core.dedupe.bucket_pairs`) are checked, each pair only in
   the first bucket where it is a candidate. A sketch thus travels once per
   shared bucket, not once per band nor once per pair; only plain GroupByKeys of
   one input are used (a local runner copies every input of a multi-input join
   or Flatten once more). The bucket shuffle is split into 4 GroupByKeys by a
   byte of the bucket key: a local runner regroups one at a time, so its peak
   memory holds a quarter of that shuffle's regrouped copy.
   Each pair is verified (:func:`pair_edge`): Jaccard or containment
   (abridged copies); the few pairs that only character alignment can decide
   (noisy copies: OCR errors, typos) then get both texts: one join brings each
   text to its own pairs, a GroupByKey on the pair brings the two texts together.
5. Connected components: ``cc_rounds`` alternations of large-star/small-star
   (Kiveris et al. 2014, O(log^2 n) rounds worst case; duplicate clusters are
   small and dense, so a few rounds suffice), then 3 pointer-jumping
   rounds and a check; a node whose target is still not a root is KEPT, so
   every kept_id names a kept document (counter ``dedupe_cc_unresolved``); a
   component that is not yet a star is counted too (``dedupe_cc_not_converged``).
   Both, and LSH buckets over ``max_bucket``, are also ``warnings`` (:data:`WARNINGS`).
6. Resolve: each representative and its exact copies get the component's
   keeper; similarity is measured between each duplicate and its keeper. The
   join is split by a hash of the node, like the bucket shuffle.

Documents of an earlier run's index (``against``) join stages 1, 4 and 5 with
keeper keys that sort first, so they always win and are never emitted. One is a
candidate only for documents dated at most ``index_retention_days`` from it, and the
index is read for the union of those windows around the run's dates.
"""

from __future__ import annotations

import collections
import logging
import pickle
import zlib
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam import pvalue

from newsflow.config import DedupeConfig
from newsflow.core.dedupe import (
    ALIGN,
    CONTAINMENT,
    EDIT_MAX_CHARS,
    Fingerprint,
    MatchParams,
    MinHasher,
    NearDoc,
    best_container,
    bucket_keys,
    edit_similarity,
    exact_key,
    fingerprint,
    index_row,
    is_earlier,
    kept_id_of,
    lede_key,
    line_keys,
    match_kind,
    node_day,
    node_key,
    normalized_lines,
    published_day,
    shingle_hashes,
    sketch_kind,
    strip_normalized,
    verify_pair,
    within_days,
)
from newsflow.io.tables import date_partition
from newsflow.metrics import counter

__all__ = ["WARNINGS", "Dedupe", "DedupeResult", "pair_edge", "rep_near", "text_fingerprint"]

_LOGGER = logging.getLogger(__name__)
_REP = "rep"
_MEMBER = "member"


_WARN = "warnings"
WARNINGS = {
    "dedupe_cc_not_converged": "nodes of duplicate clusters that dedupe.cc_rounds rounds of connected "
    "components did not finish: a cluster may have more than one keeper "
    "(raise cc_rounds)",
    "dedupe_cc_unresolved": "documents left kept because their cluster's keeper was not found in time "
    "(they may be duplicates; raise cc_rounds)",
    "dedupe_oversized_buckets": "LSH buckets with more than dedupe.max_bucket members, whose later members were "
    "compared with the first max_bucket only (a template shared by many texts; "
    "duplicates among the later members can be missed)",
}
"""Counters whose non-zero value means that a dedupe decision may be wrong, with what they mean."""


class DedupeResult(NamedTuple):
    """The outputs of :class:`Dedupe`.

    ``warnings`` holds one ``{"counter", "count", "meaning"}`` dict per counter of
    :data:`WARNINGS` that is not zero (the same numbers as the Beam counters, but as data,
    so they reach the run's manifest on every runner).
    """

    kept: beam.PCollection
    duplicates: beam.PCollection
    index: beam.PCollection
    warnings: beam.PCollection


def _match_params(cfg: DedupeConfig) -> MatchParams:
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


def _doc_node(doc: dict[str, Any]) -> str:
    return node_key(str(doc["doc_id"]), doc.get("published_at"), doc.get("collected_at"))


def _duplicate(doc: dict[str, Any], kept_id: str, method: str, similarity: float) -> dict[str, Any]:
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


# ---------------------------------------------------------------------------- 1. exact


def _pack_doc(doc: dict[str, Any]) -> bytes:
    """A document as the one bytes value it is inside Dedupe's shuffles (``_unpack_doc`` reverses it).

    A local runner holds every value of a shuffle decoded in memory until it is regrouped:
    a doc dict decoded takes about twice its encoded size (an object per field), a bytes
    value is one object, and Beam's coder copies it without looking inside.
    """
    return pickle.dumps(doc, protocol=pickle.HIGHEST_PROTOCOL)


def _unpack_doc(blob: bytes) -> dict[str, Any]:
    """The document :func:`_pack_doc` packed."""
    return pickle.loads(blob)  # noqa: S301 (bytes this transform packed itself)


def _key_doc(doc: dict[str, Any], exact: bool) -> tuple[bytes, tuple[str, str, Any]]:
    node = _doc_node(doc)
    key = exact_key(doc.get("text") or "") if exact else b"id:" + node.encode("utf-8")
    return key, ("doc", node, _pack_doc(doc))


def _key_entry(entry: dict[str, Any]) -> tuple[bytes, tuple[str, str, Any]]:
    fp = entry["fp"]
    return entry["exact"], ("idx", entry["node"], {**entry, "fp": None if fp is None else tuple(fp)})


class _ExactGroupFn(beam.DoFn):
    """One exact group -> its representative (main) and its other members (tag ``member``).

    An earlier run's entry joins the group only when its date is within ``window`` days
    of one of the group's documents; otherwise it stays an earlier-run-only
    representative of its own, which this run's near copies within its window still meet.
    A representative carries the sorted days of its group's documents (``days``, empty
    for an earlier-run-only one), so near matching can apply the same window. An earlier
    run's entry that represents documents of this run carries the text of the first of
    them (``text``): boilerplate is counted over this run's texts, and the group is
    near-matched with this run's fingerprint of it (boilerplate of this run left out, lines
    for the alignment rule), as if that document were its representative.
    """

    def __init__(self, window: int) -> None:
        self._window = window

    def process(self, kv: tuple[bytes, Iterable[tuple[str, str, Any]]]) -> Iterator[Any]:
        key, items = kv
        items = list(items)
        # A document read again (a rerun against its own earlier output) is not a copy of itself.
        own_ids = {kept_id_of(node) for kind, node, _ in items if kind == "doc"}
        days = tuple(sorted({node_day(node) for kind, node, _ in items if kind == "doc"}))
        best_node, best = None, None
        docs = []
        outside: tuple[str, Any] | None = None  # the earliest entry outside every document's window
        for kind, node, item in items:
            if kind == "idx":
                if kept_id_of(node) in own_ids:
                    counter("dedupe_index_self_matches").inc()
                    continue
                if days and not within_days(node_day(node), days, self._window):
                    counter("dedupe_index_outside_window").inc()
                    if outside is None or node < outside[0]:
                        outside = (node, item)
                    continue
            if kind == "doc":
                docs.append((node, item))
            if best_node is None or node < best_node:
                best_node, best = node, (kind, item)
        if outside is not None:
            # Groups of earlier-run documents only are kept too: this run's near copies must meet them.
            node, item = outside
            yield (node, {"node": node, "exact": key, "doc": None, "entry": item, "days": ()})
        if best is not None:
            kind, item = best
            rep = {
                "node": best_node,
                "exact": key,
                "doc": item if kind == "doc" else None,
                "entry": item if kind == "idx" else None,
                "days": days,
            }
            if kind == "idx" and docs:
                rep["text"] = _unpack_doc(min(docs, key=lambda d: d[0])[1]).get("text") or ""
            yield (best_node, rep)
            for node, doc in docs:
                if node != best_node:
                    counter("dedupe_exact_copies").inc()
                    yield pvalue.TaggedOutput(_MEMBER, (best_node, doc))


# ---------------------------------------------------------------------------- 2. boilerplate


def _rep_lines(kv: tuple[str, dict[str, Any]]) -> Iterator[tuple[bytes, int]]:
    """The line keys of a representative's text (this run's texts only: an index entry alone has none)."""
    rep = kv[1]
    text = _unpack_doc(rep["doc"]).get("text") if rep["doc"] is not None else rep.get("text")
    if text:
        for key in line_keys(text):
            yield key, 1


def _without_text(kv: tuple[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """A representative without the text it carried for near matching (the resolve join does not need it)."""
    node, rep = kv
    if "text" not in rep:
        return kv
    return node, {k: v for k, v in rep.items() if k != "text"}


class _SetUnion(beam.CombineFn):
    """Set union of the inputs; subclasses say how the set is handed on."""

    def create_accumulator(self) -> set[Any]:
        return set()

    def add_input(self, acc: set[Any], x: Any) -> set[Any]:
        acc.add(x)
        return acc

    def merge_accumulators(self, accs: Iterable[set[Any]]) -> set[Any]:
        out: set[Any] = set()
        for a in accs:
            out |= a
        return out


class _ToFrozenSet(_SetUnion):
    """The boilerplate line keys (bounded by the number of recurring lines)."""

    def extract_output(self, acc: set[bytes]) -> frozenset[bytes]:
        return frozenset(acc)


class _SortedDays(_SetUnion):
    """The sorted distinct days of the run's documents (bounded by the days the run spans)."""

    def extract_output(self, acc: set[int]) -> tuple[int, ...]:
        return tuple(sorted(acc))


# ---------------------------------------------------------------------------- 3. signatures


class _SignatureFn(beam.DoFn):
    """(node, rep) -> what near matching needs, for texts long enough for it.

    Main output (node, Fingerprint fields); tagged ``bands``: (bucket key, node) per band
    and lede key, plus (the node's own key, (node, slim)); ``slim``: (node, slim) for the
    keeper similarity, where slim = (shingle count, sketch, text length, days of the
    group's documents: empty for an earlier run's document); ``text``:
    (node, lines) for texts the edit-noise rule may align. One step instead of one per
    derived collection. Shuffled values are plain tuples: Beam's default coder pickles
    a NamedTuple, which made each element about 6x slower to encode and decode.
    """

    def __init__(self, cfg: DedupeConfig) -> None:
        self._cfg = cfg
        self._hasher: MinHasher | None = None

    def setup(self) -> None:
        self._hasher = MinHasher(self._cfg.num_perm, self._cfg.seed)

    def process(self, kv: tuple[str, dict[str, Any]], boilerplate: frozenset[bytes] | None = None) -> Iterator[Any]:
        node, rep = kv
        assert self._hasher is not None
        near = rep_near(rep, self._cfg, boilerplate, self._hasher)
        if near is None:
            if rep["entry"] is None:
                counter("dedupe_too_short_for_near").inc()
            return
        yield node, tuple(near.fp)
        for key in bucket_keys(near.fp, self._cfg.bands, self._cfg.rows):
            yield pvalue.TaggedOutput("bands", _bucket_entry(key, node))
        slim = (near.fp.shingles, near.fp.sketch, len(near.text), tuple(rep.get("days", ())))
        yield pvalue.TaggedOutput("bands", _sketch_entry(node, slim))
        yield pvalue.TaggedOutput("slim", (node, slim))
        if near.text:
            yield pvalue.TaggedOutput("text", (node, near.text))


def rep_near(
    rep: dict[str, Any], cfg: DedupeConfig, boilerplate: frozenset[bytes] | None, hasher: MinHasher
) -> NearDoc | None:
    """What near matching compares of an exact group's representative (None: exact matching only).

    An earlier run's index entry alone brings its stored fingerprint (a Fingerprint or its
    fields); a document, or an entry standing for documents of this run (``text``), is
    fingerprinted from its text (:func:`text_fingerprint`).
    """
    entry = rep["entry"]
    if entry is not None and rep.get("text") is None:
        return None if entry["fp"] is None else NearDoc(Fingerprint._make(entry["fp"]))
    text = rep["text"] if entry is not None else _unpack_doc(rep["doc"]).get("text") or ""
    return text_fingerprint(text, cfg, boilerplate, hasher)


def text_fingerprint(
    text: str, cfg: DedupeConfig, boilerplate: frozenset[bytes] | None, hasher: MinHasher
) -> NearDoc | None:
    """Fingerprint (and, for long texts, the lines for the edit-noise rule) of one text.

    Boilerplate lines are left out unless too little else remains. None when the
    text has fewer than ``min_shingles`` shingles (exact matching only). The text
    is normalized once; the shingles, lede key and aligned lines all come from it.
    """
    lines = normalized_lines(text)
    candidates = [lines]
    if boilerplate:
        stripped = strip_normalized(lines, boilerplate)
        if len(stripped) != len(lines):
            candidates.insert(0, stripped)
    for kept in candidates:
        norm = " ".join(kept)
        shingles = shingle_hashes(norm, cfg.shingle, cfg.shingle_size)
        if len(shingles) >= cfg.min_shingles:
            fp = fingerprint(shingles, hasher, cfg.sketch_size, lede_key(norm, cfg.lede_chars))
            eligible = cfg.edit_threshold > 0 and len(norm) >= cfg.edit_min_chars
            return NearDoc(fp, "\n".join(kept)[:EDIT_MAX_CHARS] if eligible else "")
    return None


# ---------------------------------------------------------------------------- 4. LSH candidates


def _slim_fp(slim: tuple[Any, ...]) -> Fingerprint:
    """The sketch part of a ``slim`` payload: (shingle count, sketch, text length, days)."""
    return Fingerprint(slim[0], b"", slim[1])


_HEAD, _TAIL = b"\x01", b"\x00"
# the bucket shuffle is split into this many GroupByKeys: a local runner groups one at a time,
# so its peak memory holds one part's regrouped copy, not the whole shuffle's
_CHECK_PARTS = 4


# Bucket memberships cross the first LSH shuffle grouped by a shard (2 digest bytes of the
# bucket key: 65,536 groups), not by bucket: nearly every bucket has one member, and a
# runner pays per group (a local one holds a key and a list per group in memory while
# it regroups). Each value is one bytes object, bucket key + node.
_SHARDS = 1 << 16
_BUCKET_KEY_BYTES = 10  # band keys: band number (2) + digest (8); lede keys: ff ff + digest (8)


def _bucket_entry(key: bytes, node: str) -> tuple[int, bytes]:
    """(shard, bucket key + node) for one bucket a node is in."""
    if len(key) != _BUCKET_KEY_BYTES:
        raise ValueError(f"bucket key of {len(key)} bytes, expected {_BUCKET_KEY_BYTES}")
    return int.from_bytes(key[2:4], "big"), key + node.encode("utf-8")


def _sketch_entry(node: str, slim: tuple[Any, ...]) -> tuple[int, tuple[str, tuple[Any, ...]]]:
    """(shard, (node, slim)): a node's sketch rides the same shuffle to reach :func:`_send_to_buckets`."""
    return zlib.crc32(node.encode("utf-8")) % _SHARDS, (node, slim)


def _bucket_members(kv: tuple[int, Iterable[Any]], max_bucket: int) -> Iterator[tuple[str, Any]]:
    """One shard -> (node, flag + bucket key) per member of each bucket of 2+; (node, slim) per sketch.

    As in :func:`~newsflow.core.dedupe.bucket_pairs`, the first ``max_bucket`` members
    (sorted; flag ``_HEAD``) are paired with every member, later ones (``_TAIL``) with
    those only. A bucket of earlier-run documents only has no pair to check.
    """
    buckets: dict[bytes, list[bytes]] = collections.defaultdict(list)
    for value in kv[1]:
        if isinstance(value, bytes):
            buckets[value[:_BUCKET_KEY_BYTES]].append(value)
        else:  # (node, slim): the node's own sketch, passed on
            yield value
    for key, entries in buckets.items():
        if len(entries) < 2:
            continue
        items = sorted({e[_BUCKET_KEY_BYTES:].decode("utf-8") for e in entries})
        if len(items) < 2 or all(map(is_earlier, items)):
            continue
        if len(items) > max_bucket:
            counter("dedupe_oversized_buckets").inc()
            yield pvalue.TaggedOutput(_WARN, ("dedupe_oversized_buckets", 1))
        for j, node in enumerate(items):
            yield node, (_HEAD if j < max_bucket else _TAIL) + key


def _send_to_buckets(kv: tuple[str, Iterable[Any]]) -> Iterator[tuple[bytes, tuple[str, Any, bytes]]]:
    """At a node: (bucket key, (node, slim, all its memberships packed)) for each bucket of 2+ it is in."""
    node, values = kv
    slim, memberships = None, []
    for v in values:
        if isinstance(v, bytes):
            memberships.append(v)
        else:
            slim = v
    if slim is None or not memberships:
        return
    memberships.sort()
    # one bytes object (length + flag + key per bucket): far lighter to shuffle than a tuple of them
    packed = b"".join(bytes((len(m),)) + m for m in memberships)
    for m in memberships:
        part = m[-1] % _CHECK_PARTS  # last key byte: a digest byte, so the parts are even
        value = (m[1:], (node, slim, packed))
        yield value if part == 0 else pvalue.TaggedOutput(f"part{part}", value)


class _Member(NamedTuple):
    node: str
    fp: Fingerprint  # shingle count and sketch
    chars: int  # text length
    buckets: dict[bytes, bool]  # bucket key -> head member there
    days: tuple[int, ...]  # days of the group's documents (empty: an earlier run's document only)


def _member(value: tuple[str, Any, bytes]) -> _Member:
    node, slim, packed = value
    buckets, i = {}, 0
    while i < len(packed):
        end = i + 1 + packed[i]
        buckets[packed[i + 2 : end]] = packed[i + 1 : i + 2] == _HEAD
        i = end
    return _Member(node, _slim_fp(slim), slim[2], buckets, tuple(slim[3]))


def _verify_bucket(
    kv: tuple[bytes, Iterable[Any]], params: MatchParams, max_bucket: int, window: int | None = None
) -> Iterator[Any]:
    """The candidate pairs of one bucket, each checked on sketches in the first bucket it is a candidate of.

    Outputs as :func:`_verify_pair`. The head members (at most ``max_bucket``) are held in
    memory; tail members, only in buckets larger than that, are streamed in a second pass.
    """
    key, values = kv
    head = sorted((m for m in map(_member, values) if m.buckets[key]), key=lambda m: m.node)
    for j, b in enumerate(head):
        for a in head[:j]:
            yield from _verify_pair(a, b, key, params, window)
    if len(head) >= max_bucket:
        for value in values:
            b = _member(value)
            if not b.buckets[key]:
                for a in head:
                    yield from _verify_pair(a, b, key, params, window)


def _verify_pair(a: _Member, b: _Member, key: bytes, params: MatchParams, window: int | None = None) -> Iterator[Any]:
    """Symmetric match (a, b) (main), ``contained`` (small, (sim, big)) or ``align`` (a, b); a.node < b.node.

    A pair found in several buckets is checked only in the smallest bucket key where it
    is a candidate (at least one of the two is a head member), so once. An earlier run's
    document is a candidate only for groups with a document within ``window`` days of it.
    """
    if is_earlier(a.node) and is_earlier(b.node):  # both kept already
        return
    if window is not None and not _in_window(a, b, window):
        return
    if min(k for k in a.buckets.keys() & b.buckets.keys() if a.buckets[k] or b.buckets[k]) != key:
        return
    kind, sim = sketch_kind(a.fp, b.fp, params, a.chars, b.chars)
    if not kind:
        return
    if kind == ALIGN:
        yield pvalue.TaggedOutput(ALIGN, (a.node, b.node))
        return
    counter(f"dedupe_{kind}_matches").inc()
    if kind == CONTAINMENT:
        _, small, big, sim = _edge(kind, sim, a.node, a.fp.shingles, b.node, b.fp.shingles)
        yield pvalue.TaggedOutput(CONTAINMENT, (small, (sim, big)))
    else:
        yield a.node, b.node


def _in_window(a: _Member, b: _Member, window: int) -> bool:
    """Whether a pair may match across runs: an earlier run's document only within ``window`` days of a document."""
    for old, new in ((a, b), (b, a)):
        if is_earlier(old.node) and not old.days and new.days:
            return within_days(node_day(old.node), new.days, window)
    return True


def pair_edge(
    a: str, near_a: NearDoc, b: str, near_b: NearDoc, params: MatchParams
) -> tuple[str, str, str, float] | None:
    """The edge a verified candidate pair makes, or None.

    ``("jaccard" | "edit", a, b, similarity)`` (symmetric: the two texts are
    copies of each other) or ``("containment", contained, container,
    similarity)`` (the shorter text is inside the longer one; the transform
    then keeps only the contained text's best container, so a standard
    paragraph found in several articles cannot bridge them into one cluster).
    The transform computes the same in two steps (sketches for every pair,
    texts only for pairs that need the alignment: :func:`_verify_bucket`).
    """
    kind, sim = match_kind(near_a.fp, near_b.fp, params, near_a.text, near_b.text)
    return _edge(kind, sim, a, near_a.fp.shingles, b, near_b.fp.shingles)


def _edge(
    kind: str, sim: float, a: str, shingles_a: int, b: str, shingles_b: int
) -> tuple[str, str, str, float] | None:
    if not kind:
        return None
    if kind == CONTAINMENT:
        small, big = (a, b) if shingles_a < shingles_b else (b, a)
        return kind, small, big, sim
    return kind, a, b, sim


def _both_ends(pair: tuple[str, str]) -> Iterator[tuple[str, tuple[str, str]]]:
    yield pair[0], pair
    yield pair[1], pair


def _text_sides(kv: tuple[str, dict[str, list[Any]]]) -> Iterator[tuple[tuple[str, str], str]]:
    """At node x: its text, sent to each pair that needs it (nodes without such pairs send nothing)."""
    _, g = kv
    if not g["payload"] or not g["pairs"]:
        return
    text = g["payload"][0]
    for pair in sorted(set(g["pairs"])):
        yield pair, text


def _verify_texts(kv: tuple[tuple[str, str], Iterable[str]], params: MatchParams) -> Iterator[tuple[str, str]]:
    """A pair only alignment can decide: (a, b) when the texts are copies with character noise."""
    (a, b), texts = kv
    texts = sorted(texts)
    if len(texts) == 2 and edit_similarity(texts[0], texts[1], params.edit_min_chars) >= params.edit_threshold:
        counter("dedupe_edit_matches").inc()
        yield a, b


def _best_of(choices: Iterable[tuple[float, str]]) -> tuple[float, str]:
    best = None
    for c in choices:
        best = c if best is None else best_container(best, c)
    assert best is not None
    return best


# ---------------------------------------------------------------------------- 5. components


def _both_ways(edge: tuple[str, str]) -> Iterator[tuple[str, str]]:
    u, v = edge
    if u != v:
        yield u, v
        yield v, u


def _large_star(kv: tuple[str, Iterable[str]]) -> Iterator[tuple[str, str]]:
    """Connect every larger neighbor of u to the smallest node of u's neighborhood (both directions)."""
    u, nbrs = kv
    ns = set(nbrs)
    m = min(ns | {u})
    for v in ns:
        if v > u and v != m:
            yield v, m
            yield m, v


def _small_star(kv: tuple[str, Iterable[str]]) -> Iterator[tuple[str, str]]:
    """Connect u and its smaller neighbors to the smallest of them (both directions)."""
    u, nbrs = kv
    small = {v for v in nbrs if v < u} | {u}
    m = min(small)
    for v in small:
        if v != m:
            yield v, m
            yield m, v


def _parent(kv: tuple[str, Iterable[str]]) -> Iterator[Any]:
    """(u, smallest neighbor) when it is smaller than u.

    Converged components are stars around their smallest node: a node with a smaller
    neighbor has no other. One that has (tag ``warnings``) shows a component the rounds
    did not finish, which may end with more than one keeper.
    """
    u, nbrs = kv
    ns = set(nbrs)
    m = min(ns | {u})
    if m < u:
        if len(ns) > 1:
            counter("dedupe_cc_not_converged").inc()
            yield pvalue.TaggedOutput(_WARN, ("dedupe_cc_not_converged", 1))
        yield u, m


def _jump(kv: tuple[str, dict[str, list[str]]]) -> Iterator[tuple[str, str]]:
    """Pointer jumping: every child of x now points at x's parent (or at x when x is a root)."""
    x, g = kv
    up = g["parent"][0] if g["parent"] else x
    for child in g["children"]:
        yield child, up


def _check_roots(kv: tuple[str, dict[str, list[str]]]) -> Iterator[Any]:
    """Keep only (child, root) pairs whose target is a root; others stay kept (unresolved, tag ``warnings``)."""
    x, g = kv
    if g["parent"]:
        counter("dedupe_cc_unresolved").inc(len(g["children"]))
        if g["children"]:
            yield pvalue.TaggedOutput(_WARN, ("dedupe_cc_unresolved", len(g["children"])))
        return
    for child in g["children"]:
        yield child, x


class _ComponentsResult(NamedTuple):
    keepers: beam.PCollection  # (node, component keeper) for every non-keeper node
    warnings: beam.PCollection  # (counter, n): nodes left unresolved, nodes of unfinished components


class _Components(beam.PTransform):
    """(node, neighbor) edges -> (node, component keeper) for every non-keeper node, and warnings."""

    def __init__(self, rounds: int, jumps: int = 3) -> None:
        super().__init__()
        self._rounds = rounds
        self._jumps = jumps

    def expand(self, edges: beam.PCollection) -> _ComponentsResult:
        # every step emits each edge in both directions, so each GroupByKey sees a node's whole neighborhood
        edges = edges | "BothWays" >> beam.FlatMap(_both_ways)
        for r in range(self._rounds):
            edges = (
                edges
                | f"LargeGroup{r}" >> beam.GroupByKey()
                | f"LargeStar{r}" >> beam.FlatMap(_large_star)
                | f"SmallGroup{r}" >> beam.GroupByKey()
                | f"SmallStar{r}" >> beam.FlatMap(_small_star)
            )
        found = (
            edges
            | "ParentGroup" >> beam.GroupByKey()
            | "Parent" >> beam.FlatMap(_parent).with_outputs(_WARN, main="parents")
        )
        parents = found.parents
        for r in range(self._jumps + 1):
            by_child = parents
            by_parent = parents | f"ByParent{r}" >> beam.Map(lambda kv: (kv[1], kv[0]))
            grouped = {"parent": by_child, "children": by_parent} | f"JumpJoin{r}" >> beam.CoGroupByKey()
            if r < self._jumps:
                parents = grouped | f"Jump{r}" >> beam.FlatMap(_jump)
            else:
                checked = grouped | "CheckRoots" >> beam.FlatMap(_check_roots).with_outputs(_WARN, main="keepers")
        warnings = (found[_WARN], checked[_WARN]) | "ComponentWarnings" >> beam.Flatten()
        return _ComponentsResult(checked.keepers, warnings)


# ---------------------------------------------------------------------------- 6. resolve


def _to_keeper(kv: tuple[str, dict[str, list[Any]]]) -> Iterator[tuple[str, tuple[str, tuple[Any, ...]]]]:
    node, g = kv
    for keeper in g["keeper"]:
        for fp in g["sig"][:1]:
            yield keeper, (node, fp)


def _similarity(kv: tuple[str, dict[str, list[Any]]], params: MatchParams) -> Iterator[tuple[str, Any]]:
    keeper, g = kv
    kfp = _slim_fp(g["sig"][0]) if g["sig"] else None
    for node, fp in g["members"]:
        sim = verify_pair(_slim_fp(fp), kfp, params)[1] if kfp is not None else 0.0
        yield node, (keeper, sim)


_RESOLVE_PARTS = 2


def _node_part(kv: tuple[str, Any], parts: int) -> int:
    """Which part of the resolve join a node's elements go to (the same for all four inputs)."""
    return zlib.crc32(kv[0].encode("utf-8")) % parts


class _ResolveFn(beam.DoFn):
    """Per representative: kept doc + index row, or near duplicate; plus its exact copies."""

    def __init__(self, write_index: bool) -> None:
        self._write_index = write_index

    def process(self, kv: tuple[str, dict[str, list[Any]]]) -> Iterator[Any]:
        node, g = kv
        if not g["rep"]:
            return
        rep = g["rep"][0]
        label = g["label"][0] if g["label"] else None
        if label is not None:
            keeper, sim = label
            kept_id = kept_id_of(keeper)
            if rep["doc"] is not None:
                counter("dedupe_near_duplicates").inc()
                yield pvalue.TaggedOutput("duplicates", _duplicate(_unpack_doc(rep["doc"]), kept_id, "near", sim))
            for blob in g["members"]:
                yield pvalue.TaggedOutput("duplicates", _duplicate(_unpack_doc(blob), kept_id, "near", sim))
            return
        kept_id = kept_id_of(node)
        for blob in g["members"]:
            yield pvalue.TaggedOutput("duplicates", _duplicate(_unpack_doc(blob), kept_id, "exact", 1.0))
        if rep["doc"] is None:
            return
        doc = _unpack_doc(rep["doc"])
        counter("dedupe_kept").inc()
        yield doc
        if self._write_index:
            fp = Fingerprint._make(g["sig"][0]) if g["sig"] else None
            yield pvalue.TaggedOutput("index", index_row(doc, date_partition(doc["published_at"]), rep["exact"], fp))


# ---------------------------------------------------------------------------- the transform


def _merge_parts(parts: list[Any], tags: tuple[str, ...]) -> dict[str, beam.PCollection]:
    """Per output tag, one PCollection from the parts a split grouping ran in (``All<Tag>``)."""
    return {tag: [part[tag] for part in parts] | f"All{tag.title()}" >> beam.Flatten() for tag in tags}


class Dedupe(beam.PTransform):
    """Exact + near-duplicate removal with a deterministic keeper per cluster.

    Args:
      config: the ``dedupe`` settings (:class:`~newsflow.config.DedupeConfig`).
      against: earlier output folder(s) or index folder(s), comma-separated;
        documents of this run that duplicate one of them are removed with
        ``kept_id`` naming the earlier document.
    """

    def __init__(self, config: DedupeConfig = DedupeConfig(), against: str | None = None) -> None:  # noqa: B008
        super().__init__()
        config.validate()
        self._cfg = config
        self._against = against

    def expand(self, docs: beam.PCollection) -> DedupeResult:
        cfg = self._cfg
        p = docs.pipeline
        if not cfg.enabled:
            return DedupeResult(
                docs,
                p | "NoDuplicates" >> beam.Create([]),
                p | "NoIndex" >> beam.Create([]),
                p | "NoWarnings" >> beam.Create([]),
            )
        keyed = docs | "ExactKey" >> beam.Map(_key_doc, cfg.exact)
        if self._against:
            from newsflow.io.dedupe_index import ReadDedupeIndex, index_settings

            # the index is read for the union of the windows around the run's dates
            days = (
                docs
                | "PublishedDay" >> beam.Map(lambda d: published_day(d["published_at"]))
                | "RunDays" >> beam.CombineGlobally(_SortedDays()).without_defaults()
            )
            entries = p | "ReadIndex" >> ReadDedupeIndex(
                self._against,
                cfg.num_perm,
                cfg.index_retention_days,
                days=beam.pvalue.AsSingleton(days, default_value=()),
                settings=index_settings(cfg),
            )
            keyed = (keyed, entries | "IndexKey" >> beam.Map(_key_entry)) | "WithIndex" >> beam.Flatten()
        exact = (
            keyed
            | "GroupExact" >> beam.GroupByKey()
            | "ExactGroups" >> beam.ParDo(_ExactGroupFn(cfg.index_retention_days)).with_outputs(_MEMBER, main=_REP)
        )
        reps, members = exact[_REP], exact[_MEMBER]
        to_resolve = reps | "RepsToResolve" >> beam.Map(_without_text) if self._against else reps
        parts: dict[str, beam.PCollection] = {"rep": to_resolve, "members": members}
        warnings: list[beam.PCollection] = []
        if cfg.near:
            boiler = None
            if cfg.boilerplate_min_docs:
                boiler = beam.pvalue.AsSingleton(
                    reps
                    | "RepLines" >> beam.FlatMap(_rep_lines)
                    | "CountLines" >> beam.CombinePerKey(sum)
                    | "Recurring" >> beam.Filter(lambda kv, k: kv[1] >= k, cfg.boilerplate_min_docs)
                    | "LineKeys" >> beam.Keys()
                    | "Boilerplate" >> beam.CombineGlobally(_ToFrozenSet()),
                )
            sig_fn = _SignatureFn(cfg)
            near = reps | "Signatures" >> (
                beam.ParDo(sig_fn, boilerplate=boiler) if boiler else beam.ParDo(sig_fn)
            ).with_outputs("bands", "slim", "text", main="fp")
            sigs = near.fp
            params = _match_params(cfg)
            bucketed = (
                near.bands
                | "GroupBands" >> beam.GroupByKey()
                | "BucketMembers" >> beam.FlatMap(_bucket_members, cfg.max_bucket).with_outputs(_WARN, main="members")
            )
            warnings.append(bucketed[_WARN])
            sent = (
                bucketed.members
                | "GroupByNode" >> beam.GroupByKey()
                | "SendToBuckets"
                >> beam.FlatMap(_send_to_buckets).with_outputs(
                    *(f"part{i}" for i in range(1, _CHECK_PARTS)), main="part0"
                )
            )
            parts_checked = [
                sent[f"part{i}"]
                | f"GroupByBucket{i}" >> beam.GroupByKey()
                | f"VerifySketches{i}"
                >> beam.ParDo(_verify_bucket, params, cfg.max_bucket, cfg.index_retention_days).with_outputs(
                    ALIGN, CONTAINMENT, main="similar"
                )
                for i in range(_CHECK_PARTS)
            ]
            checked = _merge_parts(parts_checked, ("similar", ALIGN, CONTAINMENT))
            similar = checked["similar"]
            if cfg.edit_threshold > 0:
                # texts cross one shuffle whole; only those of pairs to align cross a second one
                edits = (
                    {"pairs": checked[ALIGN] | "AlignEnds" >> beam.FlatMap(_both_ends), "payload": near.text}
                    | "JoinText" >> beam.CoGroupByKey()
                    | "TextSides" >> beam.FlatMap(_text_sides)
                    | "GroupAligned" >> beam.GroupByKey()
                    | "VerifyTexts" >> beam.FlatMap(_verify_texts, params)
                )
                similar = (similar, edits) | "SimilarAndEdits" >> beam.Flatten()
            container = (
                checked[CONTAINMENT]
                | "BestContainer" >> beam.CombinePerKey(_best_of)
                | "ContainerPairs" >> beam.Map(lambda kv: (kv[0], kv[1][1]))
            )
            edges = (similar, container) | "AllEdges" >> beam.Flatten()
            keepers, cc_warnings = edges | "Components" >> _Components(cfg.cc_rounds)
            warnings.append(cc_warnings)
            # the keeper similarity needs sketches only (not signatures)
            to_keeper = (
                {"keeper": keepers, "sig": near.slim}
                | "JoinNodeSig" >> beam.CoGroupByKey()
                | "ToKeeper" >> beam.FlatMap(_to_keeper)
            )
            labels = (
                {"members": to_keeper, "sig": near.slim}
                | "JoinKeeperSig" >> beam.CoGroupByKey()
                | "Similarity" >> beam.FlatMap(_similarity, params)
            )
            parts["label"] = labels
            parts["sig"] = sigs
        else:
            parts["label"] = p | "NoLabels" >> beam.Create([])
            parts["sig"] = p | "NoSigs" >> beam.Create([])
        # the resolve join is split by node like the bucket shuffle: a local runner regroups one part at a time
        split = {
            name: pc | f"Split{name.title()}" >> beam.Partition(_node_part, _RESOLVE_PARTS)
            for name, pc in parts.items()
        }
        resolved = [
            {name: split[name][i] for name in parts}
            | f"JoinResolve{i}" >> beam.CoGroupByKey()
            | f"Resolve{i}" >> beam.ParDo(_ResolveFn(cfg.write_index)).with_outputs("duplicates", "index", main="kept")
            for i in range(_RESOLVE_PARTS)
        ]
        merged = _merge_parts(resolved, ("kept", "duplicates", "index"))
        return DedupeResult(merged["kept"], merged["duplicates"], merged["index"], _warnings(p, warnings))


def _warnings(p: beam.Pipeline, parts: list[beam.PCollection]) -> beam.PCollection:
    """``{"counter", "count", "meaning"}`` per warning counter that is not zero, from its (name, n) parts."""
    if not parts:
        return p | "NoWarnings" >> beam.Create([])
    return (
        parts
        | "AllWarnings" >> beam.Flatten()
        | "SumWarnings" >> beam.CombinePerKey(sum)
        | "Warnings" >> beam.Map(lambda kv: {"counter": kv[0], "count": int(kv[1]), "meaning": WARNINGS[kv[0]]})
    )
