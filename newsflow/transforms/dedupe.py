"""Dedupe: remove exact and near-duplicate documents, keeping one deterministic copy per cluster.

::

    result = docs | Dedupe(DedupeConfig(), against="gs://bucket/out/2024-07-01")
    result.kept        # Doc dicts that survive, unchanged
    result.duplicates  # {doc_id, source_path, doc_index, kept_id, method, similarity, published_at, lang}
    result.index       # rows of INDEX_SCHEMA describing what this run kept (for later runs)
    result.warnings    # {counter, count, meaning} per decision that may be wrong (none: empty)

``Dedupe.expand`` is the algorithm of docs/dedupe.md, one named sub-transform per stage; each rule is a
pure function of :mod:`newsflow.core.dedupe`, and :func:`newsflow.core.dedupe.dedupe` runs the same rules
in memory (the tests' oracle):

1. :class:`ExactGroups`: group by the normalized text's hash; the smallest node key is the representative.
2. :class:`Boilerplate`: line keys found in ``boilerplate_min_docs`` representatives or more.
3. :class:`Fingerprints`: MinHash signature, sketch and bucket keys of every representative long enough.
4. :class:`CandidatePairs`: LSH buckets of two or more members, each member with its sketch and the buckets
   where it is a head member (so each pair is checked once: :func:`~newsflow.core.dedupe.checked_in`).
5. :class:`VerifiedEdges`: the pairs that match (sketches; texts for the few only alignment decides), and
   each contained text's best container.
6. :class:`ConnectedComponents`: large-star/small-star rounds, pointer jumping and a check; every node of a
   cluster learns its keeper (and the keeper's sketch, for the similarity of the duplicates row).
7. :class:`Resolve`: each representative and its exact copies become a kept document or duplicate rows.

Nothing is collected on the driver. Documents of an earlier run's index (``against``) join stages 1, 4 and
6 with node keys that sort first, so they always win and are never emitted; one is a candidate only for
documents dated at most ``index_retention_days`` from it.
"""

from __future__ import annotations

import collections
import pickle
import typing
import zlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam import coders, pvalue
from apache_beam.typehints import KV, List, Tuple
from apache_beam.utils.windowed_value import WindowedValue

from newsflow.config import DedupeConfig
from newsflow.core.dedupe import (
    ALIGN,
    CONTAINMENT,
    DOC,
    EARLIER,
    Fingerprint,
    MatchParams,
    MinHasher,
    NearDoc,
    best_container,
    bucket_keys,
    checked_in,
    edge,
    edit_similarity,
    exact_group,
    head_flags,
    in_window,
    is_earlier,
    keeper_similarity,
    large_star,
    line_keys,
    match_params,
    parent_of,
    published_day,
    resolve,
    sketch_kind,
    small_star,
    text_keys,
)
from newsflow.core.dedupe.reference import doc_node, near_of
from newsflow.io.index_codec import index_row
from newsflow.io.tables import date_partition
from newsflow.memory import start_releasing
from newsflow.metrics import counter

__all__ = [
    "WARNINGS",
    "Boilerplate",
    "CandidatePairs",
    "ConnectedComponents",
    "Dedupe",
    "DedupeResult",
    "ExactGroups",
    "Fingerprints",
    "GroupByKeyInParts",
    "Member",
    "NodeSketch",
    "Resolve",
    "VerifiedEdges",
]

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


# ---------------------------------------------------------------------------- records


class NodeSketch(NamedTuple):
    """A node's sketch as it travels to its LSH buckets."""

    shingles: int
    sketch: bytes
    chars: int  # length of the text kept for the alignment rule (0: none)
    days: Sequence[int]  # days of the group's documents (empty: an earlier run's document only)


class Member(NamedTuple):
    """A node as one of its LSH buckets receives it: its sketch and every bucket (of 2+) it is in."""

    node: str
    shingles: int
    sketch: bytes
    chars: int
    days: Sequence[int]
    buckets: bytes  # its bucket keys, sorted, concatenated (each BUCKET_KEY_BYTES long)
    heads: int  # bit i set: the node is a head member of its i-th bucket


