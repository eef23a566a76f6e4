"""Pure tests of newsflow.core.dedupe: normalization, shingles, MinHash, LSH math, verification, keepers."""

from __future__ import annotations

import csv
import hashlib
import random
import subprocess
import sys
import unicodedata

import numpy as np
import pytest

from newsflow.core.dedupe import (
    Fingerprint,
    MatchParams,
    MinHasher,
    band_keys,
    best_container,
    bucket_pairs,
    candidate_probability,
    edit_similarity,
    estimate_jaccard,
    exact_key,
    fingerprint,
    is_earlier,
    kept_id_of,
    lede_key,
    line_keys,
    lsh_threshold,
    match_kind,
    node_key,
    normalize_text,
    normalized_lines,
    shingle_hashes,
    sketch_estimates,
    strip_lines,
    verify_pair,
)
from newsflow.io.index_codec import index_entry, index_row
from newsflow.schema import INDEX_SCHEMA


def _articles(shared_dir, lang: str = "eng", limit: int = 400) -> list[str]:
    csv.field_size_limit(sys.maxsize)
    path = shared_dir / "corpora" / "masakhanews" / lang / "dev.tsv"
    with open(path, newline="", encoding="utf-8") as fh:
        texts = [row["text"] for row in csv.DictReader(fh, delimiter="\t")]
    return [t for t in texts if len(t) > 800][:limit]


# ---------------------------------------------------------------------------- normalization


def test_normalize_unifies_typography_case_and_spacing():
    a = "\u201cHello\u201d \u2014 World\u2019s  BEST\u00a0caf\u00e9!\r\nNext line\u2026"
    b = '"hello" - world\'s best cafe\u0301\nnext   line...'
    assert normalize_text(a) == normalize_text(b) == "hello world s best caf\u00e9 next line"
    assert normalize_text("\uff21\uff22\uff23 \ufb01le") == "abc file"  # full-width and ligature (NFKC)
    assert normalize_text("co\u00adoperate") == "cooperate"  # soft hyphen removed
    assert normalize_text("Stra\u00dfe") == normalize_text("STRASSE")  # case folding, not lower()


def test_exact_key_groups_byte_different_copies_only():
    base = "The minister said on Monday that talks would resume."
    assert exact_key(base) == exact_key("  the MINISTER said on monday, that talks would resume!  ")
    assert exact_key(base) == exact_key(base.replace(" ", "\n"))
    assert exact_key(base) != exact_key(base.replace("Monday", "Tuesday"))
    assert len(exact_key(base)) == 16
    # punctuation-only texts do not all share one key
    assert exact_key("...") != exact_key("!!!")
    assert exact_key("...") == exact_key(" ... ")


def test_line_keys_and_strip_lines():
    text = "Follow us on all our social media channels\nThe real story is here and it is long enough\nshort"
    keys = line_keys(text)
    assert len(keys) == 2  # "short" is under the minimum line length
    drop = {line_keys("FOLLOW us on all our social media channels!")[0]}
    assert strip_lines(text, drop) == "The real story is here and it is long enough\nshort"
    assert strip_lines(text, set()) == text


# ---------------------------------------------------------------------------- shingles


def test_char_shingles_match_a_plain_python_reference():
    norm = normalize_text("Les délégations de Venezuela et des États-Unis se sont réunies")
    got = shingle_hashes(norm, "char", 5)
    assert got.dtype == np.uint64 and np.all(np.diff(got.astype(np.float64)) >= 0)
    grams = {norm[i : i + 5] for i in range(len(norm) - 4)}
    assert len(got) == len(grams)
    # same gram -> same hash, wherever it occurs
    assert set(shingle_hashes("abcde abcde", "char", 5).tolist()) == set(
        shingle_hashes("abcde abcde abcde", "char", 5).tolist()
    )


