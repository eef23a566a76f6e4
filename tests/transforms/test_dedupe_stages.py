"""Each stage of Dedupe on its own: the sub-transform's output equals what its pure rules give."""

from __future__ import annotations

import random

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from newsflow.config import DedupeConfig
from newsflow.core.dedupe import (
    MinHasher,
    bucket_keys,
    bucket_pairs,
    components,
    exact_key,
    line_keys,
    match_params,
    node_key,
    pair_edge,
    text_fingerprint,
)
from newsflow.core.dedupe.reference import boilerplate_keys, doc_node
from newsflow.schema import make_doc
from newsflow.transforms.dedupe import (
    Boilerplate,
    CandidatePairs,
    ConnectedComponents,
    ExactGroups,
    Fingerprints,
    Resolve,
    VerifiedEdges,
    _pack_doc,
    _split_membership,
    _unpack_doc,
    pack_counts,
    unpack_counts,
)

_RNG = random.Random(5)
_VOCAB = ["".join(_RNG.choice("abcdefghijklmnop") for _ in range(_RNG.randint(3, 8))) for _ in range(2000)]
_FOOTER = "follow us on every platform for the latest news updates"


def _text(n: int = 200, footer: bool = False) -> str:
    words = _RNG.choices(_VOCAB, k=n)
    body = "\n".join(" ".join(words[i : i + 30]) for i in range(0, n, 30))
    return body + ("\n" + _FOOTER if footer else "")


def _doc(i: int, text: str, day: int = 0) -> dict:
    return make_doc(
        doc_id=f"d{i:03d}",
        source_path="f.txt",
        doc_index=i,
        text=text,
        published_at=1_720_000_000 + day * 86_400,
        collected_at=None,
        lang="en",
    )


def _corpus() -> list[dict]:
    base = [_text(footer=i % 2 == 0) for i in range(12)]
    docs = [_doc(i, t) for i, t in enumerate(base)]
    docs.append(_doc(20, base[0]))  # exact copy
    docs.append(_doc(21, base[1].replace(base[1].split()[3], "changed", 1)))  # near copy
    docs.append(_doc(22, " ".join(base[2].split()[:140])))  # abridged: contained in base[2]
    docs.append(_doc(23, "too short"))
    return docs


def _rep(doc: dict) -> tuple[str, dict]:
    node = doc_node(doc)
    return node, {"node": node, "exact": exact_key(doc["text"]), "doc": _pack_doc(doc), "entry": None, "days": (0,)}


def test_exact_groups_pick_the_smallest_node_and_list_the_copies() -> None:
    docs = _corpus()
    copy, original = docs[-4], docs[0]
    with TestPipeline() as p:
        out = p | beam.Create(docs) | ExactGroups(DedupeConfig())
        assert_that(out.reps | beam.Keys(), equal_to([doc_node(d) for d in docs if d is not copy]), label="reps")
        members = out.members | beam.MapTuple(lambda node, blob: (node, _unpack_doc(blob)["doc_id"]))
        assert_that(members, equal_to([(doc_node(original), copy["doc_id"])]), label="members")


def test_boilerplate_is_the_lines_found_in_enough_representatives() -> None:
    docs = _corpus()
    expected = boilerplate_keys((d["text"] for d in docs), 3)
    assert expected  # the footer recurs
    with TestPipeline() as p:
        keys = p | beam.Create([_rep(d) for d in docs]) | Boilerplate(3)
        assert_that(keys, equal_to(sorted(expected)))


def test_boilerplate_sums_the_counts_of_every_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    # every representative's counts sent on their own: a key's count is the sum over many partial counts
    monkeypatch.setattr("newsflow.transforms.dedupe._BATCH_LINES", 1)
    docs = _corpus()
    for min_docs in (2, 3, 7):
        expected = boilerplate_keys((d["text"] for d in docs), min_docs)
        with TestPipeline() as p:
            keys = p | beam.Create([_rep(d) for d in docs]) | Boilerplate(min_docs)
            assert_that(keys, equal_to(sorted(expected)))