def _flags(member: Member) -> dict[bytes, bool]:
    """bucket key -> whether the member is a head member there.

    A function, not a method: a worker that decodes a row it has no registered class for builds a class of the
    same fields from the schema, without this module's methods.
    """
    n, keys, heads = BUCKET_KEY_BYTES, member.buckets, member.heads
    return {keys[i : i + n]: bool(heads >> (i // n) & 1) for i in range(0, len(keys), n)}


BUCKET_KEY_BYTES = 10
"""Length of every LSH bucket key: band number (2 bytes) + 8-byte digest, or ff ff + the 8-byte lede key.
A member's buckets travel as one bytes value, not a list of small ones: a copy of it reaches each of its
buckets, and a local runner holds every copy decoded while it groups them."""


def _register(record: type) -> None:
    """Give a record Beam's row coder (its annotations resolved first: this module's are strings)."""
    record.__annotations__ = typing.get_type_hints(record)
    coders.registry.register_coder(record, coders.RowCoder)


for _record in (Fingerprint, NodeSketch, Member):
    _register(_record)

Edge = Tuple[str, str]
Warning_ = Tuple[str, int]


class DedupeResult(NamedTuple):
    """The outputs of :class:`Dedupe`.

    ``warnings`` holds ``{"counter", "count", "meaning"}`` dicts for the counters of :data:`WARNINGS` that
    are not zero, one per occurrence group (the manifest adds them up per counter): the same numbers as the
    Beam counters, but as data, so they reach the run's manifest on every runner.
    """

    kept: beam.PCollection
    duplicates: beam.PCollection
    index: beam.PCollection
    warnings: beam.PCollection


def _warning(name: str, n: int) -> dict[str, Any]:
    return {"counter": name, "count": int(n), "meaning": WARNINGS[name]}


# ---------------------------------------------------------------------------- 1. exact groups


def _pack_doc(doc: dict[str, Any], line_keys_: Sequence[bytes] | None = None) -> bytes:
    """A document as the one bytes value it is inside Dedupe (``_unpack_doc`` reverses it), with its text's
    :func:`~newsflow.core.dedupe.line_keys` in front (computed here when not given).

    A document crosses two shuffles here (exact groups, resolve) and is never looked into
    in between but for its text: one bytes value is copied by every coder without decoding a
    dict of fifteen fields, and held in a local runner's buffers as one object. Its line keys
    are made with its exact key, from the same normalization of the text, so counting boilerplate
    lines neither normalizes the text again nor unpickles the document.
    """
    keys = line_keys(doc.get("text") or "") if line_keys_ is None else line_keys_
    head = len(keys).to_bytes(4, "big") + b"".join(keys)
    if len(head) != 4 + LINE_KEY_BYTES * len(keys):
        raise ValueError(f"line keys must be {LINE_KEY_BYTES} bytes long")
    return head + pickle.dumps(doc, protocol=pickle.HIGHEST_PROTOCOL)


def _line_keys_of(blob: bytes) -> list[bytes]:
    """The line keys :func:`_pack_doc` put in front of a document."""
    n = int.from_bytes(blob[:4], "big")
    return [blob[4 + i * LINE_KEY_BYTES : 4 + (i + 1) * LINE_KEY_BYTES] for i in range(n)]


def _unpack_doc(blob: bytes) -> dict[str, Any]:
    """The document :func:`_pack_doc` packed."""
    start = 4 + LINE_KEY_BYTES * int.from_bytes(blob[:4], "big")
    return pickle.loads(memoryview(blob)[start:])  # noqa: S301 (bytes this transform packed itself)


def _key_doc(doc: dict[str, Any], exact: bool) -> tuple[bytes, tuple[str, str, Any]]:
    node = doc_node(doc)
    text = doc.get("text") or ""
    if exact:
        key, lines = text_keys(text)
    else:
        key, lines = b"id:" + node.encode("utf-8"), line_keys(text)
    return key, (DOC, node, _pack_doc(doc, lines))


def _key_entry(entry: dict[str, Any]) -> tuple[bytes, tuple[str, str, Any]]:
    fp = entry["fp"]
    return entry["exact"], (EARLIER, entry["node"], {**entry, "fp": None if fp is None else tuple(fp)})


def _text_of_blob(blob: bytes) -> str:
    return _unpack_doc(blob).get("text") or ""


class _ExactGroupFn(beam.DoFn):
    """One exact group -> its representatives (main) and its other documents (tag ``members``).

    See :func:`newsflow.core.dedupe.exact_group`.
    """

    def __init__(self, window: int) -> None:
        self._window = window

    def setup(self) -> None:
        start_releasing()

    def process(self, kv: tuple[bytes, Iterable[tuple[str, str, Any]]]) -> Iterator[Any]:
        group = exact_group(kv[0], kv[1], self._window, _text_of_blob)
        if group.self_matches:
            counter("dedupe_index_self_matches").inc(group.self_matches)
        if group.outside_window:
            counter("dedupe_index_outside_window").inc(group.outside_window)
        yield from group.reps
        for member in group.members:
            counter("dedupe_exact_copies").inc()
            yield pvalue.TaggedOutput("members", member)


class ExactGroupsResult(NamedTuple):
    reps: beam.PCollection  # (node, rep dict): one per exact group (plus earlier entries outside every window)
    members: beam.PCollection  # (representative node, packed document) of every other document


class ExactGroups(beam.PTransform):
    """Documents (and an earlier run's index entries) -> exact groups' representatives and members."""

    def __init__(self, cfg: DedupeConfig, entries: beam.PCollection | None = None) -> None:
        super().__init__()
        self._cfg = cfg
        self._entries = entries

    def expand(self, docs: beam.PCollection) -> ExactGroupsResult:
        keyed = docs | "ExactKey" >> beam.Map(_key_doc, self._cfg.exact).with_output_types(
            Tuple[bytes, Tuple[str, str, Any]]
        )
        if self._entries is not None:
            entries = self._entries | "IndexKey" >> beam.Map(_key_entry).with_output_types(
                Tuple[bytes, Tuple[str, str, Any]]
            )
            keyed = (keyed, entries) | "WithIndex" >> beam.Flatten()
        groups = (
            keyed
            | "GroupExact" >> beam.GroupByKey()
            | "Representatives"
            >> beam.ParDo(_ExactGroupFn(self._cfg.index_retention_days)).with_outputs("members", main="reps")
        )
        return ExactGroupsResult(groups.reps, groups.members)


def _rep_text(rep: dict[str, Any]) -> str | None:
    """The text a representative is fingerprinted from: its document's, or its group's first document's."""
    return _text_of_blob(rep["doc"]) if rep["doc"] is not None else rep.get("text")


def _without_text(kv: tuple[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """A representative without the text it carried for near matching (resolving does not need it)."""
    node, rep = kv
    if "text" not in rep:
        return kv
    return node, {k: v for k, v in rep.items() if k != "text"}


# ---------------------------------------------------------------------------- 2. boilerplate


LINE_KEY_BYTES = 8
"""Length of a line key (:func:`newsflow.core.dedupe.line_keys`)."""

_LINE_SHARDS = 4096
"""Line counts cross their shuffle gathered by the first 12 bits of the key: a few thousand groups, each a few
hundred thousand keys at most even for a billion distinct lines."""

_BATCH_LINES = 1 << 19
"""Distinct line keys a counting DoFn holds (about 50 MB) before it sends its counts on."""


def _line_shard(key: bytes) -> int:
    return int.from_bytes(key[:2], "big") >> 4


def pack_counts(counts: Iterable[tuple[bytes, int]]) -> bytes:
    """(8-byte line key, count) pairs as one bytes value: each key followed by its count (4 bytes, big-endian)."""
    out = bytearray()
    for key, n in counts:
        if len(key) != LINE_KEY_BYTES:
            raise ValueError(f"line key of {len(key)} bytes, expected {LINE_KEY_BYTES}")
        out += key
        out += n.to_bytes(4, "big")
    return bytes(out)


def unpack_counts(blob: bytes) -> Iterator[tuple[bytes, int]]:
    """The pairs :func:`pack_counts` packed."""
    step = LINE_KEY_BYTES + 4
    if len(blob) % step:
        raise ValueError(f"packed line counts of {len(blob)} bytes, not a multiple of {step}")
    for i in range(0, len(blob), step):
        yield blob[i : i + LINE_KEY_BYTES], int.from_bytes(blob[i + LINE_KEY_BYTES : i + step], "big")


class _LineCountsFn(beam.DoFn):
    """(node, rep) -> (shard, packed line counts): how many representatives hold each line key.

    Nearly every line is in one document, so one element per line key would be most of what this stage
    shuffles; the counts of a bundle are gathered per (window, shard) and sent at the bundle's end (or every
    :data:`_BATCH_LINES` distinct keys), one bytes value per shard. An index entry alone has no text, no lines.
    """

    def start_bundle(self) -> None:
        self._counts: dict[Any, collections.Counter[bytes]] = collections.defaultdict(collections.Counter)
        self._held = 0

    def process(self, kv: tuple[str, dict[str, Any]], window: Any = beam.DoFn.WindowParam) -> Iterator[Any]:
        rep = kv[1]
        if rep["doc"] is not None:
            keys = _line_keys_of(rep["doc"])
        else:
            text = rep.get("text")
            if not text:
                return
            keys = line_keys(text)
        counts = self._counts[window]
        before = len(counts)
        counts.update(keys)
        self._held += len(counts) - before
        if self._held >= _BATCH_LINES:
            yield from self._flush()

    def finish_bundle(self) -> Iterator[Any]:
        yield from self._flush()

    def _flush(self) -> Iterator[WindowedValue]:
        for window, counts in self._counts.items():
            shards: dict[int, list[tuple[bytes, int]]] = collections.defaultdict(list)
            for key, n in counts.items():
                shards[_line_shard(key)].append((key, n))
            for shard, pairs in sorted(shards.items()):
                yield WindowedValue((shard, pack_counts(pairs)), window.max_timestamp(), (window,))
        self.start_bundle()


def _recurring(kv: tuple[int, Iterable[bytes]], min_docs: int) -> Iterator[bytes]:
    """One shard's packed counts -> its line keys counted ``min_docs`` times or more, sorted."""
    total: collections.Counter[bytes] = collections.Counter()
    for blob in kv[1]:
        for key, n in unpack_counts(blob):
            total[key] += n
    yield from sorted(key for key, n in total.items() if n >= min_docs)


class Boilerplate(beam.PTransform):
    """Representatives -> the line keys found in ``min_docs`` of them or more (a side input of Fingerprints)."""

    def __init__(self, min_docs: int) -> None:
        super().__init__()
        self._min_docs = min_docs

    def expand(self, reps: beam.PCollection) -> beam.PCollection:
        return (
            reps
            | "CountLines" >> beam.ParDo(_LineCountsFn()).with_output_types(KV[int, bytes])
            | "GroupShards" >> beam.GroupByKey()
            | "Recurring" >> beam.FlatMap(_recurring, self._min_docs).with_output_types(bytes)
        )


# ---------------------------------------------------------------------------- grouping in parts


def _bucket_part(key: bytes, parts: int) -> int:
    """The part of a bucket key: its last byte, a digest byte, so the parts are even."""
    return key[-1] % parts


def _node_part(node: str, parts: int) -> int:
    """The part of a node key."""
    return zlib.crc32(node.encode("utf-8")) % parts


class GroupByKeyInParts(beam.PTransform):
    """``GroupByKey`` as ``parts`` groupings, of the keys ``part_of`` sends to each: a list of their outputs.

    A local runner regroups one grouping at a time and runs the step after each on its own, so its peak
    memory holds one part's copy; apply the next step to each part (``parts`` 1: one plain grouping).
    """

    def __init__(self, parts: int, part_of: Any) -> None:
        super().__init__()
        self._parts = parts
        self._part_of = part_of

    def expand(self, pcoll: beam.PCollection) -> list[beam.PCollection]:
        if self._parts <= 1:
            return [pcoll | "Group" >> beam.GroupByKey()]
        split = split_by_key(pcoll, self._parts, self._part_of, "Split")
        return [split[i] | f"Group{i}" >> beam.GroupByKey() for i in range(self._parts)]


def split_by_key(pcoll: beam.PCollection, parts: int, part_of: Any, label: str) -> list[beam.PCollection]:
    """``pcoll``'s (key, value) elements in ``parts`` collections by ``part_of(key, parts)``, keeping its type.

    (``beam.Partition`` would type its outputs ``Any``, so a record would be pickled in the next shuffle.)
    """
    kind = pcoll.element_type
    tags = [f"part{i}" for i in range(parts)]
    out = pcoll | label >> beam.FlatMap(_to_part, part_of, tags).with_output_types(
        kind, **dict.fromkeys(tags, kind)
    ).with_outputs(*tags)
    return [out[tag] for tag in tags]


def _to_part(kv: tuple[Any, Any], part_of: Any, tags: Sequence[str]) -> Iterator[pvalue.TaggedOutput]:
    yield pvalue.TaggedOutput(tags[part_of(kv[0], len(tags))], kv)


def _plain(label: str, pcoll: beam.PCollection) -> beam.PCollection:
    """(key, record) as (key, plain tuple): a ``CoGroupByKey`` carries values with Beam's default coder, which
    pickles a NamedTuple (about 5x slower than a plain tuple); the step after the join rebuilds the record."""
    return pcoll | label >> beam.MapTuple(lambda k, v: (k, None if v is None else tuple(v)))


def group_parts(cfg: DedupeConfig, pipeline: beam.Pipeline) -> int:
    """``cfg.group_parts``, or for 0 (auto) 4 on Beam's local runners (in-process and Prism), 1 on the others."""
    if cfg.group_parts:
        return cfg.group_parts
    runner = type(getattr(pipeline, "runner", None)).__name__
    return 4 if runner in _LOCAL_RUNNERS else 1


# the runners that hold every shuffle in memory on this machine (DirectRunner runs on Prism or in-process)
_LOCAL_RUNNERS = ("DirectRunner", "SwitchingDirectRunner", "FnApiRunner", "BundleBasedDirectRunner", "PrismRunner")


# ---------------------------------------------------------------------------- 3. fingerprints


def _shard(key: bytes) -> int:
    """The shard of a bucket key (band number or ff ff, then an 8-byte digest): its first 2 digest bytes.

    Bucket memberships cross the first LSH shuffle grouped by shard (65,536 groups), not by bucket: nearly every
    bucket has one member, and every runner pays per group.
    """
    return int.from_bytes(key[2:4], "big")


def _memberships(keys: Sequence[bytes], node: str) -> list[bytes]:
    """A node's membership of each of its buckets as the band shuffle carries it: the 10-byte key, then the node.

    One bytes value per bucket (about 70 bytes), not a pair: there are ~33 per document, and a local runner holds
    every one decoded while it groups them (a pair of a bytes and a str takes twice the memory). The node is
    encoded once for all its buckets.
    """
    for key in keys:
        if len(key) != BUCKET_KEY_BYTES:
            raise ValueError(f"bucket key of {len(key)} bytes, expected {BUCKET_KEY_BYTES} bytes")
    tail = node.encode("utf-8")
    return [key + tail for key in keys]


def _split_membership(value: bytes) -> tuple[bytes, str]:
    """(bucket key, node) of a membership value (:func:`_memberships`)."""
    return value[:BUCKET_KEY_BYTES], value[BUCKET_KEY_BYTES:].decode("utf-8")


class _FingerprintFn(beam.DoFn):
    """(node, rep) -> fingerprint (main); tagged ``bands`` (shard, memberships), ``sketches`` (node, NodeSketch)
    and ``texts`` (node, lines) for texts the alignment rule may compare. Representatives too short for near
    matching have none.

    A text is in ~33 buckets, so memberships are most of what Dedupe shuffles, and every runner pays per
    element. They are gathered per shard while a bundle is processed and sent on as one list per shard (at the
    bundle's end, or every :data:`_BATCH_MEMBERSHIPS`): a local runner that hands the whole corpus over in one
    bundle sends about one element per shard instead of one per membership; a bundle of a few documents sends
    what it would have sent anyway.
    """

    def __init__(self, cfg: DedupeConfig) -> None:
        self._cfg = cfg
        self._hasher: MinHasher | None = None

    def setup(self) -> None:
        start_releasing()
        self._hasher = MinHasher(self._cfg.num_perm, self._cfg.seed)
        self._boiler_list: list[bytes] | None = None
        self._boiler: frozenset[bytes] = frozenset()
        self.start_bundle()

    def start_bundle(self) -> None:
        self._bands: dict[Any, dict[int, list[bytes]]] = {}
        self._buffered = 0

    def _boilerplate(self, keys: list[bytes] | None) -> frozenset[bytes] | None:
        """The side input's keys as a set, built once per list the runner hands over (not per element)."""
        if keys is None:
            return None
        if keys is not self._boiler_list:
            self._boiler_list, self._boiler = keys, frozenset(keys)
        return self._boiler

    def process(
        self,
        kv: tuple[str, dict[str, Any]],
        window: Any = beam.DoFn.WindowParam,
        boilerplate: list[bytes] | None = None,
    ) -> Iterator[Any]:
        node, rep = kv
        assert self._hasher is not None
        boiler = self._boilerplate(boilerplate)
        near: NearDoc | None = near_of(rep, _rep_text(rep), self._cfg, boiler, self._hasher)
        if near is None:
            if rep["entry"] is None:
                counter("dedupe_too_short_for_near").inc()
            return
        fp = near.fp
        yield node, fp
        by_shard = self._bands.get(window)
        if by_shard is None:
            by_shard = self._bands[window] = collections.defaultdict(list)
        memberships = _memberships(bucket_keys(fp, self._cfg.bands, self._cfg.rows), node)
        for value in memberships:
            by_shard[_shard(value)].append(value)
        self._buffered += len(memberships)
        yield pvalue.TaggedOutput("sketches", (node, NodeSketch(fp.shingles, fp.sketch, len(near.text), rep["days"])))
        if near.text:
            yield pvalue.TaggedOutput("texts", (node, near.text))
        if self._buffered >= _BATCH_MEMBERSHIPS:
            yield from self._flush()

    def finish_bundle(self) -> Iterator[Any]:
        yield from self._flush()

    def _flush(self) -> Iterator[Any]:
        """The gathered memberships, one (shard, list) per shard and window, in the window they were made in."""
        for window, by_shard in self._bands.items():
            for shard, memberships in by_shard.items():
                value = WindowedValue((shard, memberships), window.max_timestamp(), (window,))
                yield pvalue.TaggedOutput("bands", value)
        self.start_bundle()


_BATCH_MEMBERSHIPS = 1 << 19
"""Memberships a fingerprint DoFn gathers before it sends them on (about 60 MB): bounds its memory when a
local runner hands it the whole corpus in one bundle."""


class FingerprintsResult(NamedTuple):
    fingerprints: beam.PCollection  # (node, Fingerprint): what the index records
    bands: beam.PCollection  # (shard, [membership, ...]): LSH band and lede key memberships, gathered per shard
    sketches: beam.PCollection  # (node, NodeSketch): what its buckets verify with, and its cluster's duplicates
    texts: beam.PCollection  # (node, normalized lines) of texts the alignment rule may compare


class Fingerprints(beam.PTransform):
    """Representatives -> fingerprints, LSH bucket keys, sketches and alignment texts (boilerplate left out)."""

    def __init__(self, cfg: DedupeConfig, boilerplate: pvalue.AsSideInput | None = None) -> None:
        super().__init__()
        self._cfg = cfg
        self._boilerplate = boilerplate

    def expand(self, reps: beam.PCollection) -> FingerprintsResult:
        fn = _FingerprintFn(self._cfg)
        par = beam.ParDo(fn, boilerplate=self._boilerplate) if self._boilerplate is not None else beam.ParDo(fn)
        typed = par.with_output_types(
            KV[str, Fingerprint],
            bands=KV[int, List[bytes]],
            sketches=KV[str, NodeSketch],
            texts=KV[str, str],
        )
        out = reps | "Fingerprint" >> typed.with_outputs("bands", "sketches", "texts", main="fps")
        return FingerprintsResult(out.fps, out.bands, out.sketches, out.texts)


# ---------------------------------------------------------------------------- 4. candidate pairs


def _bucket_members(kv: tuple[int, Iterable[list[bytes]]], max_bucket: int) -> Iterator[Any]:
    """One shard's membership lists -> (node, (bucket key, head member)) per member of each bucket of 2+ that has a
    pair to check.

    A bucket of earlier-run documents only has no pair to check. A bucket over ``max_bucket`` members is
    reported (tag ``warnings``): its tail members are compared with its head members only.
    """
    buckets: dict[bytes, list[bytes]] = collections.defaultdict(list)
    for memberships in kv[1]:
        for value in memberships:
            buckets[value[:BUCKET_KEY_BYTES]].append(value)
    for key, values in buckets.items():
        if len(values) < 2:  # nearly every bucket: its node is never decoded
            continue
        members = head_flags([_split_membership(value)[1] for value in values], max_bucket)
        if len(members) < 2 or all(is_earlier(node) for node, _ in members):
            continue
        if len(members) > max_bucket:
            counter("dedupe_oversized_buckets").inc()
            yield pvalue.TaggedOutput("warnings", ("dedupe_oversized_buckets", 1))
        for node, head in members:
            yield node, (key, head)


class _PerNodeFn(beam.DoFn):
    """Base of the steps that gather items per node over a bundle and send one (node, [item, ...]) per node and
    window: at the bundle's end, or every :data:`_BATCH_MEMBERSHIPS` items (bounds the memory a local runner's
    one-bundle input would take)."""

    def start_bundle(self) -> None:
        self._nodes: dict[tuple[Any, str], list[Any]] = collections.defaultdict(list)
        self._held = 0

    def _add(self, window: Any, node: str, item: Any) -> Iterator[WindowedValue]:
        self._nodes[(window, node)].append(item)
        self._held += 1
        if self._held >= _BATCH_MEMBERSHIPS:
            yield from self._flush()

    def finish_bundle(self) -> Iterator[Any]:
        yield from self._flush()

    def _flush(self) -> Iterator[WindowedValue]:
        for (window, node), items in self._nodes.items():
            yield WindowedValue((node, items), window.max_timestamp(), (window,))
        self.start_bundle()


class _BucketMembersFn(_PerNodeFn):
    """One shard's membership lists -> (node, [(bucket key, head member), ...]) per node in a bucket with a pair to
    check (:func:`_bucket_members`), tagged ``warnings`` for oversized buckets.

    A node is in up to 33 buckets of 2+ (a copy shares most bands with its original), in as many shards; its
    memberships are gathered over the bundle and sent on as one list per node (at the bundle's end, or every
    :data:`_BATCH_MEMBERSHIPS`), so the join with its sketch takes one element per node, not one per bucket.
    """

    def __init__(self, max_bucket: int) -> None:
        super().__init__()
        self._max_bucket = max_bucket

    def process(self, kv: tuple[int, Iterable[list[bytes]]], window: Any = beam.DoFn.WindowParam) -> Iterator[Any]:
        for out in _bucket_members(kv, self._max_bucket):
            if isinstance(out, pvalue.TaggedOutput):
                yield out
            else:
                yield from self._add(window, *out)


def _to_buckets(kv: tuple[str, dict[str, list[Any]]]) -> Iterator[tuple[bytes, Member]]:
    """At a node: (bucket key, Member) for each bucket of 2+ it is in, the member carrying all its buckets.

    ``buckets`` holds lists of (bucket key, head member) pairs (:class:`_BucketMembersFn`' flushes)."""
    node, g = kv
    if not g["sketch"] or not g["buckets"]:
        return
    sk = NodeSketch._make(g["sketch"][0])
    memberships = sorted(m for flushed in g["buckets"] for m in flushed)
    keys = [k for k, _ in memberships]  # each BUCKET_KEY_BYTES long (checked by _memberships)
    heads = sum(1 << i for i, (_, head) in enumerate(memberships) if head)
    member = Member(node, sk.shingles, sk.sketch, sk.chars, tuple(sk.days), b"".join(keys), heads)
    for key, _ in memberships:
        yield key, member


class CandidatePairsResult(NamedTuple):
    members: beam.PCollection  # (bucket key, Member) for each bucket of 2+ with a pair to check and each member
    warnings: beam.PCollection  # (counter, n): oversized buckets


class CandidatePairs(beam.PTransform):
    """Bucket memberships and sketches -> (bucket key, Member) for every member of every LSH bucket of 2+.

    Two shuffles: memberships by shard (which buckets have 2+ members, and who heads them; nearly every
    bucket has one member and every runner pays per group, so 65,536 shards, not one group per bucket), and a
    node's buckets of 2+ joined with its sketch by node, so a sketch travels once per shared bucket, not once
    per band nor per pair. :class:`VerifiedEdges` groups the members by bucket.
    """

    def __init__(self, max_bucket: int, sketches: beam.PCollection) -> None:
        super().__init__()
        self._max_bucket = max_bucket
        self._sketches = sketches

    def expand(self, bands: beam.PCollection) -> CandidatePairsResult:
        found = (
            bands
            | "GroupBands" >> beam.GroupByKey()
            | "BucketMembers"
            >> beam.ParDo(_BucketMembersFn(self._max_bucket))
            .with_output_types(KV[str, List[Tuple[bytes, bool]]], warnings=Warning_)
            .with_outputs("warnings", main="memberships")
        )
        members = (
            {"buckets": found.memberships, "sketch": _plain("PlainSketches", self._sketches)}
            | "GroupByNode" >> beam.CoGroupByKey()
            | "ToBuckets" >> beam.FlatMap(_to_buckets).with_output_types(KV[bytes, Member])
        )
        return CandidatePairsResult(members, found.warnings)


# ---------------------------------------------------------------------------- 5. verified edges


def _verify_bucket(
    kv: tuple[bytes, Iterable[Member]], params: MatchParams, max_bucket: int, window: int
) -> Iterator[Any]:
    """The candidate pairs of one bucket, each checked on sketches in the bucket :func:`checked_in` names.

    Main output (a, b) for a symmetric match; ``contained`` (small, (similarity, big)); ``align`` (a, b)
    for pairs only the texts can decide. The head members (at most ``max_bucket``) are held in memory;
    tail members, only in buckets larger than that, are streamed in a second pass.
    """
    key, values = kv
    head = sorted((s for s in map(_side, values) if s.flags[key]), key=lambda s: s.member.node)
    for j, b in enumerate(head):
        for a in head[:j]:
            yield from _verify_pair(a, b, key, params, window)
    if len(head) >= max_bucket:
        for b in map(_side, values):
            if not b.flags[key]:
                for a in head:
                    yield from _verify_pair(a, b, key, params, window)


class _Side(NamedTuple):
    """A bucket member as its pairs are checked: decoded once, not once per pair."""

    member: Member
    flags: dict[bytes, bool]  # bucket key -> head member there
    fp: Fingerprint  # its sketch as a fingerprint (what sketch_kind compares)


def _side(m: Member) -> _Side:
    return _Side(m, _flags(m), Fingerprint(m.shingles, b"", m.sketch))


def _verify_pair(sa: _Side, sb: _Side, key: bytes, params: MatchParams, window: int) -> Iterator[Any]:
    """The verdict on one candidate pair (a.node < b.node), where it is checked (see :func:`_verify_bucket`)."""
    a, b = sa.member, sb.member
    if is_earlier(a.node) and is_earlier(b.node):  # both kept already
        return
    if not in_window(a.node, a.days, b.node, b.days, window):
        return
    if checked_in(sa.flags, sb.flags) != key:
        return
    kind, sim = sketch_kind(sa.fp, sb.fp, params, a.chars, b.chars)
    if not kind:
        return
    if kind == ALIGN:
        yield pvalue.TaggedOutput(ALIGN, (a.node, b.node))
        return
    counter(f"dedupe_{kind}_matches").inc()
    if kind == CONTAINMENT:
        _, small, big, sim = edge(kind, sim, a.node, a.shingles, b.node, b.shingles)
        yield pvalue.TaggedOutput(CONTAINMENT, (small, (sim, big)))
    else:
        yield a.node, b.node


class _BothEndsFn(_PerNodeFn):
    """Pairs to align -> (node, [pair, ...]) for both nodes of each pair, gathered per node over the bundle.

    A noisy copy is often paired with several versions of its article; one list per node (sent at the bundle's
    end, or every :data:`_BATCH_MEMBERSHIPS` pairs) is one element to join with its text instead of one per pair.
    """

    def process(self, pair: tuple[str, str], window: Any = beam.DoFn.WindowParam) -> Iterator[Any]:
        for node in pair:
            yield from self._add(window, node, pair)


def _at_node(kv: tuple[str, dict[str, list[Any]]]) -> Iterator[Any]:
    """At node x: the edge to its best container (if it is contained in any), and its text for each pair to align.

    Main output (x, best container); tag ``sides`` ((a, b), text): nodes without pairs to align send no text.
    ``pairs`` holds lists of pairs (:class:`_BothEndsFn`' flushes).
    """
    x, g = kv
    if g.get("contained"):
        yield x, _best_of(g["contained"])[1]
    if g.get("text") and g.get("pairs"):
        text = g["text"][0]
        for pair in sorted({pair for pairs in g["pairs"] for pair in pairs}):
            yield pvalue.TaggedOutput("sides", (pair, text))


def _verify_texts(kv: tuple[tuple[str, str], Iterable[str]], params: MatchParams) -> Iterator[tuple[str, str]]:
    """A pair only alignment can decide: (a, b) when the texts are copies with character noise."""
    (a, b), texts = kv
    texts = sorted(texts)
    if (
        len(texts) == 2
        and edit_similarity(*texts, params.edit_min_chars, params.edit_threshold) >= params.edit_threshold
    ):
        counter("dedupe_edit_matches").inc()
        yield a, b


def _best_of(choices: Iterable[tuple[float, str]]) -> tuple[float, str]:
    """The best (similarity, container) of a contained text (:func:`~newsflow.core.dedupe.best_container`)."""
    best = None
    for c in choices:
        best = c if best is None else best_container(best, c)
    assert best is not None
    return best


class VerifiedEdges(beam.PTransform):
    """Bucket members -> the match graph's edges (a, b): symmetric matches, aligned noisy copies, and each
    contained text's best container (a standard paragraph found in several articles links to one only).

    The members are grouped by bucket (in ``parts`` groupings, each verified on its own), where sketches decide
    most pairs. One join at each node then picks a contained text's best
    container and hands the node's text to each pair only alignment can decide; a grouping on the pair brings
    the two texts together, so only texts of such pairs cross a second shuffle.
    """

    def __init__(
        self, params: MatchParams, max_bucket: int, window: int, texts: beam.PCollection, parts: int = 1
    ) -> None:
        super().__init__()
        self._params = params
        self._max_bucket = max_bucket
        self._window = window
        self._texts = texts
        self._parts = parts

    def expand(self, members: beam.PCollection) -> beam.PCollection:
        buckets = members | "GroupByBucket" >> GroupByKeyInParts(self._parts, _bucket_part)
        verify = beam.FlatMap(_verify_bucket, self._params, self._max_bucket, self._window).with_output_types(
            Edge, **{ALIGN: Edge, CONTAINMENT: KV[str, Tuple[float, str]]}
        )
        parts = [
            part | f"VerifySketches{_suffix(i, buckets)}" >> verify.with_outputs(ALIGN, CONTAINMENT, main="similar")
            for i, part in enumerate(buckets)
        ]
        checked = {tag: _merged(parts, tag) for tag in ("similar", ALIGN, CONTAINMENT)}
        inputs = {"contained": checked[CONTAINMENT]}
        if self._params.edit_threshold > 0:
            inputs["pairs"] = checked[ALIGN] | "BothEnds" >> beam.ParDo(_BothEndsFn()).with_output_types(
                KV[str, List[Edge]]
            )
            inputs["text"] = self._texts
        at_node = (
            inputs
            | "JoinAtNode" >> beam.CoGroupByKey()
            | "AtNode"
            >> beam.FlatMap(_at_node)
            .with_output_types(Edge, sides=KV[Edge, str])
            .with_outputs("sides", main="containers")
        )
        edges = [checked["similar"], at_node.containers]
        if self._params.edit_threshold > 0:
            edges.append(
                at_node.sides
                | "GroupPair" >> beam.GroupByKey()
                | "Align" >> beam.FlatMap(_verify_texts, self._params).with_output_types(Edge)
            )
        return edges | "AllEdges" >> beam.Flatten()


def _suffix(i: int, parts: Sequence[Any]) -> str:
    """The label suffix of part ``i`` of a step run in parts (none when there is one)."""
    return str(i) if len(parts) > 1 else ""


def _merged(parts: Sequence[Any], tag: str) -> beam.PCollection:
    """One tagged output of a step applied to each part of a grouping, as one collection."""
    if len(parts) == 1:
        return parts[0][tag]
    return [part[tag] for part in parts] | f"All{tag.title()}" >> beam.Flatten()


# ---------------------------------------------------------------------------- 6. connected components


def _both_ways(e: tuple[str, str]) -> Iterator[tuple[str, str]]:
    u, v = e
    if u != v:
        yield u, v
        yield v, u


def _large_star(kv: tuple[str, Iterable[str]]) -> Iterator[tuple[str, str]]:
    return large_star(*kv)


def _small_star(kv: tuple[str, Iterable[str]]) -> Iterator[tuple[str, str]]:
    return small_star(*kv)


def _parent(kv: tuple[str, Iterable[str]]) -> Iterator[Any]:
    """(u, smallest neighbour) when it is smaller than u; a neighbourhood that is not a star is reported."""
    parent, unfinished = parent_of(*kv)
    if unfinished:
        counter("dedupe_cc_not_converged").inc()
        yield pvalue.TaggedOutput("warnings", ("dedupe_cc_not_converged", 1))
    if parent is not None:
        yield kv[0], parent


def _jump(kv: tuple[str, dict[str, list[Any]]]) -> Iterator[tuple[str, str]]:
    """Pointer jumping: every child of x now points at x's parent (or at x when x is a root)."""
    x, g = kv
    up = g["parent"][0] if g["parent"] else x
    for child in g["children"]:
        yield child, up


def _check_roots(kv: tuple[str, dict[str, list[Any]]]) -> Iterator[Any]:
    """(child, root) or (child, (root, root's value)) where the target is a root; others stay unresolved."""
    x, g = kv
    if g["parent"]:
        counter("dedupe_cc_unresolved").inc(len(g["children"]))
        if g["children"]:
            yield pvalue.TaggedOutput("warnings", ("dedupe_cc_unresolved", len(g["children"])))
        return
    if "value" not in g:
        for child in g["children"]:
            yield child, x
    elif g["children"]:
        value = g["value"][0] if g["value"] else None
        for child in g["children"]:
            yield child, (x, value)


class ComponentsResult(NamedTuple):
    keepers: beam.PCollection  # (node, keeper) or (node, (keeper, keeper's value)) for every non-keeper node
    warnings: beam.PCollection  # (counter, n): nodes left unresolved, nodes of unfinished components


class ConnectedComponents(beam.PTransform):
    """(node, neighbour) edges -> (node, smallest node of its component) for every other node.

    ``rounds`` alternations of large-star/small-star (Kiveris et al. 2014; duplicate clusters are small and
    dense, so a few suffice), then ``jumps`` rounds of pointer jumping and a check: a node whose target is
    still not a root gets no keeper (``dedupe_cc_unresolved``), and a node whose neighbourhood is not yet a
    star is reported (``dedupe_cc_not_converged``), both in ``warnings``. With ``values`` ((node, value)
    pairs), each node also gets its keeper's value, in the check's own join.
    """

    def __init__(self, rounds: int, jumps: int = 3, values: beam.PCollection | None = None) -> None:
        super().__init__()
        self._rounds = rounds
        self._jumps = jumps
        self._values = values

    def expand(self, edges: beam.PCollection) -> ComponentsResult:
        # every step emits each edge in both directions, so each grouping sees a node's whole neighbourhood
        edges = edges | "BothWays" >> beam.FlatMap(_both_ways).with_output_types(Edge)
        for r in range(self._rounds):
            edges = (
                edges
                | f"LargeGroup{r}" >> beam.GroupByKey()
                | f"LargeStar{r}" >> beam.FlatMap(_large_star).with_output_types(Edge)
                | f"SmallGroup{r}" >> beam.GroupByKey()
                | f"SmallStar{r}" >> beam.FlatMap(_small_star).with_output_types(Edge)
            )
        found = (
            edges
            | "ParentGroup" >> beam.GroupByKey()
            | "Parent"
            >> beam.FlatMap(_parent).with_output_types(Edge, warnings=Warning_).with_outputs("warnings", main="parents")
        )
        parents = found.parents
        for r in range(self._jumps + 1):
            by_parent = parents | f"ByParent{r}" >> beam.Map(lambda kv: (kv[1], kv[0])).with_output_types(Edge)
            inputs = {"parent": parents, "children": by_parent}
            if r < self._jumps:
                parents = (
                    inputs
                    | f"JumpJoin{r}" >> beam.CoGroupByKey()
                    | f"Jump{r}" >> beam.FlatMap(_jump).with_output_types(Edge)
                )
            else:
                if self._values is not None:
                    inputs["value"] = _plain("PlainValues", self._values)
                checked = (
                    inputs
                    | "CheckJoin" >> beam.CoGroupByKey()
                    | "CheckRoots" >> beam.FlatMap(_check_roots).with_outputs("warnings", main="keepers")
                )
        warnings = (found.warnings, checked.warnings) | "ComponentWarnings" >> beam.Flatten()
        return ComponentsResult(checked.keepers, warnings)


# ---------------------------------------------------------------------------- 7. resolve


class _ResolveFn(beam.DoFn):
    """Per representative: kept doc + index row, or near duplicate rows; plus its exact copies'."""

    def __init__(self, params: MatchParams, write_index: bool) -> None:
        self._params = params
        self._write_index = write_index

    def setup(self) -> None:
        start_releasing()

    def process(self, kv: tuple[str, dict[str, list[Any]]]) -> Iterator[Any]:
        node, g = kv
        if not g["rep"]:
            return
        rep = g["rep"][0]
        fp = Fingerprint._make(g["fp"][0]) if g.get("fp") else None
        label = None
        if g.get("keeper"):
            keeper, sk = g["keeper"][0]
            # the keeper's NodeSketch as a plain tuple: (shingles, sketch, chars, days)
            kfp = Fingerprint(sk[0], b"", sk[1]) if sk is not None else None
            sim = keeper_similarity(fp, kfp, self._params)
            label = (keeper, sim)
        doc = _unpack_doc(rep["doc"]) if rep["doc"] is not None else None
        out = resolve(node, doc, [_unpack_doc(blob) for blob in g["members"]], label)
        if label is not None and doc is not None:
            counter("dedupe_near_duplicates").inc()
        for row in out.duplicates:
            yield pvalue.TaggedOutput("duplicates", row)
        if out.kept is not None:
            counter("dedupe_kept").inc()
            yield out.kept
            if self._write_index:
                row = index_row(out.kept, date_partition(out.kept["published_at"]), rep["exact"], fp)
                yield pvalue.TaggedOutput("index", row)


class Resolve(beam.PTransform):
    """Representatives, their exact copies, keepers and fingerprints -> kept docs, duplicates rows, index rows."""

    def __init__(self, params: MatchParams, write_index: bool, parts: int = 1) -> None:
        super().__init__()
        self._params = params
        self._write_index = write_index
        self._parts = parts

    def expand(self, inputs: dict[str, beam.PCollection]) -> dict[str, beam.PCollection]:
        fn = _ResolveFn(self._params, self._write_index)
        parts = [inputs]
        if self._parts > 1:
            split = {
                name: split_by_key(pc, self._parts, _node_part, f"Split{name.title()}") for name, pc in inputs.items()
            }
            parts = [{name: split[name][i] for name in inputs} for i in range(self._parts)]
        outs = [
            part
            | f"JoinResolve{_suffix(i, parts)}" >> beam.CoGroupByKey()
            | f"Resolve{_suffix(i, parts)}" >> beam.ParDo(fn).with_outputs("duplicates", "index", main="kept")
            for i, part in enumerate(parts)
        ]
        return {tag: _merged(outs, tag) for tag in ("kept", "duplicates", "index")}


# ---------------------------------------------------------------------------- the transform


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
        parts = group_parts(cfg, p)
        exact = docs | "ExactGroups" >> ExactGroups(cfg, self._earlier(docs) if self._against else None)
        reps = exact.reps
        to_resolve = {
            "rep": reps | "RepsToResolve" >> beam.Map(_without_text) if self._against else reps,
            "members": exact.members,
        }
        params = match_params(cfg)
        warnings = []
        if cfg.near:
            boiler = None
            if cfg.boilerplate_min_docs:
                boiler = pvalue.AsList(reps | "Boilerplate" >> Boilerplate(cfg.boilerplate_min_docs))
            fps = reps | "Fingerprints" >> Fingerprints(cfg, boiler)
            candidates = fps.bands | "CandidatePairs" >> CandidatePairs(cfg.max_bucket, fps.sketches)
            edges = candidates.members | "VerifiedEdges" >> VerifiedEdges(
                params, cfg.max_bucket, cfg.index_retention_days, fps.texts, parts
            )
            components = edges | "ConnectedComponents" >> ConnectedComponents(cfg.cc_rounds, values=fps.sketches)
            warnings += [candidates.warnings, components.warnings]
            to_resolve["keeper"] = components.keepers
            to_resolve["fp"] = _plain("PlainFingerprints", fps.fingerprints)
        resolved = to_resolve | "Resolve" >> Resolve(params, cfg.write_index, parts)
        return DedupeResult(
            resolved["kept"],
            resolved["duplicates"],
            resolved["index"],
            _warnings(p, warnings),
        )

    def _earlier(self, docs: beam.PCollection) -> beam.PCollection:
        """Index entries of the earlier runs, read for the union of the windows around this run's days."""
        from newsflow.io.dedupe_index import ReadDedupeIndex, index_settings

        cfg = self._cfg
        days = (
            docs
            | "PublishedDay" >> beam.Map(lambda d: published_day(d["published_at"]))
            | "RunDays" >> beam.CombineGlobally(_SortedDays()).without_defaults()
        )
        return docs.pipeline | "ReadIndex" >> ReadDedupeIndex(
            self._against,
            cfg.num_perm,
            cfg.index_retention_days,
            days=pvalue.AsSingleton(days, default_value=()),
            settings=index_settings(cfg),
        )


class _SortedDays(beam.CombineFn):
    """The sorted distinct days of the run's documents (bounded by the days the run spans)."""

    def create_accumulator(self) -> set[int]:
        return set()

    def add_input(self, acc: set[int], day: int) -> set[int]:
        acc.add(day)
        return acc

    def merge_accumulators(self, accs: Iterable[set[int]]) -> set[int]:
        out: set[int] = set()
        for a in accs:
            out |= a
        return out

    def extract_output(self, acc: set[int]) -> tuple[int, ...]:
        return tuple(sorted(acc))


def _warnings(p: beam.Pipeline, parts: list[beam.PCollection]) -> beam.PCollection:
    """``{"counter", "count", "meaning"}`` per (counter, n) part (the manifest adds them up per counter)."""
    if not parts:
        return p | "NoWarnings" >> beam.Create([])
    return parts | "AllWarnings" >> beam.Flatten() | "Warnings" >> beam.MapTuple(_warning)
