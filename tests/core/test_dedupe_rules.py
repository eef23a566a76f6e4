"""The rules of newsflow.core.dedupe that the Beam stages call: exact groups, candidates, components, resolve."""

from __future__ import annotations

import itertools
import random

from newsflow.core.dedupe import (
    DOC,
    EARLIER,
    Fingerprint,
    MatchParams,
    bucket_pairs,
    checked_in,
    components,
    exact_group,
    head_flags,
    in_window,
    keeper_similarity,
    kept_id_of,
    large_star,
    node_key,
    resolve,
    small_star,
)

_T = 1_720_000_000
_DAY = 86_400


def test_exact_group_representative_members_and_the_window_for_earlier_entries() -> None:
    d1, d2 = node_key("a", _T + 5, None), node_key("b", _T, None)
    near_old = node_key("old", _T - 3 * _DAY, None, earlier=True)
    far_old = node_key("far", _T - 90 * _DAY, None, earlier=True)
    rerun = node_key("a", _T + 5, None, earlier=True)  # this run's own document, read again
    items = [(DOC, d1, "doc-a"), (DOC, d2, "doc-b"), (EARLIER, far_old, {"fp": None}), (EARLIER, rerun, {})]
    group = exact_group(b"k", items, 30, lambda blob: f"text of {blob}")
    assert [node for node, _ in group.reps] == [far_old, d2]  # the far entry stands alone; d2 is earliest
    assert group.members == [(d2, "doc-a")] and group.self_matches == 1 and group.outside_window == 1
    assert group.reps[1][1]["days"] == ((_T) // _DAY,) and group.reps[0][1]["days"] == ()
    # an earlier entry within the window represents the group, with the first document's text to fingerprint
    group = exact_group(b"k", [*items[:2], (EARLIER, near_old, {"fp": None})], 30, lambda blob: f"text of {blob}")
    ((node, rep),) = group.reps
    assert node == near_old and rep["doc"] is None and rep["text"] == "text of doc-b"
    assert sorted(group.members) == [(near_old, "doc-a"), (near_old, "doc-b")]


def test_each_candidate_pair_is_checked_in_exactly_one_shared_bucket() -> None:
    rng = random.Random(1)
    nodes = [f"1|{i:02d}" for i in range(12)]
    buckets = {bytes([k]): rng.sample(nodes, rng.randint(2, 7)) for k in range(20)}
    max_bucket = 3
    flags: dict[str, dict[bytes, bool]] = {n: {} for n in nodes}
    for key, members in buckets.items():
        for node, head in head_flags(members, max_bucket):
            flags[node][key] = head
    candidates = {p for members in buckets.values() for p in bucket_pairs(members, max_bucket)}
    for a, b in itertools.combinations(sorted(nodes), 2):
        where = checked_in(flags[a], flags[b])
        assert (where is not None) == ((a, b) in candidates)
        if where is not None:
            assert a in buckets[where] and b in buckets[where] and (flags[a][where] or flags[b][where])


def test_an_earlier_document_is_a_candidate_only_within_the_window() -> None:
    old = node_key("old", _T, None, earlier=True)
    new = node_key("new", _T + 40 * _DAY, None)
    day = (_T + 40 * _DAY) // _DAY
    assert not in_window(old, (), new, (day,), 30)
    assert in_window(old, (), new, (day,), 45)
    assert in_window(new, (day,), old, (), 45)
    assert in_window(node_key("x", _T, None), (1,), new, (day,), 0)  # two documents of this run: no window


def test_star_steps_reach_the_union_find_components() -> None:
    rng = random.Random(4)
    nodes = [f"1|{i:03d}" for i in rng.sample(range(300), 60)]
    edges = [(rng.choice(nodes), rng.choice(nodes)) for _ in range(50)]
    expected = components(edges)
    both = {(u, v) for u, v in edges if u != v} | {(v, u) for u, v in edges if u != v}
    for _ in range(10):
        for step in (large_star, small_star):
            nbrs: dict[str, set[str]] = {}
            for u, v in both:
                nbrs.setdefault(u, set()).add(v)
            both = {e for u, ns in nbrs.items() for e in step(u, ns)}
    parent = {u: min(v for x, v in both if x == u) for u, _ in both}
    assert {u: p for u, p in parent.items() if p < u} == expected
    assert all(root < node for node, root in expected.items())


def test_resolve_makes_the_keeper_kept_and_the_others_duplicates_of_it() -> None:
    keeper, rep = node_key("k", _T, None), node_key("r", _T + 1, None)
    doc = {"doc_id": "r", "source_path": "s", "doc_index": 0, "published_at": _T + 1, "lang": "en"}
    copy = {**doc, "doc_id": "r2"}
    out = resolve(rep, doc, [copy], (keeper, 0.9))
    assert out.kept is None
    assert [(r["doc_id"], r["kept_id"], r["method"], r["similarity"]) for r in out.duplicates] == [
        ("r", kept_id_of(keeper), "near", 0.9),
        ("r2", kept_id_of(keeper), "near", 0.9),
    ]
    out = resolve(rep, doc, [copy], None)
    assert out.kept is doc and [(r["doc_id"], r["method"]) for r in out.duplicates] == [("r2", "exact")]
    assert resolve(rep, None, [], (keeper, 1.0)).duplicates == []  # an earlier run's entry: nothing to write


def test_keeper_similarity_uses_the_sketches_only() -> None:
    sketch = bytes(range(40))
    a = Fingerprint(10, b"sig-a", sketch, b"lede")
    b = Fingerprint(10, b"sig-b", sketch, b"")
    assert keeper_similarity(a, b, MatchParams()) == 1.0
    assert keeper_similarity(a, None, MatchParams()) == 0.0