def test_a_packed_document_carries_its_line_keys() -> None:
    from newsflow.transforms.dedupe import _key_doc, _line_keys_of

    for doc in _corpus()[:20]:
        key, (_, node, blob) = _key_doc(doc, exact=True)
        assert key == exact_key(doc["text"]) and node == doc_node(doc)
        assert _line_keys_of(blob) == line_keys(doc["text"])
        assert _unpack_doc(blob) == doc
        assert _key_doc(doc, exact=False)[1][2] == blob
    empty = make_doc(doc_id="e", text="")
    assert _line_keys_of(_pack_doc(empty)) == [] and _unpack_doc(_pack_doc(empty)) == empty
    with pytest.raises(ValueError, match="8 bytes"):
        _pack_doc(empty, [b"short"])


def test_line_counts_pack_into_one_value_and_back() -> None:
    pairs = [(bytes([i]) * 8, n) for i, n in enumerate([1, 2, 70_000, 2**32 - 1])]
    assert list(unpack_counts(pack_counts(pairs))) == pairs
    assert pack_counts([]) == b""
    with pytest.raises(ValueError, match="line key of 7 bytes"):
        pack_counts([(b"1234567", 1)])
    with pytest.raises(ValueError, match="not a multiple"):
        list(unpack_counts(pack_counts(pairs)[:-1]))


def test_fingerprints_equal_the_pure_fingerprint_of_each_text() -> None:
    cfg = DedupeConfig()
    docs = _corpus()
    hasher = MinHasher(cfg.num_perm, cfg.seed)
    fps = {doc_node(d): text_fingerprint(d["text"], cfg, None, hasher) for d in docs}
    with TestPipeline() as p:
        out = p | beam.Create([_rep(d) for d in docs]) | Fingerprints(cfg)
        assert_that(
            out.fingerprints | beam.MapTuple(lambda n, fp: (n, tuple(fp))),
            equal_to([(n, tuple(near.fp)) for n, near in fps.items() if near is not None]),
            label="fingerprints",
        )
        assert_that(
            out.bands | beam.FlatMap(lambda kv: [_split_membership(m)[::-1] for m in kv[1]]),
            equal_to(
                [
                    (n, k)
                    for n, near in fps.items()
                    if near is not None
                    for k in bucket_keys(near.fp, cfg.bands, cfg.rows)
                ]
            ),
            label="bands",
        )


