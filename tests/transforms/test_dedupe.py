"""Dedupe PTransform tests: clusters, keepers, chains, short texts, and matching against an earlier run."""

from __future__ import annotations

import dataclasses
import pickle

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from newsflow.config import DedupeConfig
from newsflow.core.dedupe import pair_edge
from newsflow.io.dedupe_index import IndexSettingsError, check_index_settings, index_schema
from newsflow.schema import INDEX_SCHEMA, make_doc
from newsflow.transforms.dedupe import Dedupe

_RNG = np.random.default_rng(42)
_LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"))
_VOCAB = ["".join(_RNG.choice(_LETTERS, size=int(n))) for n in _RNG.integers(3, 10, size=5000)]


def _words(n: int) -> list[str]:
    return [_VOCAB[i] for i in _RNG.integers(0, len(_VOCAB), size=n)]


def _doc(doc_id: str, text: str, published_at: int = 1_720_000_000, collected_at: int | None = None, **kw) -> dict:
    return make_doc(
        doc_id=doc_id,
        source_path=f"feeds/{doc_id}.txt",
        doc_index=0,
        text=text,
        published_at=published_at,
        collected_at=collected_at,
        lang="en",
        **kw,
    )


def _dup_view(rows):
    return sorted((r["doc_id"], r["kept_id"], r["method"]) for r in rows)


# A chain A ~ B ~ C where A and C are unrelated: B carries both (A and C are each contained in B)
_CHAIN_A = " ".join(_words(250))
_CHAIN_C = " ".join(_words(250))
_CHAIN_B = _CHAIN_A + "\n" + _CHAIN_C
_TIE = " ".join(_words(250))
_LONG = " ".join(_words(300))


def _keyed(rows, label: str = "Keyed"):
    return rows | label >> beam.Map(lambda r: (r["doc_id"], r["kept_id"], r["method"]))


def test_exact_near_chain_keepers_and_short_texts():
    other = " ".join(_words(300))
    docs = [
        # exact group: byte-different copies; keeper = earliest published_at
        _doc("e1", other, published_at=300),
        _doc("e2", other.upper().replace(" ", "  "), published_at=200),
        _doc("e3", "\u201c" + other + "\u201d", published_at=250),
        # chain A~B~C (A and C unrelated): C is published first -> keeper for all
        _doc("ca", _CHAIN_A, published_at=500),
        _doc("cb", _CHAIN_B, published_at=400),
        _doc("cc", _CHAIN_C, published_at=100),
        # exact copy of a near duplicate points at the cluster keeper, not at its representative
        _doc("cb2", _CHAIN_B.upper(), published_at=450),
        # ties: same published_at -> earliest collected_at; missing collected_at last; then doc_id
        _doc("t3", _TIE, published_at=50, collected_at=None),
        _doc("t2", _TIE, published_at=50, collected_at=70),
        _doc("t1", _TIE, published_at=50, collected_at=70),
        _doc("t0", _TIE, published_at=50, collected_at=90),
        # a copy with character noise (scan errors): Jaccard far under 0.8, matched by alignment
        _doc("o1", _LONG, published_at=600),
        _doc("o2", _noisy(_LONG, 0.06, seed=11), published_at=700),
        # very short, different texts: never one cluster (exact only below min_shingles)
        _doc("s1", "Read more."),
        _doc("s2", "Read more!"),  # exact copy after normalization
        _doc("s3", "Subscribe now."),
        _doc("s4", "Photo: AFP"),
        _doc("s5", "Photo: Reuters"),
    ]
    cfg = DedupeConfig(threshold=0.8, containment_threshold=0.9, containment_min_jaccard=0.3, boilerplate_min_docs=0)
    with TestPipeline() as p:
        res = p | beam.Create(docs) | Dedupe(cfg)
        assert_that(
            res.kept | "KeptIds" >> beam.Map(lambda d: d["doc_id"]),
            equal_to(["e2", "cc", "t1", "o1", "s1", "s3", "s4", "s5"]),
            label="kept",
        )
        assert_that(
            _keyed(res.duplicates, "Keyed1"),
            equal_to(
                [
                    ("e1", "e2", "exact"),
                    ("e3", "e2", "exact"),
                    ("ca", "cc", "near"),
                    ("cb", "cc", "near"),
                    ("cb2", "cc", "near"),
                    ("t0", "t1", "exact"),
                    ("t2", "t1", "exact"),
                    ("t3", "t1", "exact"),
                    ("s2", "s1", "exact"),
                    ("o2", "o1", "near"),
                ]
            ),
            label="dups",
        )
        assert_that(
            res.duplicates
            | "Fields"
            >> beam.Map(
                lambda r: (
                    sorted(r),
                    r["similarity"] == 1.0 if r["method"] == "exact" else 0 < r["similarity"] <= 1,
                    r["lang"],
                    isinstance(r["published_at"], int),
                )
            ),
            equal_to(
                [
                    (
                        sorted(
                            [
                                "doc_id",
                                "source_path",
                                "doc_index",
                                "kept_id",
                                "method",
                                "similarity",
                                "published_at",
                                "lang",
                            ]
                        ),
                        True,
                        "en",
                        True,
                    )
                ]
                * 10
            ),
            label="dup_fields",
        )
        assert_that(
            res.index
            | "IndexView"
            >> beam.Map(lambda r: (r["doc_id"], r["date"], r["shingles"] > 0, r["signature"] is not None)),
            equal_to(
                [
                    ("e2", "1970-01-01", True, True),
                    ("cc", "1970-01-01", True, True),
                    ("t1", "1970-01-01", True, True),
                    ("o1", "1970-01-01", True, True),
                    ("s1", "2024-07-03", False, False),
                    ("s3", "2024-07-03", False, False),
                    ("s4", "2024-07-03", False, False),
                    ("s5", "2024-07-03", False, False),
                ]
            ),
            label="index",
        )