def test_word_shingles_and_short_texts():
    words = shingle_hashes("a bb ccc dddd", "word", 2)
    assert len(words) == 3
    assert len(shingle_hashes("a bb ccc dddd a bb", "word", 2)) == 4  # "a bb" repeats
    assert len(shingle_hashes("abc", "char", 5)) == 1  # shorter than one shingle: the whole text
    assert len(shingle_hashes("", "char", 5)) == 0
    assert not set(shingle_hashes("abc", "char", 5).tolist()) & set(shingle_hashes("abcd", "char", 5).tolist())
    with pytest.raises(ValueError):
        shingle_hashes("abc", "bytes", 3)


def test_hashes_are_the_same_in_another_process():
    code = (
        "from newsflow.core.dedupe import *;"
        "print(exact_key('Hello world').hex(), MinHasher(16, 7).signature("
        "shingle_hashes(normalize_text('Deterministic across processes, please'))).tolist())"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PYTHONPATH": "."},
        ).stdout
        for seed in ("1", "2")
    }
    here = f"{exact_key('Hello world').hex()} " + str(
        MinHasher(16, 7).signature(shingle_hashes(normalize_text("Deterministic across processes, please"))).tolist()
    )
    assert outs == {here + "\n"}


# ---------------------------------------------------------------------------- MinHash


def test_identical_texts_identical_signatures_and_empty_set():
    mh = MinHasher(64, seed=3)
    s = shingle_hashes(normalize_text("one two three four five six seven eight nine ten"))
    assert np.array_equal(mh.signature(s), mh.signature(s.copy()))
    assert np.all(mh.signature(np.empty(0, dtype=np.uint64)) == 0xFFFFFFFF)
    assert not np.array_equal(MinHasher(64, seed=4).signature(s), mh.signature(s))


def test_empty_bins_borrow_from_their_own_order():
    mh = MinHasher(32, seed=2)
    one = np.array([12345], dtype=np.uint64)
    sig = mh.signature(one)
    assert len(set(sig.tolist())) == 1 and sig[0] != 0xFFFFFFFF  # one shingle: every bin borrows its value
    for i in range(32):  # each bin's order lists every other bin once
        assert sorted(mh.order[i].tolist()) == [j for j in range(32) if j != i]
    assert not np.array_equal(mh.order, MinHasher(32, seed=3).order)


