"""Property test: on random corpora with planted copies, Dedupe's rows equal the in-memory reference's.

The reference (:func:`newsflow.core.dedupe.dedupe`) applies the same pure rules with a global union-find;
the transform must reach the same kept documents, duplicates rows (keeper, method, similarity) and index
rows, alone and against an earlier run's index.
"""

from __future__ import annotations

import pickle
import random

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from newsflow.config import DedupeConfig
from newsflow.core.dedupe import dedupe
from newsflow.io.index_codec import index_entry, index_row
from newsflow.io.tables import date_partition
from newsflow.schema import make_doc
from newsflow.transforms.dedupe import Dedupe
from tests.transforms.test_dedupe import _write_index

_DAY = 86_400
_T0 = 1_720_000_000


def _corpus(seed: int, n: int = 70) -> list[dict]:
    """Articles with exact, edited, abridged and noisy copies, shared footers, short texts and spread dates."""
    rng = random.Random(seed)
    vocab = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9))) for _ in range(3000)]
    footers = [" ".join(rng.choices(vocab, k=12)) for _ in range(3)]
    docs: list[dict] = []

    def add(text: str, day: int) -> None:
        i = len(docs)
        collected = None if rng.random() < 0.3 else _T0 + day * _DAY + rng.randint(0, 5000)
        docs.append(
            make_doc(
                doc_id=f"d{i:04d}",
                source_path=f"feed/{i // 10}.txt",
                doc_index=i % 10,
                text=text,
                published_at=_T0 + day * _DAY + rng.choice([0, 60, 3600]),
                collected_at=collected,
                lang="en",
            )
        )

    for _ in range(n):
        words = rng.choices(vocab, k=rng.randint(120, 400))
        text = "\n".join(" ".join(words[i : i + 40]) for i in range(0, len(words), 40))
        if rng.random() < 0.4:
            text += "\n" + rng.choice(footers)
        day = rng.randint(0, 5)
        add(text, day)
        for _ in range(rng.choice([0, 0, 1, 2, 3])):
            kind = rng.choice(["exact", "edit", "abridged", "noise"])
            if kind == "exact":
                copy = text
            elif kind == "edit":
                copy = " ".join(w if rng.random() > 0.04 else rng.choice(vocab) for w in text.split(" "))
            elif kind == "abridged":
                copy = " ".join(text.split(" ")[: int(len(words) * rng.uniform(0.5, 0.8))])
            else:
                copy = "".join(c if not c.isalpha() or rng.random() > 0.08 else rng.choice("xq") for c in text)
            add(copy, day + rng.choice([0, 0, 1, 40]))
    for _ in range(4):  # a passage found in two articles (one quotes it with edits): it joins its best container
        passage = rng.choices(vocab, k=100)
        edited = [w if rng.random() > 0.03 else rng.choice(vocab) for w in passage]
        day = rng.randint(0, 5)
        add(" ".join(passage), day)
        add(" ".join(rng.choices(vocab, k=150) + passage), day)
        add(" ".join(rng.choices(vocab, k=120) + edited), day)
    for _ in range(5):
        add(" ".join(rng.choices(vocab, k=rng.randint(1, 6))), rng.randint(0, 5))  # too short for near matching
    rng.shuffle(docs)
    return docs


def _dup_rows(rows: list[dict]) -> list[tuple]:
    return sorted((r["doc_id"], r["kept_id"], r["method"], r["similarity"]) for r in rows)


def _index_rows(outcome) -> list[tuple]:
    rows = []
    for doc in outcome.kept:
        key, fp = outcome.kept_fingerprints[str(doc["doc_id"])]
        rows.append(_index_view(index_row(doc, date_partition(doc["published_at"]), key, fp)))
    return rows


def _index_view(row: dict) -> tuple:
    return tuple(sorted(row.items()))


def _check(p: beam.Pipeline, docs: list[dict], cfg: DedupeConfig, against=None, earlier=(), label: str = "") -> None:
    ref = dedupe(docs, cfg, earlier)
    res = p | f"Docs{label}" >> beam.Create(docs) | f"Dedupe{label}" >> Dedupe(cfg, against=against)
    assert_that(
        res.kept | f"KeptIds{label}" >> beam.Map(lambda d: d["doc_id"]),
        equal_to([d["doc_id"] for d in ref.kept]),
        label=f"kept{label}",
    )
    assert_that(
        res.duplicates
        | f"DupView{label}" >> beam.Map(lambda r: (r["doc_id"], r["kept_id"], r["method"], r["similarity"])),
        equal_to(_dup_rows(ref.duplicates)),
        label=f"duplicates{label}",
    )
    assert_that(
        res.index | f"IndexView{label}" >> beam.Map(_index_view), equal_to(_index_rows(ref)), label=f"index{label}"
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_dedupe_rows_equal_the_reference_on_random_corpora(seed: int) -> None:
    docs = _corpus(seed)
    ref = dedupe(docs, DedupeConfig())
    methods = {r["method"] for r in ref.duplicates}
    assert methods == {"exact", "near"} and len(ref.kept) < len(docs)  # the corpus plants both kinds of copy
    with TestPipeline() as p:
        _check(p, docs, DedupeConfig())
        # the plain setting: word shingles, no verification, no lede, no boilerplate
        plain = DedupeConfig(shingle="word", verification="none", lede_chars=0, boilerplate_min_docs=0)
        _check(p, docs, plain, label="Plain")
        # a small max_bucket makes buckets oversized: the head/tail rule must agree too
        _check(p, docs, DedupeConfig(max_bucket=2, boilerplate_min_docs=3), label="Small")


def test_dedupe_against_an_earlier_index_equals_the_reference(tmp_path) -> None:
    cfg = DedupeConfig()
    docs = _corpus(4)
    first, second = docs[: len(docs) // 2], docs[len(docs) // 2 :]
    ref1 = dedupe(first, cfg)
    rows = []
    for doc in ref1.kept:
        key, fp = ref1.kept_fingerprints[str(doc["doc_id"])]
        rows.append(index_row(doc, date_partition(doc["published_at"]), key, fp))
    # the second delivery holds copies of the first (and of itself) with the first's documents read again
    second = second + [dict(d, doc_id=f"re-{d['doc_id']}") for d in first[:10]] + first[10:13]
    _write_index(rows, tmp_path / "old")
    earlier = [index_entry(pickle.loads(pickle.dumps(r)), cfg.num_perm) for r in rows]
    ref2 = dedupe(second, cfg, earlier)
    assert any(r["kept_id"] in {d["doc_id"] for d in first} for r in ref2.duplicates)
    with TestPipeline() as p:
        _check(p, second, cfg, against=str(tmp_path / "old"), earlier=earlier, label="Against")


def test_dedupe_equals_the_reference_when_every_batch_holds_one_item(monkeypatch: pytest.MonkeyPatch) -> None:
    """The steps that gather items per bundle (line counts, memberships, pairs to align) sent on one at a time."""
    monkeypatch.setattr("newsflow.transforms.dedupe._BATCH_MEMBERSHIPS", 1)
    monkeypatch.setattr("newsflow.transforms.dedupe._BATCH_LINES", 1)
    docs = _corpus(1)
    with TestPipeline() as p:
        _check(p, docs, DedupeConfig())