def test_chain_is_one_cluster_only_through_the_middle_document():
    """Without B, A and C are not duplicates of each other (the chain is what joins them)."""
    cfg = DedupeConfig(
        threshold=0.8, containment_threshold=0.9, containment_min_jaccard=0.3, boilerplate_min_docs=0, write_index=False
    )
    docs = [_doc("ca", _CHAIN_A, published_at=500), _doc("cc", _CHAIN_C, published_at=100)]
    with TestPipeline() as p:
        res = p | beam.Create(docs) | Dedupe(cfg)
        assert_that(res.duplicates, equal_to([]), label="no_dups")
        assert_that(res.index, equal_to([]), label="no_index")


def test_disabled_and_exact_only():
    text = " ".join(_words(200))
    docs = [
        _doc("a", text, published_at=2),
        _doc("b", text, published_at=1),
        _doc("c", text + " " + " ".join(_words(5)), published_at=3),
    ]
    with TestPipeline() as p:
        src = p | beam.Create(docs)
        off = src | "Off" >> Dedupe(DedupeConfig(enabled=False))
        assert_that(off.kept | "OffIds" >> beam.Map(lambda d: d["doc_id"]), equal_to(["a", "b", "c"]), label="off")
        exact_only = src | "ExactOnly" >> Dedupe(DedupeConfig(near=False))
        assert_that(_keyed(exact_only.duplicates, "Keyed2"), equal_to([("a", "b", "exact")]), label="exact_only")
        near = src | "Near" >> Dedupe(DedupeConfig())
        assert_that(
            _keyed(near.duplicates, "Keyed3"), equal_to([("a", "b", "exact"), ("c", "b", "near")]), label="near"
        )