def test_estimated_jaccard_tracks_true_jaccard(shared_dir):
    texts = _articles(shared_dir, limit=150)
    mh = MinHasher(128, seed=1)
    rnd = random.Random(5)
    errors = []
    for text in texts:
        norm = normalize_text(text)
        cut = rnd.randint(len(norm) // 4, len(norm))
        start = rnd.randint(0, len(norm) // 5)
        a, b = shingle_hashes(norm), shingle_hashes(norm[start:cut])
        true = len(np.intersect1d(a, b)) / len(np.union1d(a, b))
        errors.append(estimate_jaccard(mh.signature(a), mh.signature(b)) - true)
    errors = np.array(errors)
    assert abs(errors.mean()) < 0.015  # unbiased
    assert errors.std() < 0.06  # about sqrt(J(1-J)/128) <= 0.044
    assert np.mean(np.abs(errors) > 0.15) < 0.01


# ---------------------------------------------------------------------------- LSH


def test_s_curve_probabilities():
    assert candidate_probability(1.0, 32, 4) == 1.0
    assert candidate_probability(0.0, 32, 4) == 0.0
    assert candidate_probability(0.8, 32, 4) > 0.9999
    assert 0.85 < candidate_probability(0.5, 32, 4) < 0.9
    assert candidate_probability(0.1, 32, 4) < 0.004
    sims = np.linspace(0, 1, 21)
    probs = [candidate_probability(s, 20, 5) for s in sims]
    assert all(b >= a for a, b in zip(probs, probs[1:], strict=False))  # monotone
    assert abs(lsh_threshold(32, 4) - (1 / 32) ** 0.25) < 1e-12


def test_band_keys_empirical_rate_follows_the_s_curve():
    rng = np.random.default_rng(1)
    mh = MinHasher(128, seed=1)
    hits = 0
    trials = 300
    for _ in range(trials):
        common = rng.integers(0, 2**63, size=500, dtype=np.uint64)
        a = np.unique(np.concatenate([common, rng.integers(0, 2**63, size=250, dtype=np.uint64)]))
        b = np.unique(np.concatenate([common, rng.integers(0, 2**63, size=250, dtype=np.uint64)]))
        # Jaccard = 500 / 1000 = 0.5
        hits += bool(set(band_keys(mh.signature(a), 32, 4)) & set(band_keys(mh.signature(b), 32, 4)))
    expected = candidate_probability(0.5, 32, 4)  # 0.874
    assert abs(hits / trials - expected) < 0.07
    keys = band_keys(mh.signature(a), 32, 4)
    assert len(keys) == 32 and len(set(keys)) == 32 and all(len(k) == 10 for k in keys)


# ---------------------------------------------------------------------------- verification


def _fp_pair(n_common: int, n_a: int, n_b: int, seed: int = 0) -> tuple[Fingerprint, Fingerprint]:
    rng = np.random.default_rng(seed)
    common = rng.integers(0, 2**63, size=n_common, dtype=np.uint64)
    a = np.unique(np.concatenate([common, rng.integers(0, 2**63, size=n_a, dtype=np.uint64)]))
    b = np.unique(np.concatenate([common, rng.integers(0, 2**63, size=n_b, dtype=np.uint64)]))
    mh = MinHasher(128, seed=1)
    return fingerprint(a, mh, 256), fingerprint(b, mh, 256)


def test_sketch_estimates_are_close_to_the_truth():
    for seed in range(20):
        a, b = _fp_pair(600, 0, 1400, seed)  # a inside b: J 0.3, containment 1
        j, c, overlap = sketch_estimates(a, b)
        assert abs(j - 0.3) < 0.1 and c == 1.0 and abs(overlap - 600) < 1e-9
        a, b = _fp_pair(500, 500, 500, seed)  # J 1/3, containment 0.5
        j, c, overlap = sketch_estimates(a, b)
        assert abs(j - 1 / 3) < 0.1 and abs(c - 0.5) < 0.12
    small_a, small_b = _fp_pair(40, 10, 0)  # under the sketch size: exact values
    assert sketch_estimates(small_a, small_b) == (40 / 50, 1.0, 40.0)
    assert sketch_estimates(small_a, Fingerprint(0, b"", b"")) == (0.0, 0.0, 0.0)


def test_verify_pair_rules():
    p = MatchParams(threshold=0.8, containment_threshold=0.95, min_overlap=150, containment_min_jaccard=0.2)
    # near copy: Jaccard ~0.9
    ok, sim = verify_pair(*_fp_pair(900, 50, 50), p)
    assert ok and sim > 0.8
    assert match_kind(*_fp_pair(900, 50, 50), p)[0] == "jaccard"
    # abridged copy: small doc fully inside a doc 2.5x its size (J 0.4, containment 1)
    ok, sim = verify_pair(*_fp_pair(800, 0, 1200), p)
    assert ok and sim > 0.95
    assert match_kind(*_fp_pair(800, 0, 1200), p)[0] == "containment"
    assert not verify_pair(*_fp_pair(800, 0, 1200), MatchParams(0.8, method="jaccard"))[0]
    # a short text wholly inside a long one (J ~0.1): not a copy
    assert not verify_pair(*_fp_pair(300, 0, 2700), p)[0]
    # too little overlap for containment to count
    assert not verify_pair(*_fp_pair(100, 0, 150), p)[0]
    # mostly shared (boilerplate) but not contained: containment ~0.7
    assert not verify_pair(*_fp_pair(700, 300, 300), p)[0]
    # unrelated
    ok, sim = verify_pair(*_fp_pair(50, 500, 500), p)
    assert not ok and sim < 0.3
    assert verify_pair(*_fp_pair(50, 500, 500), MatchParams(method="none"))[0]


def test_best_container_is_deterministic():
    assert best_container((0.9, "b"), (0.95, "c")) == (0.95, "c")
    assert best_container((0.9, "b"), (0.9, "a")) == (0.9, "a")
    assert best_container((0.9, "a"), (0.9, "b")) == (0.9, "a")


_VOCAB_RNG = np.random.default_rng(7)
_VOCAB = [
    "".join(_VOCAB_RNG.choice(list("abcdefghijklmnopqrstuvwxyz"), size=int(n)))
    for n in _VOCAB_RNG.integers(3, 10, size=3000)
]


def _words(n: int, seed: int | None = None) -> list[str]:
    rng = np.random.default_rng(seed)
    return [_VOCAB[i] for i in rng.integers(0, len(_VOCAB), size=n)]


def _ocr(text: str, rate: float, seed: int) -> str:
    """Deterministic character noise: every letter swapped/dropped/doubled with probability ``rate``."""
    rng = np.random.default_rng(seed)
    out = []
    for ch, u, v in zip(text, rng.random(len(text)), rng.random(len(text)), strict=True):
        if ch.isalpha() and u < rate:
            out.append("" if v < 0.3 else ch + ch if v < 0.5 else "e" if ch != "e" else "c")
        else:
            out.append(ch)
    return "".join(out)


def test_normalized_lines_equal_normalize_text_and_drop_boilerplate():
    text = "Ｈｅａｄｌｉｎｅ — Today!\n\n  Second   line, with\u00adsoft hyphen.\r\nSubscribe to our newsletter today"
    lines = normalized_lines(text)
    assert " ".join(lines) == normalize_text(text)
    assert len(lines) == 3
    drop = frozenset(line_keys("Subscribe to our newsletter today"))
    assert normalized_lines(text, drop) == lines[:2]


def test_edit_similarity_separates_noisy_copies_from_templates():
    words = _words(400)
    original = "\n".join(" ".join(words[i : i + 40]) for i in range(0, 400, 40))
    noisy = _ocr(original, 0.10, seed=3)
    norm_a = "\n".join(normalized_lines(original))
    norm_b = "\n".join(normalized_lines(noisy))
    assert edit_similarity(norm_a, norm_b) >= 0.9
    # a rewrite: the same frame with 30% of the words replaced as whole passages
    other = words[:100] + _words(60) + words[160:300] + _words(60) + words[360:]
    norm_t = "\n".join(normalized_lines(" ".join(other)))
    assert edit_similarity(norm_a.replace("\n", " "), norm_t) < 0.9
    # lines shared word for word are set aside: two texts that only share a footer are not copies
    footer = " ".join(_words(60))
    a, b = " ".join(_words(150)) + "\n" + footer, " ".join(_words(150)) + "\n" + footer
    assert edit_similarity(a, b) < 0.6
    assert edit_similarity("short text", "short text", min_chars=500) == 0.0
    # a cutoff keeps every similarity at or over it exactly and turns the rest into 0.0
    for x, y in ((norm_a, norm_b), (norm_a.replace("\n", " "), norm_t), (a, b)):
        full = edit_similarity(x, y)
        assert edit_similarity(x, y, cutoff=0.9) == (full if full >= 0.9 else 0.0)
    assert edit_similarity("", "") == 0.0


def test_match_kind_edit_rule_needs_texts_jaccard_floor_and_length():
    words = _words(400)
    original = " ".join(words)
    noisy = _ocr(original, 0.10, seed=5)
    mh = MinHasher(128, 1)
    na, nb = normalize_text(original), normalize_text(noisy)
    fa, fb = (fingerprint(shingle_hashes(x, "char", 5), mh, 256) for x in (na, nb))
    p = MatchParams()
    j = sketch_estimates(fa, fb)[0]
    assert p.edit_min_jaccard <= j < p.threshold  # Jaccard alone would miss this copy
    kind, sim = match_kind(fa, fb, p, na, nb)
    assert kind == "edit" and sim >= 0.9
    assert match_kind(fa, fb, p)[0] == ""  # without texts (an earlier run's index row) no edit check
    assert match_kind(fa, fb, MatchParams(edit_threshold=0.0), na, nb)[0] == ""
    assert match_kind(fa, fb, MatchParams(edit_min_jaccard=0.99), na, nb)[0] == ""
    assert match_kind(fa, fb, MatchParams(edit_min_chars=len(na) + 10), na, nb)[0] == ""


def test_bucket_pairs_caps_and_skips_earlier_pairs():
    nodes = [node_key(f"d{i}", i, None) for i in range(6)]
    pairs = list(bucket_pairs(reversed(nodes + nodes[:2]), max_bucket=2))
    assert pairs[0] == (nodes[0], nodes[1])
    assert len(pairs) == 1 + 2 * 4 and all(a < b for a, b in pairs)
    assert {a for a, _ in pairs} == {nodes[0], nodes[1]}
    old = [node_key(f"o{i}", i, None, earlier=True) for i in range(3)]
    assert list(bucket_pairs(old, 10)) == []
    assert sorted(bucket_pairs([*old, nodes[0]], 10)) == [(o, nodes[0]) for o in old]


# ---------------------------------------------------------------------------- keepers


def test_node_key_orders_by_published_then_collected_then_id():
    keys = [
        node_key("z", 100, 50),
        node_key("a", 100, None),  # collected missing: after any real collected time
        node_key("b", 100, 60),
        node_key("c", 99, 999),
        node_key("old", 500, 1, earlier=True),  # earlier run: always first
        node_key("neg", -5_000_000_000, None),  # before 1970
        node_key("a2", 100, 50),
    ]
    ordered = [kept_id_of(k) for k in sorted(keys)]
    assert ordered == ["old", "neg", "c", "a2", "z", "b", "a"]
    assert kept_id_of(node_key("id|with|bars", 1, 1)) == "id|with|bars"
    assert [is_earlier(k) for k in sorted(keys)[:2]] == [True, False]


# ---------------------------------------------------------------------------- index


def test_index_row_round_trip_through_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    mh = MinHasher(128, seed=1)
    fp = fingerprint(shingle_hashes(normalize_text("some text long enough to have shingles " * 5)), mh, 256)
    doc = {"doc_id": "d1", "published_at": 1720000000, "collected_at": 1720003600, "text": "x"}
    row = index_row(doc, "2024-07-03", exact_key("x"), fp)
    short = index_row({**doc, "doc_id": "d2", "collected_at": None}, "2024-07-03", exact_key("y"), None)
    arrays = []
    for field in INDEX_SCHEMA:
        values = [r[field.name] for r in (row, short)]
        if pa.types.is_timestamp(field.type):
            arrays.append(pa.array(values, pa.int64()).cast(field.type))
        else:
            arrays.append(pa.array(values, field.type))
    table = pa.Table.from_arrays(arrays, schema=INDEX_SCHEMA)
    pq.write_table(table, tmp_path / "part-0.parquet")
    back = pq.read_table(tmp_path / "part-0.parquet").to_pylist()
    e1, e2 = (index_entry(r, 128) for r in back)
    assert e1["node"] == node_key("d1", 1720000000, 1720003600, earlier=True)
    assert e1["exact"] == exact_key("x") and e1["fp"] == fp
    assert e2["fp"] is None and e2["node"].endswith("|d2")
    assert index_entry(back[0], 64)["fp"] is None  # other MinHash size: exact matching only
    lede = lede_key("a" * 300, 250)
    assert index_entry({**back[0], "lede": lede}, 128)["fp"].lede == lede
    assert index_entry({**back[0], "lede": b"x" * 300}, 128)["fp"].lede == b""  # not a lede key: ignored
    assert len(row["signature"]) == 512 and len(row["sketch"]) == 4 * min(256, fp.shingles)


# ---------------------------------------------------------------------------- fast paths against their definitions
# The reference implementations below are the direct forms of the definitions (one ``str.translate`` per line; the
# top 32 bits of every (shingle, permutation) hash, then their minimum); the library computes the same values in
# fewer, vectorized passes.


def _ref_normalize_text(text: str) -> str:
    from newsflow.core.dedupe.text import _punct_table

    text = unicodedata.normalize("NFKC", text).casefold().translate(_punct_table())
    return " ".join(text.split())


def _ref_normalized_lines(text: str) -> list[str]:
    return [norm for norm in (_ref_normalize_text(line) for line in text.split("\n")) if norm]


def _ref_mix64(x: int) -> int:
    """splitmix64's finalizer in Python integers."""
    mask = (1 << 64) - 1
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & mask
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & mask
    return x ^ (x >> 31)


def _ref_signature(hasher: MinHasher, shingles: np.ndarray) -> np.ndarray:
    """One-permutation MinHash with optimal densification, shingle by shingle in Python integers."""

    best: dict[int, int] = {}
    for shingle in shingles.tolist():
        h = _ref_mix64(shingle ^ int(hasher.key))
        b, v = ((h >> 32) * hasher.num_perm) >> 32, h & 0xFFFFFFFF
        best[b] = min(v, best.get(b, v))
    out = []
    for i in range(hasher.num_perm):
        if i in best or not best:
            out.append(best.get(i, 0xFFFFFFFF))
        else:
            out.append(best[next(j for j in hasher.order[i].tolist() if j in best)])
    return np.array(out, dtype=np.uint32)


_LANGS = ("eng", "fra", "hau", "swa", "amh", "yor", "tir", "som", "ibo")
_TRICKY = [
    "",
    "\n\n",
    "a\u0301\nb",  # a combining mark just before a line break
    "x\n\u0301y",  # ... and just after one (NFKC must not compose across it)
    "co\u00adoperate\u200b \ufeffword\u2060s",  # removed characters
    "Stra\u00dfe \u0130stanbul \u03a3\u039f\u03a3 \ufb01le \uff21\uff22",  # folding, ligatures, full width
    "line\r\nnext\u2028sep\u2029par\u0085nel\x0bvt\x1cfs",  # every kind of line and paragraph break
    "emoji \U0001f600 tag\U000e0041\U000e007f math \U0001d400 \ud800 lone",  # astral chars, a lone surrogate
    "\u1100\u1161\u11a8\n\u1161",  # Hangul jamo around a line break
    "only ascii, with: punctuation!\tand\ttabs -- ok?",
]


@pytest.fixture(scope="module")
def many_texts(shared_dir) -> list[str]:
    texts = list(_TRICKY)
    for lang in _LANGS:
        texts += _articles(shared_dir, lang, limit=60)
    return texts


def test_normalization_equals_the_per_line_translate_definition(many_texts):
    for text in many_texts:
        assert normalize_text(text) == _ref_normalize_text(text), text[:80]
        assert normalized_lines(text) == _ref_normalized_lines(text), text[:80]
        assert line_keys(text) == sorted(
            {
                hashlib.blake2b(n.encode("utf-8", "surrogatepass"), digest_size=8).digest()
                for n in _ref_normalized_lines(text)
                if len(n) >= 20
            }
        )


def test_text_keys_equal_the_exact_key_and_line_keys_of_the_text(many_texts):
    """One normalization gives both keys; punctuation-only texts keep their raw-form exact key."""
    from newsflow.core.dedupe import text_keys

    for text in [*many_texts, "!!! ... ---", "?\n\n¿"]:
        assert text_keys(text) == (exact_key(text), line_keys(text)), text[:80]
    for start in range(0, 0x110000, 8192):
        block = "\n".join(chr(cp) * 21 for cp in range(start, min(start + 8192, 0x110000), 97))
        assert text_keys(block) == (exact_key(block), line_keys(block)), hex(start)
    assert text_keys("Title line that is long enough\nshort", min_chars=5)[1] == line_keys(
        "Title line that is long enough\nshort", 5
    )


def test_normalization_equals_the_definition_on_every_code_point():
    for start in range(0, 0x110000, 2048):
        block = "".join(chr(cp) for cp in range(start, min(start + 2048, 0x110000)))
        for text in (block, block.replace("\u3000", "\n"), "\n".join(block[i : i + 7] for i in range(0, 2048, 7))):
            assert normalize_text(text) == _ref_normalize_text(text), hex(start)
            assert normalized_lines(text) == _ref_normalized_lines(text), hex(start)


def test_exact_keys_equal_the_definition(many_texts):
    for text in many_texts:
        norm = _ref_normalize_text(text)
        data = (
            b"n" + norm.encode("utf-8", "surrogatepass")
            if norm
            else b"r" + " ".join(unicodedata.normalize("NFKC", text).split()).encode("utf-8", "surrogatepass")
        )
        assert exact_key(text) == hashlib.blake2b(data, digest_size=16).digest()


@pytest.mark.parametrize("num_perm", [7, 128])
def test_signatures_equal_the_per_shingle_definition(many_texts, num_perm):
    hasher = MinHasher(num_perm, seed=3)
    texts = many_texts[:: {7: 4}.get(num_perm, 1)]
    checked = 0
    for text in texts + ["x" * 5000 + "".join(chr(0x4E00 + i) for i in range(3000))]:
        shingles = shingle_hashes(normalize_text(text), "char", 5)
        got = hasher.signature(shingles)
        assert got.dtype == np.uint32
        np.testing.assert_array_equal(got, _ref_signature(hasher, shingles))
        checked += bool((np.bincount(hasher.bins_and_values(shingles)[0], minlength=num_perm) == 0).any())
    assert checked > 0  # some texts leave bins empty: densification is compared too
    np.testing.assert_array_equal(hasher.signature(np.empty(0, dtype=np.uint64)), np.full(num_perm, 0xFFFFFFFF))


def _ref_char_shingles(norm: str, size: int = 5) -> list[int]:
    """Character shingle hashes by their definition, in Python integers (sorted, distinct)."""
    mask, p = (1 << 64) - 1, 0x100000001B3

    cps = [ord(c) for c in norm]
    if len(cps) <= size:
        h = 0
        for c in cps:
            h = (h * p + c) & mask
        return [_ref_mix64(h ^ len(cps))] if cps else []
    out = set()
    for i in range(len(cps) - size + 1):
        h = 0
        for c in cps[i : i + size]:
            h = (h * p + c) & mask
        out.add(_ref_mix64(h ^ size))
    return sorted(out)


def test_shingles_and_sketches_equal_their_definitions(many_texts):
    from newsflow.core.dedupe.fingerprint import _sorted_distinct

    rng = np.random.default_rng(11)
    for n in (0, 1, 2, 3, 50, 3000):
        for values in (rng.integers(0, 1 << 63, size=n, dtype=np.uint64), rng.integers(0, 5, size=n).astype(np.uint32)):
            got = _sorted_distinct(values)
            assert got.dtype == values.dtype
            np.testing.assert_array_equal(got, np.unique(values))
    hasher = MinHasher(64, seed=2)
    for text in many_texts[::6] + ["abc", "abcde", ""]:
        norm = normalize_text(text)
        shingles = shingle_hashes(norm, "char", 5)
        assert shingles.tolist() == _ref_char_shingles(norm)
        fp = fingerprint(shingles, hasher, 256)
        assert fp.sketch == np.unique((shingles[:256] >> np.uint64(32)).astype(np.uint32)).astype("<u4").tobytes()
        assert fp.signature == _ref_signature(hasher, shingles).astype("<u4").tobytes()
        assert fp.shingles == len(shingles)