@pytest.mark.parametrize("batch", [None, 1])
def test_candidate_pairs_hold_every_bucket_pair_and_verified_edges_the_matching_ones(
    batch: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if batch is not None:  # every membership sent on alone: a node's buckets arrive in many lists
        monkeypatch.setattr("newsflow.transforms.dedupe._BATCH_MEMBERSHIPS", batch)
    cfg = DedupeConfig()
    docs = _corpus()
    hasher = MinHasher(cfg.num_perm, cfg.seed)
    nears = {doc_node(d): text_fingerprint(d["text"], cfg, None, hasher) for d in docs}
    nears = {n: near for n, near in nears.items() if near is not None}
    buckets: dict[bytes, list[str]] = {}
    for n, near in nears.items():
        for k in bucket_keys(near.fp, cfg.bands, cfg.rows):
            buckets.setdefault(k, []).append(n)
    pairs = {pair for nodes in buckets.values() if len(nodes) > 1 for pair in bucket_pairs(nodes, cfg.max_bucket)}
    edges = [e for a, b in sorted(pairs) if (e := pair_edge(a, nears[a], b, nears[b], match_params(cfg)))]
    assert {e[0] for e in edges} == {"jaccard", "containment"}
    with TestPipeline() as p:
        fps = p | beam.Create([_rep(d) for d in docs]) | Fingerprints(cfg)
        found = fps.bands | CandidatePairs(cfg.max_bucket, fps.sketches)
        in_buckets = (
            found.members
            | beam.GroupByKey()
            | beam.FlatMap(lambda kv: [(a.node, b.node) for a in kv[1] for b in kv[1] if a.node < b.node])
        )
        assert_that(in_buckets | "Distinct" >> beam.Distinct(), equal_to(sorted(pairs)), label="pairs")
        # each member is sent to every bucket of 2+ it is in, and carries all of them (however they were batched)
        shared = {k: nodes for k, nodes in buckets.items() if len(nodes) > 1}
        mine = {n: sorted(k for k, nodes in shared.items() if n in nodes) for n in nears}
        assert_that(
            found.members | beam.MapTuple(lambda k, m: (k, m.node, m.buckets)),
            equal_to([(k, n, b"".join(mine[n])) for k, nodes in shared.items() for n in nodes]),
            label="members",
        )
        verified = found.members | VerifiedEdges(match_params(cfg), cfg.max_bucket, 30, fps.texts)
        in_parts = found.members | "InParts" >> VerifiedEdges(match_params(cfg), cfg.max_bucket, 30, fps.texts, 3)
        assert_that(in_parts, equal_to([(e[1], e[2]) for e in edges]), label="edges_in_parts")
        assert_that(verified, equal_to([(e[1], e[2]) for e in edges]), label="edges")


def test_connected_components_equal_union_find_and_carry_the_keepers_value() -> None:
    rng = random.Random(9)
    nodes = [node_key(f"n{i:03d}", 1_720_000_000 + rng.randint(0, 9), None) for i in range(120)]
    edges = [(rng.choice(nodes), rng.choice(nodes)) for _ in range(90)]
    roots = components(edges)
    with TestPipeline() as p:
        src = p | beam.Create(edges)
        plain = src | "Plain" >> ConnectedComponents(4)
        assert_that(plain.keepers, equal_to(sorted(roots.items())), label="keepers")
        assert_that(plain.warnings, equal_to([]), label="no_warnings")
        values = p | "Values" >> beam.Create([(n, (n.upper(), 1)) for n in nodes])
        valued = src | "Valued" >> ConnectedComponents(4, values=values)
        assert_that(
            valued.keepers | beam.MapTuple(lambda n, k: (n, k[0], k[1])),
            equal_to([(n, r, (r.upper(), 1)) for n, r in roots.items()]),
            label="values",
        )


def test_resolve_keeps_keepers_and_names_them_in_the_duplicates_rows() -> None:
    a, b, c = _doc(1, _text()), _doc(2, _text()), _doc(3, "x")
    na, nb = doc_node(a), doc_node(b)
    with TestPipeline() as p:
        parts = {
            "rep": p | "Reps" >> beam.Create([_rep(a), _rep(b)]),
            "members": p | "Members" >> beam.Create([(na, _pack_doc(c))]),
            "keeper": p | "Keepers" >> beam.Create([(nb, (na, (1, b"")))]),
            "fp": p | "Fps" >> beam.Create([]),
        }
        out = parts | Resolve(match_params(DedupeConfig()), write_index=True)
        assert_that(out["kept"] | beam.Map(lambda d: d["doc_id"]), equal_to([a["doc_id"]]), label="kept")
        assert_that(
            out["duplicates"] | beam.Map(lambda r: (r["doc_id"], r["kept_id"], r["method"], r["similarity"])),
            equal_to([(b["doc_id"], a["doc_id"], "near", 0.0), (c["doc_id"], a["doc_id"], "exact", 1.0)]),
            label="duplicates",
        )
        assert_that(out["index"] | beam.Map(lambda r: r["doc_id"]), equal_to([a["doc_id"]]), label="index")


def test_group_parts_split_on_local_runners_only() -> None:
    import dataclasses
    import types

    from newsflow.transforms.dedupe import group_parts

    def on(runner: str) -> types.SimpleNamespace:  # a pipeline is read for its runner only
        return types.SimpleNamespace(runner=type(runner, (), {})())

    cfg = DedupeConfig()
    assert group_parts(cfg, beam.Pipeline(runner="DirectRunner")) == 4
    assert group_parts(cfg, beam.Pipeline(runner="PrismRunner")) == 4
    assert group_parts(cfg, on("DataflowRunner")) == 1
    assert group_parts(cfg, on("FlinkRunner")) == 1
    assert group_parts(dataclasses.replace(cfg, group_parts=2), on("DataflowRunner")) == 2


def test_memberships_of_a_node_are_each_bucket_key_then_the_node() -> None:
    from newsflow.transforms.dedupe import _memberships, _split_membership

    keys = [i.to_bytes(2, "big") + bytes([i]) * 8 for i in range(33)]
    values = _memberships(keys, "n\u00e9")
    assert values == [k + "n\u00e9".encode() for k in keys]
    assert [_split_membership(v) for v in values] == [(k, "n\u00e9") for k in keys]
    assert _memberships([], "n") == []
    with pytest.raises(ValueError, match="10 bytes"):
        _memberships([*keys, b"short"], "n")