def test_boilerplate_lines_do_not_merge_different_articles():
    footer = [
        "Follow our newsroom on every social network for the latest updates and breaking stories",
        "Copyright the publisher; all rights reserved; no part may be reproduced without permission",
        "Subscribe to our newsletter to receive the best of our journalism every morning in your inbox",
        "Advertise with us to reach a large audience of engaged readers across the whole region today",
        "Our journalists work around the clock to bring you accurate and independent reporting always",
        "Send us your tips, photos and videos through the secure form on the contact page of this site",
        "Download the mobile application to read every article offline and get alerts when news breaks",
        "Comments are moderated and must respect the community guidelines published on the about page",
    ]
    docs = []
    for i in range(6):
        body = " ".join(_words(12))  # a short article under a long shared footer
        docs.append(_doc(f"site{i}", body + "\n" + "\n".join(footer), published_at=100 + i))
    docs.append(_doc("copy0", docs[0]["text"].replace("\n", " \n"), published_at=200))  # exact copy
    with TestPipeline() as p:
        src = p | beam.Create(docs)
        filtered = src | "Filtered" >> Dedupe(DedupeConfig(boilerplate_min_docs=3, min_shingles=50))
        assert_that(_keyed(filtered.duplicates, "Keyed4"), equal_to([("copy0", "site0", "exact")]), label="filtered")
        unfiltered = src | "Unfiltered" >> Dedupe(DedupeConfig(boilerplate_min_docs=0, min_shingles=50))
        assert_that(unfiltered.duplicates | beam.combiners.Count.Globally(), equal_to([6]), label="unfiltered_merges")


def _save_row(row: dict, folder: str) -> None:
    with open(f"{folder}/{row['doc_id']}.pkl", "wb") as fh:
        pickle.dump(row, fh)


def _write_index(rows: list[dict], folder, cfg: DedupeConfig = DedupeConfig(), metadata=None) -> None:  # noqa: B008
    """Write index rows as the pipeline does: one file per date folder, the settings in its metadata."""
    by_date: dict[str, list[dict]] = {}
    for r in rows:
        by_date.setdefault(r["date"], []).append(r)
    schema = index_schema(cfg)
    file_schema = pa.schema(
        [f for f in schema if f.name != "date"], metadata=schema.metadata if metadata is None else metadata
    )
    for date, part in by_date.items():
        arrays = []
        for field in file_schema:
            values = [r[field.name] for r in part]
            if pa.types.is_timestamp(field.type):
                arrays.append(pa.array(values, pa.int64()).cast(field.type))
            else:
                arrays.append(pa.array(values, field.type))
        out = folder / "index" / f"date={date}"
        out.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_arrays(arrays, schema=file_schema), out / "part-0.parquet")


def test_second_run_matches_against_the_first_runs_index(tmp_path):
    day = 86400
    t0 = 1_720_000_000
    story = " ".join(_words(300))
    old = " ".join(_words(300))
    run1 = [
        _doc("r1-story", story, published_at=t0, collected_at=t0 + 60),
        _doc("r1-old", old, published_at=t0 - 60 * day),
    ]
    cfg = DedupeConfig(index_retention_days=30)
    dump = tmp_path / "rows"
    dump.mkdir()
    with TestPipeline() as p:
        res = p | "Run1" >> beam.Create(run1) | "Dedupe1" >> Dedupe(cfg)
        res.index | beam.Map(_save_row, str(dump))
    rows = [pickle.loads(f.read_bytes()) for f in sorted(dump.iterdir())]
    assert sorted(r["doc_id"] for r in rows) == ["r1-old", "r1-story"]
    _write_index(rows, tmp_path)

    edited = story.replace(story.split()[10], "changed", 1) + " one more line at the end"
    run2 = [
        _doc("r2-exact", story.upper(), published_at=t0 - day),  # earlier header, still the copy
        _doc("r2-near", edited, published_at=t0 + day),
        _doc("r2-old-copy", old, published_at=t0 + 2 * day),  # its original is outside the retention window
        _doc("r2-new", " ".join(_words(300)), published_at=t0 + day),
    ]
    with TestPipeline() as p:
        src = p | beam.Create(run2)
        res = src | "Dedupe2" >> Dedupe(cfg, against=str(tmp_path))
        assert_that(res.kept | beam.Map(lambda d: d["doc_id"]), equal_to(["r2-old-copy", "r2-new"]), label="kept")
        assert_that(
            _keyed(res.duplicates, "Keyed5"),
            equal_to([("r2-exact", "r1-story", "exact"), ("r2-near", "r1-story", "near")]),
            label="dups",
        )
        assert_that(
            res.index | "Ids" >> beam.Map(lambda r: r["doc_id"]), equal_to(["r2-old-copy", "r2-new"]), label="index"
        )
        # the index folder itself works as ``against`` too; with a long retention the old copy is found
        longer = dataclasses.replace(cfg, index_retention_days=365)
        res2 = src | "Dedupe3" >> Dedupe(longer, against=str(tmp_path / "index"))
        assert_that(
            _keyed(res2.duplicates, "Keyed6"),
            equal_to(
                [("r2-exact", "r1-story", "exact"), ("r2-near", "r1-story", "near"), ("r2-old-copy", "r1-old", "exact")]
            ),
            label="dups_long",
        )
        # a near copy alone (no exact copy of the story in this run) still meets the earlier document
        res4 = p | "Run2Near" >> beam.Create([run2[1]]) | "Dedupe5" >> Dedupe(cfg, against=str(tmp_path))
        assert_that(_keyed(res4.duplicates, "Keyed8"), equal_to([("r2-near", "r1-story", "near")]), label="near_only")
        # rerunning run 1 against its own index keeps its documents: a document is not a copy of itself
        res5 = p | "Rerun1" >> beam.Create(run1) | "Dedupe6" >> Dedupe(cfg, against=str(tmp_path))
        assert_that(
            res5.kept | "RerunIds" >> beam.Map(lambda d: d["doc_id"]),
            equal_to(["r1-story", "r1-old"]),
            label="rerun_kept",
        )
        assert_that(res5.duplicates, equal_to([]), label="rerun_dups")
        # a missing folder is an empty index: only the within-run pair remains
        res3 = src | "Dedupe4" >> Dedupe(cfg, against=str(tmp_path / "nothing-here"))
        assert_that(_keyed(res3.duplicates, "Keyed7"), equal_to([("r2-near", "r2-exact", "near")]), label="no_index")


def test_pair_edge_kinds_and_containment_direction():
    from newsflow.core.dedupe import MatchParams, MinHasher, NearDoc, fingerprint, node_key

    mh = MinHasher(32, seed=1)
    base = np.arange(1, 5000, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    small = NearDoc(fingerprint(np.unique(base[:400]), mh, 64))
    big = NearDoc(fingerprint(np.unique(base[:1000]), mh, 64))
    other = NearDoc(fingerprint(np.unique(base[3000:4000]), mh, 64))
    a, b = node_key("a", 1, None), node_key("b", 2, None)
    assert pair_edge(a, big, b, big, MatchParams()) == ("jaccard", a, b, 1.0)
    kind, contained, container, sim = pair_edge(a, big, b, small, MatchParams())
    assert (kind, contained, container) == ("containment", b, a) and sim == 1.0
    assert pair_edge(a, big, b, other, MatchParams()) is None
    assert pair_edge(a, big, b, small, MatchParams(method="jaccard")) is None


def _noisy(text: str, rate: float, seed: int) -> str:
    rng = np.random.default_rng(seed)
    return "".join(
        ("" if v < 0.3 else ch + ch if v < 0.5 else "x") if ch.isalpha() and u < rate else ch
        for ch, u, v in zip(text, rng.random(len(text)), rng.random(len(text)), strict=True)
    )


def _plain(value):
    """``value`` with lists as tuples (a row coder decodes sequences as lists)."""
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    return value


def test_shuffled_records_have_declared_types_and_round_trip():
    """Every value Fingerprints hands to a shuffle has a declared type with a deterministic coder, not pickle."""
    from newsflow.core.dedupe import Fingerprint
    from newsflow.transforms.dedupe import Fingerprints, _FingerprintFn, _key_entry, _pack_doc

    p = beam.Pipeline()
    reps = p | beam.Create([("n1", {"node": "n1"})])
    out = reps | Fingerprints(DedupeConfig())
    registry = beam.coders.registry
    for name, pcoll in out._asdict().items():
        coder = registry.get_coder(pcoll.element_type)
        assert not isinstance(coder, (beam.coders.PickleCoder, beam.coders.FastPrimitivesCoder)), name
        assert coder.is_deterministic(), name
    fn = _FingerprintFn(DedupeConfig())
    fn.setup()
    doc = _doc("d1", _LONG)
    rep = {"node": "n1", "exact": b"k", "doc": _pack_doc(doc), "entry": None, "days": (1,)}
    outputs = list(fn.process(("n1", rep), window=GlobalWindow()))
    assert {getattr(o, "tag", "fps") for o in outputs} == {"fps", "sketches", "texts"}  # memberships are gathered
    bands = list(fn.finish_bundle())
    assert {o.tag for o in bands} == {"bands"} and all(isinstance(o.value, WindowedValue) for o in bands)
    assert sum(len(o.value.value[1]) for o in bands) == DedupeConfig().bands + 1  # every band and the lede key
    assert not list(fn.finish_bundle())  # sent once
    outputs += bands
    for out_value in outputs:
        tag = getattr(out_value, "tag", "fps")
        value = getattr(out_value, "value", out_value)
        value = value.value if isinstance(value, WindowedValue) else value
        coder = registry.get_coder(getattr(out, tag if tag != "fps" else "fingerprints").element_type)
        back = coder.decode(coder.encode(value))
        assert _plain(back) == _plain(value), tag
    fp = next(o for o in outputs if not hasattr(o, "tag"))[1]
    assert isinstance(fp, Fingerprint) and fp.shingles > 0 and len(fp.sketch) == 4 * DedupeConfig().sketch_size
    # an earlier run's index entry crosses the exact-group shuffle with plain fingerprint fields
    entry = {"node": "0n", "exact": b"k", "fp": fp}
    _, (_, _, keyed) = _key_entry(entry)
    plain = beam.coders.FastPrimitivesCoder(fallback_coder=beam.coders.coders.Base64PickleCoder())
    assert plain.decode(plain.encode(keyed)) == keyed and isinstance(keyed["fp"], tuple)
    entry_rep = {"node": "0n", "exact": b"k", "doc": None, "entry": keyed, "days": ()}
    from_entry = list(fn.process(("0n", entry_rep), window=GlobalWindow()))
    assert from_entry[0][1] == fp


def test_bucket_verification_checks_each_candidate_pair_once():
    """Bucket keys -> members -> sketches sent to shared buckets: every candidate pair of bucket_pairs, once."""
    import collections

    from newsflow.core.dedupe import MatchParams, bucket_pairs
    from newsflow.transforms.dedupe import (
        NodeSketch,
        _bucket_members,
        _memberships,
        _shard,
        _to_buckets,
        _verify_bucket,
    )

    def group(items):
        groups = collections.defaultdict(list)
        for k, v in items:
            groups[k].append(v)
        return list(groups.items())

    sketch = np.arange(1, 301, dtype="<u4").tobytes()  # the same 300 shingles: every checked pair matches
    nodes = ["1a", "1b", "1c", "1d", "1e", "0x", "0y"]  # "0": earlier-run documents

    def key(band, name):  # band number + 8 digest bytes; k1 and k6 share a shard (digest bytes 2-3)
        return band.to_bytes(2, "big") + name.ljust(8, b".")

    bands = {
        key(1, b"k1"): ["1c", "1a", "1b", "1d", "1e"],  # 5 > max_bucket: 1d and 1e are tail members
        key(2, b"k2"): ["1a", "1b", "1e"],  # (1a, 1b) again; (1a, 1e) only a candidate here... and in k1
        key(3, b"k3"): ["1d", "1e"],  # tail-tail in k1: a candidate only here
        key(4, b"k4"): ["0x", "0y"],  # earlier-run documents only: nothing to check
        key(5, b"k5"): ["1c"],
        key(6, b"k1"): ["1b", "1c"],
    }
    max_bucket = 3
    sketches = {n: NodeSketch(300, sketch, 1000, () if n[0] == "0" else (1,)) for n in nodes}
    shards = group((_shard(k), _memberships([k], n)[0]) for k, members in bands.items() for n in members)
    assert len(shards) < len(bands)  # buckets share shards
    with pytest.raises(ValueError, match="bucket key of 4 bytes"):
        _memberships([b"\x00\x01k1"], "1a")
    # a shard's memberships arrive as lists (one per fingerprint DoFn flush): split over two lists here
    members = [x for shard, ms in shards for x in _bucket_members((shard, [ms[:1], ms[1:]]), max_bucket)]
    # the one bucket over max_bucket is reported: its tail members are compared with its head only
    warned = [x.value for x in members if getattr(x, "tag", None) == "warnings"]
    assert warned == [("dedupe_oversized_buckets", 1)]
    by_node = group(x for x in members if not hasattr(x, "tag"))
    sent = [
        x
        for node, ms in by_node
        for x in _to_buckets((node, {"buckets": [ms[:1], ms[1:]], "sketch": [sketches[node]]}))
    ]
    # as a worker of another process decodes them: into a class built from the schema, without this module's
    from apache_beam.coders.row_coder import RowCoder
    from apache_beam.typehints.schemas import named_tuple_to_schema

    from newsflow.transforms.dedupe import Member

    schema = named_tuple_to_schema(Member)
    schema.id = "decoded-in-another-process"
    here, there = beam.coders.registry.get_coder(Member), RowCoder(schema)
    moved = [(key, there.decode(here.encode(member))) for key, member in sent]
    assert all(type(m) is not Member for _, m in moved)
    by_bucket = group(moved)
    checked = [x for kv in by_bucket for x in _verify_bucket(kv, MatchParams(), max_bucket, 30)]
    expected = {p for members in bands.values() for p in bucket_pairs(members, max_bucket)}
    assert ("1d", "1e") in expected and ("0x", "0y") not in expected
    assert sorted(checked) == sorted(expected)  # each candidate pair once, no other pair


def _run_index(docs: list[dict], cfg: DedupeConfig, folder) -> list[dict]:
    """Dedupe ``docs`` as a first run and write its index rows under ``folder/index``; returns the rows."""
    dump = folder / "rows"
    dump.mkdir()
    with TestPipeline() as p:
        res = p | "Run1" >> beam.Create(docs) | "Dedupe1" >> Dedupe(cfg)
        res.index | beam.Map(_save_row, str(dump))
    rows = [pickle.loads(f.read_bytes()) for f in sorted(dump.iterdir())]
    _write_index(rows, folder)
    return rows


def test_the_window_is_around_each_documents_own_date(tmp_path):
    """An earlier document is a candidate when its date is within the window of the copy's own date.

    The run spans 100 days, the window is 30: a copy of a 100-day-old article published on its
    original's day is found (the window does not count from the run's newest date), while a copy
    published more than 30 days after its original is not, even when the original's partition is
    read because another document of the run is close to it.
    """
    day = 86400
    t0 = 1_720_000_000
    texts = {name: " ".join(_words(300)) for name in ("a", "b", "d", "e", "x")}
    cfg = DedupeConfig(index_retention_days=30, boilerplate_min_docs=0)
    _run_index(
        [
            _doc("r1-a", texts["a"], published_at=t0),
            _doc("r1-b", texts["b"], published_at=t0 + 100 * day),
            _doc("r1-d", texts["d"], published_at=t0 + 65 * day),
            _doc("r1-e", texts["e"], published_at=t0 + 40 * day),
        ],
        cfg,
        tmp_path,
    )

    def edited(text: str, seed: int) -> str:
        words = text.split()
        words[seed] = "changed"
        return " ".join(words) + " one more line at the end"

    run2 = [
        _doc("a-same-day", texts["a"].upper(), published_at=t0 + 3600),  # 100 days before the run's newest
        _doc("b-near", edited(texts["b"], 5), published_at=t0 + 100 * day),
        _doc("x-new", texts["x"], published_at=t0 + 70 * day),  # the index day of d (65) is read for it
        _doc("d-exact-late", texts["d"], published_at=t0 + 100 * day),  # 35 days after d: not a candidate
        _doc("d-near-late", edited(texts["d"], 7), published_at=t0 + 99 * day),  # 34 days: not a candidate
        _doc("d-near-close", edited(texts["d"], 9), published_at=t0 + 80 * day),  # 15 days: a candidate
        _doc("e-exact-late", texts["e"], published_at=t0 + 75 * day),  # 35 days after e: not a candidate...
        _doc("e-near-close", edited(texts["e"], 3), published_at=t0 + 60 * day),  # ...but this one is
    ]
    with TestPipeline() as p:
        res = p | beam.Create(run2) | Dedupe(cfg, against=str(tmp_path))
        assert_that(res.kept | beam.Map(lambda d: d["doc_id"]), equal_to(["x-new"]), label="kept")
        assert_that(
            _keyed(res.duplicates),
            equal_to(
                [
                    ("a-same-day", "r1-a", "exact"),
                    ("b-near", "r1-b", "near"),
                    # d's copies: the close one is d's near copy; the late ones are copies of the close one
                    ("d-near-close", "r1-d", "near"),
                    ("d-exact-late", "r1-d", "near"),
                    ("d-near-late", "r1-d", "near"),
                    # e's exact copy is outside e's window, but it is a copy of e's near copy, which is inside
                    ("e-near-close", "r1-e", "near"),
                    ("e-exact-late", "r1-e", "near"),
                ]
            ),
            label="dups",
        )
    with TestPipeline() as p:
        # without the close copies, the late ones are no candidates of d: kept
        late = [d for d in run2 if d["doc_id"] in ("x-new", "d-exact-late", "d-near-late")]
        res = p | beam.Create(late) | Dedupe(cfg, against=str(tmp_path))
        assert_that(res.kept | beam.Map(lambda d: d["doc_id"]), equal_to(["x-new", "d-near-late"]), label="kept")
        assert_that(_keyed(res.duplicates), equal_to([("d-exact-late", "d-near-late", "near")]), label="dups")


def test_index_settings_are_checked_before_and_while_reading(tmp_path):
    t0 = 1_720_000_000
    story = " ".join(_words(300))
    cfg = DedupeConfig(boilerplate_min_docs=0)
    rows = _run_index([_doc("r1-story", story, published_at=t0)], cfg, tmp_path)
    assert check_index_settings(str(tmp_path), cfg) == 1
    # settings that do not change what an index row holds may differ
    tuned = dataclasses.replace(cfg, bands=16, rows=8, threshold=0.7, sketch_size=128, max_bucket=50)
    assert check_index_settings(str(tmp_path / "index"), tuned) == 1
    for other, named in (
        (dataclasses.replace(cfg, seed=2), "dedupe.seed 1 there, 2 here"),
        (dataclasses.replace(cfg, num_perm=64, bands=16), "dedupe.num_perm 128 there, 64 here"),
        (dataclasses.replace(cfg, shingle="word"), "dedupe.shingle 'char' there, 'word' here"),
        (dataclasses.replace(cfg, lede_chars=0), "dedupe.lede_chars 250 there, 0 here"),
    ):
        with pytest.raises(IndexSettingsError, match=named) as err:
            check_index_settings(str(tmp_path), other)
        assert "\n" not in str(err.value) and str(tmp_path) in str(err.value)
    old = tmp_path / "old"
    _write_index(rows, old, metadata=INDEX_SCHEMA.metadata)  # as written before the settings were recorded
    with pytest.raises(IndexSettingsError, match="records no dedupe settings"):
        check_index_settings(str(old), cfg)
    assert check_index_settings(str(tmp_path / "nothing-here"), cfg) == 0  # no index yet: nothing to refuse
    # the reader refuses such a file too (an index file added after the check, or Dedupe used on its own)
    with pytest.raises(Exception, match="records no dedupe settings"), TestPipeline() as p:
        _ = p | beam.Create([_doc("r2", story.upper(), published_at=t0)]) | Dedupe(cfg, against=str(old))


def test_unresolved_components_are_reported_as_warnings():
    """Too few rounds for a long chain: the clusters may be wrong, and warnings say so (none when enough)."""
    from newsflow.transforms.dedupe import ConnectedComponents

    rng = np.random.default_rng(3)
    names = [f"1|{i:04d}" for i in rng.permutation(400)]  # a path whose labels are in random order
    edges = list(zip(names, names[1:], strict=False))
    with TestPipeline() as p:
        src = p | beam.Create(edges)
        few = src | "Few" >> ConnectedComponents(1, jumps=1)
        enough = src | "Enough" >> ConnectedComponents(20)
        warned = few.warnings | "SumFew" >> beam.CombinePerKey(sum) | beam.Filter(lambda kv: kv[1] > 0) | beam.Keys()
        assert_that(
            warned | "Some" >> beam.combiners.ToList() | beam.Map(sorted),
            equal_to([["dedupe_cc_not_converged", "dedupe_cc_unresolved"]]),
            label="few_warns",
        )
        assert_that(enough.warnings, equal_to([]), label="enough_warns")
        root = min(names)
        assert_that(enough.keepers, equal_to([(n, root) for n in names if n != root]), label="enough_keepers")


def test_a_redelivery_matches_like_the_first_run_despite_boilerplate_and_noise(tmp_path):
    """Delivered again, every document is a duplicate of what the first run kept.

    The first run left a site footer out of the fingerprints (it is on enough texts) and
    found a shortened copy and a copy with character noise (alignment needs both texts).
    When the second delivery's originals are exact copies of index entries, their texts
    still count for the footer and still align with the noisy copy.
    """
    t0 = 1_720_000_000
    footer = [
        "Follow our newsroom on every network and send your story ideas to the desk any time of day",
        "Copyright of this article and its pictures belongs to the publisher and may not be reused",
    ]
    bodies = [" ".join(_words(60)) for _ in range(4)]
    story = [" ".join(_words(40)) for _ in range(3)]
    long_text = " ".join(_words(250))
    run1 = [_doc(f"site{i}", "\n".join([body, *footer]), published_at=t0 + i) for i, body in enumerate(bodies)]
    run1 += [
        _doc("story", "\n".join([*story, *footer]), published_at=t0 + 10),
        _doc("story-short", "\n".join([*story[:2], story[2][:150], *footer]), published_at=t0 + 20),
        _doc("long", long_text, published_at=t0 + 30),
        _doc("long-noisy", _noisy(long_text, 0.06, seed=11), published_at=t0 + 40),
    ]
    cfg = DedupeConfig(boilerplate_min_docs=4, min_shingles=50)
    rows = _run_index(run1, cfg, tmp_path)
    assert sorted(r["doc_id"] for r in rows) == ["long", "site0", "site1", "site2", "site3", "story"]
    run2 = [{**d, "doc_id": "again-" + d["doc_id"], "source_path": "again/" + d["source_path"]} for d in run1]
    keeper = {"story-short": "story", "long-noisy": "long"}
    with TestPipeline() as p:
        res = p | beam.Create(run2) | Dedupe(cfg, against=str(tmp_path))
        assert_that(res.kept | beam.Map(lambda d: d["doc_id"]), equal_to([]), label="kept")
        assert_that(
            res.duplicates | beam.Map(lambda r: (r["doc_id"], r["kept_id"])),
            equal_to([("again-" + d["doc_id"], keeper.get(d["doc_id"], d["doc_id"])) for d in run1]),
            label="dups",
        )


def test_index_months_outside_every_window_are_not_opened(tmp_path) -> None:
    """A ``month=`` folder is skipped whole when no day of it is within the window of a run's day."""
    import datetime as dt

    from newsflow.io.dedupe_index import month_days, read_index_rows

    epoch = dt.date(1970, 1, 1).toordinal()
    day = dt.date(2024, 7, 5).toordinal() - epoch
    assert month_days("out/index/month=2024-02/part-0.parquet") == (
        dt.date(2024, 2, 1).toordinal() - epoch,
        dt.date(2024, 2, 29).toordinal() - epoch,
    )
    assert month_days("out/index/date=2024-02-03/part-0.parquet") is None
    missing = tmp_path / "index" / "month=2024-04" / "part-0.parquet"  # never created: opening it would fail
    assert list(read_index_rows(str(missing), days=[day], window=30)) == []
    near = tmp_path / "index" / "month=2024-06" / "part-0.parquet"  # 2024-06-30 is 5 days before the run's day
    with pytest.raises(OSError):
        list(read_index_rows(str(near), days=[day], window=30))
