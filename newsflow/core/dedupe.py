"""Pure dedupe logic: text normalization, shingles, MinHash, LSH band keys, verification, keepers.

Everything here is deterministic across processes, machines and runners: hashes
come from :mod:`hashlib` (BLAKE2b) and fixed 64-bit arithmetic in numpy, never
from Python's salted ``hash()``; permutation parameters come from a seeded
``numpy.random.default_rng``.  The Beam wiring lives in
:mod:`newsflow.transforms.dedupe`::

    from newsflow.core.dedupe import MinHasher, exact_key, normalize_text, verify_pair
    mh = MinHasher(num_perm=128, seed=1)
    norm = normalize_text(doc["text"])
    sig = mh.signature(shingle_hashes(norm, "char", 5))

Similarity is measured on a set of hashed shingles (character k-grams of the
normalized text by default).  Two documents match when the estimated Jaccard
similarity reaches ``threshold``, or when the smaller document is contained in
the larger one (estimated containment >= ``containment_threshold``) with enough
shared shingles and a Jaccard floor; see :func:`verify_pair`.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import hashlib
import math
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa

__all__ = [
    "FINGERPRINT_VERSION",
    "INDEX_SCHEMA",
    "MinHasher",
    "NearDoc",
    "Fingerprint",
    "MatchParams",
    "best_container",
    "band_keys",
    "bucket_pairs",
    "bucket_keys",
    "candidate_probability",
    "edit_similarity",
    "estimate_jaccard",
    "exact_key",
    "fingerprint",
    "index_entry",
    "index_row",
    "is_earlier",
    "kept_id_of",
    "lede_key",
    "line_keys",
    "match_kind",
    "lsh_threshold",
    "node_day",
    "node_key",
    "published_day",
    "normalize_text",
    "normalized_lines",
    "shingle_hashes",
    "sketch_estimates",
    "sketch_kind",
    "strip_normalized",
    "strip_lines",
    "verify_pair",
    "within_days",
]

JACCARD = "jaccard"
CONTAINMENT = "containment"
EDIT = "edit"
ALIGN = "align"  # sketch verdict: only the texts' alignment can decide
_LEDE_BYTES = 8  # lede key length
_LINE_MIN_CHARS = 20  # shorter normalized lines are never boilerplate (too common by chance)
_P = np.uint64(0x100000001B3)  # FNV-64 prime (odd, so invertible mod 2**64)
_NULL_TIME = 9_999_999_999_999  # collected_at missing: sorts after every real time
_TIME_OFFSET = 10**12  # makes published_at (may be negative: before 1970) non-negative


# ---------------------------------------------------------------------------- normalization


@functools.lru_cache(maxsize=1)
def _punct_table() -> dict[int, str]:
    """Code points mapped to a space: punctuation (P*), controls, format chars and separators."""
    table = {}
    # Punctuation, controls, format characters and separators only exist in planes 0, 1 and 14
    # (planes 2-13 hold ideographs or nothing, 15-16 private use): scanning those is 5x faster
    # than all 1.1M code points, which every worker process pays once.
    for cp in (*range(0x20000), *range(0xE0000, 0xF0000)):
        cat = unicodedata.category(chr(cp))
        if cat[0] == "P" or cat in ("Cc", "Cf", "Zs", "Zl", "Zp"):
            table[cp] = " "
    table[0x00AD] = None  # soft hyphen: invisible, joins word parts
    table[0x200B] = None  # zero-width space
    table[0x200C] = None
    table[0x200D] = None
    table[0x2060] = None
    table[0xFEFF] = None
    return table


@functools.lru_cache(maxsize=1)
def _punct_kinds() -> np.ndarray:
    """:func:`_punct_table` as one byte per code point (0 kept, 1 a space, 2 removed), line feed kept."""
    kinds = np.zeros(0x110000, dtype=np.uint8)
    for cp, to in _punct_table().items():
        kinds[cp] = 1 if to == " " else 2
    kinds[0x0A] = 0
    return kinds


@functools.lru_cache(maxsize=1)
def _ascii_table() -> bytes:
    """:func:`_punct_kinds` for ASCII as a ``bytes.translate`` table (no ASCII character is removed)."""
    kinds = _punct_kinds()
    return bytes(0x20 if kinds[cp] == 1 else cp for cp in range(256))


def _fold(text: str) -> str:
    """NFKC, case folded, :func:`_punct_table` applied except that line feeds stay (whitespace not collapsed).

    The same as ``translate(_punct_table())`` with ``\n`` kept, as a lookup over the code points (a translate
    with a dict costs a Python lookup per character). Neither NFKC nor case folding makes a line feed, and NFKC
    never composes across one, so the lines of the result are the folded lines of ``text``.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    if text.isascii():
        return text.encode("ascii").translate(_ascii_table()).decode("ascii")
    cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    kinds = _punct_kinds()[cps]
    if not kinds.any():
        return text
    out = np.where(kinds == 1, np.uint32(0x20), cps).astype("<u4")
    if (kinds == 2).any():
        out = out[kinds != 2]
    return out.tobytes().decode("utf-32-le", "surrogatepass")


def normalize_text(text: str) -> str:
    """Text reduced to what makes it the same article for a reader.

    Unicode NFKC (full-width forms, ligatures, compatibility digits), case
    folding, every punctuation mark (quotes, dashes, brackets, commas...),
    control and format character turned into a space (soft hyphens and
    zero-width characters are removed), then whitespace runs (line breaks
    included) collapsed to one space.  Letters, marks, digits and symbols
    ($, %, emoji) are kept.  Copies that differ only in typography, quote or
    dash style, spacing, line wrapping or case normalize to the same string.
    """
    return " ".join(_fold(text).split())


def exact_key(text: str) -> bytes:
    """16-byte BLAKE2b digest of the normalized text (the exact-duplicate key).

    A text that normalizes to nothing (punctuation only) is keyed on its
    NFKC, whitespace-collapsed form instead, so such texts do not all collapse
    into one group.
    """
    norm = normalize_text(text)
    if norm:
        data = b"n" + norm.encode("utf-8", "surrogatepass")
    else:
        data = b"r" + " ".join(unicodedata.normalize("NFKC", text).split()).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16).digest()


def line_keys(text: str, min_chars: int = _LINE_MIN_CHARS) -> list[bytes]:
    """8-byte keys of the distinct normalized lines of ``text`` with at least ``min_chars`` characters.

    Used to find site boilerplate: lines that recur, word for word, across many
    documents that are otherwise different.
    """
    return sorted({_line_key(norm) for norm in normalized_lines(text) if len(norm) >= min_chars})


def strip_lines(text: str, drop: Iterable[bytes] | frozenset[bytes], min_chars: int = _LINE_MIN_CHARS) -> str:
    """``text`` without the lines whose :func:`line_keys` key is in ``drop``."""
    drop = drop if isinstance(drop, (set, frozenset)) else frozenset(drop)
    if not drop:
        return text
    kept = []
    for line in text.split("\n"):
        norm = normalize_text(line)
        if len(norm) >= min_chars and _line_key(norm) in drop:
            continue
        kept.append(line)
    return "\n".join(kept)


def _line_key(norm: str) -> bytes:
    """8-byte BLAKE2b key of one normalized line."""
    return hashlib.blake2b(norm.encode("utf-8", "surrogatepass"), digest_size=8).digest()


def normalized_lines(text: str, drop: frozenset[bytes] = frozenset(), min_chars: int = _LINE_MIN_CHARS) -> list[str]:
    """The non-empty normalized lines of ``text``, without those whose :func:`line_keys` key is in ``drop``.

    ``" ".join(normalized_lines(text))`` equals ``normalize_text(text)`` (a line break is
    whitespace, and NFKC never composes across it), so one pass gives both the text to
    shingle and the line structure that :func:`edit_similarity` uses. The text is folded in
    one pass (:func:`_fold` keeps its line feeds), not line by line.
    """
    lines = [norm for norm in (" ".join(line.split()) for line in _fold(text).split("\n")) if norm]
    return strip_normalized(lines, drop, min_chars) if drop else lines


def strip_normalized(lines: list[str], drop: frozenset[bytes], min_chars: int = _LINE_MIN_CHARS) -> list[str]:
    """Normalized ``lines`` without those whose key is in ``drop`` (no second normalization)."""
    return [line for line in lines if len(line) < min_chars or _line_key(line) not in drop]


# ---------------------------------------------------------------------------- shingles


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer, elementwise on uint64 (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _segment_hashes(cps: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Polynomial hashes (mod 2**64) of ``cps[s:e]`` for every (s, e), without a Python loop.

    h(s, e) = sum_{j=s}^{e-1} c_j * P**(e-1-j) = P**(e-1) * (S[e] - S[s]) with
    S[i] = sum_{j<i} c_j * Q**j and Q = P**-1 mod 2**64.
    """
    n = len(cps)
    q = np.uint64(pow(int(_P), -1, 1 << 64))
    qpow = np.empty(n + 1, dtype=np.uint64)
    ppow = np.empty(n + 1, dtype=np.uint64)
    qpow[0] = ppow[0] = 1
    if n:
        qpow[1:] = q
        ppow[1:] = _P
        qpow = np.cumprod(qpow, dtype=np.uint64)
        ppow = np.cumprod(ppow, dtype=np.uint64)
    pref = np.zeros(n + 1, dtype=np.uint64)
    np.cumsum(cps * qpow[:n], dtype=np.uint64, out=pref[1:])
    return ppow[ends - 1] * (pref[ends] - pref[starts])


def shingle_hashes(norm: str, kind: str = "char", size: int = 5) -> np.ndarray:
    """Sorted distinct 64-bit hashes of the shingles of a normalized text.

    Args:
      norm: output of :func:`normalize_text`.
      kind: ``"char"`` (character ``size``-grams, spaces included; robust to
        OCR-style character noise and to scripts written without spaces) or
        ``"word"`` (``size`` consecutive space-separated words).
      size: shingle length in characters or words.

    A text shorter than one shingle gives one shingle (the whole text); an
    empty text gives none.
    """
    if not norm:
        return np.empty(0, dtype=np.uint64)
    cps = np.frombuffer(norm.encode("utf-32-le", "surrogatepass"), dtype="<u4").astype(np.uint64)
    n = len(cps)
    if kind == "char":
        if n <= size:
            starts = np.array([0], dtype=np.int64)
            ends = np.array([n], dtype=np.int64)
        else:
            # same polynomial as _segment_hashes, rolled over the k positions (k vector ops)
            m = n - size + 1
            h = cps[:m].copy()
            for i in range(1, size):
                h *= _P
                h += cps[i : i + m]
            return _sorted_distinct(_mix64(h ^ np.uint64(size)))
    elif kind == "word":
        space = np.flatnonzero(cps == 32)
        wstart = np.concatenate(([0], space + 1))
        wend = np.concatenate((space, [n]))
        w = len(wstart)
        if w <= size:
            starts = np.array([0], dtype=np.int64)
            ends = np.array([n], dtype=np.int64)
        else:
            starts = wstart[: w - size + 1]
            ends = wend[size - 1 :]
    else:
        raise ValueError(f"unknown shingle kind {kind!r}")
    h = _segment_hashes(cps, starts, ends)
    return _sorted_distinct(_mix64(h ^ (ends - starts).astype(np.uint64)))


def _sorted_distinct(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` for a 1-d array, as one sort and a neighbour comparison (2-3x faster here)."""
    out = np.sort(values)
    if len(out) < 2:
        return out
    keep = np.empty(len(out), dtype=bool)
    keep[0] = True
    np.not_equal(out[1:], out[:-1], out=keep[1:])
    return out[keep]


# ---------------------------------------------------------------------------- MinHash


class MinHasher:
    """MinHash over 64-bit shingle hashes with ``num_perm`` multiply-add-shift permutations.

    h_i(x) = ((a_i * x + b_i) mod 2**64) >> 32 with odd random a_i; the
    signature is the per-permutation minimum, computed for all permutations at
    once as one (shingles x num_perm) numpy operation (in row chunks to bound
    memory on very long texts).
    """

    EMPTY = np.uint32(0xFFFFFFFF)

    def __init__(self, num_perm: int = 128, seed: int = 1, chunk_rows: int = 4096) -> None:
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x6E657773]))
        self.num_perm = num_perm
        self.seed = seed
        self.a = rng.integers(0, 1 << 63, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        self.b = rng.integers(0, 1 << 63, size=num_perm, dtype=np.uint64)
        self.chunk_rows = chunk_rows

    _BLOCK_ROWS = 1024  # rows per block: a (1024 x 128) uint64 block stays in the CPU cache

    def signature(self, shingles: np.ndarray) -> np.ndarray:
        """uint32[num_perm] signature; all 0xFFFFFFFF for an empty shingle set.

        The minimum of the top 32 bits is the top 32 bits of the 64-bit minimum, so the shift
        and the narrowing are done once on the result, not on every (shingle, permutation) value.
        """
        sig = np.full(self.num_perm, np.iinfo(np.uint64).max, dtype=np.uint64)
        rows = max(1, min(self.chunk_rows, self._BLOCK_ROWS, len(shingles)))
        block = np.empty((rows, self.num_perm), dtype=np.uint64)
        for start in range(0, len(shingles), rows):
            x = shingles[start : start + rows, None]
            h = block[: len(x)]
            np.multiply(x, self.a, out=h)
            h += self.b
            np.minimum(sig, h.min(axis=0), out=sig)
        return (sig >> np.uint64(32)).astype(np.uint32)


def band_keys(sig: np.ndarray, bands: int, rows: int) -> list[bytes]:
    """One 10-byte key per band: band number (2 bytes) + 8-byte digest of its ``rows`` values."""
    raw = np.ascontiguousarray(sig[: bands * rows], dtype="<u4").tobytes()
    width = rows * 4
    return [
        i.to_bytes(2, "big") + hashlib.blake2b(raw[i * width : (i + 1) * width], digest_size=8).digest()
        for i in range(bands)
    ]


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """Probability that two documents with Jaccard ``similarity`` share at least one band (the S-curve)."""
    return 1.0 - (1.0 - similarity**rows) ** bands


# ---------------------------------------------------------------------------- fingerprints


class Fingerprint(NamedTuple):
    """What near matching keeps of a text: shingle count, MinHash signature, bottom-k sketch.

    ``signature`` (num_perm little-endian uint32) gives the LSH band keys;
    ``sketch`` (the ``k`` smallest shingle hashes, top 32 bits, ascending)
    gives the similarity estimates used for verification.
    """

    shingles: int
    signature: bytes
    sketch: bytes
    lede: bytes = b""


class NearDoc(NamedTuple):
    """What near matching compares for one text: its fingerprint and, for long texts, its lines.

    ``text`` holds the normalized lines (joined with "\\n", boilerplate left out, at most
    :data:`EDIT_MAX_CHARS` characters) of a text long enough for the edit-noise rule
    (``MatchParams.edit_min_chars``); it is empty otherwise and for earlier runs' index rows.
    """

    fp: Fingerprint
    text: str = ""


EDIT_MAX_CHARS = 20_000
"""Characters of each text compared by :func:`edit_similarity` (bounds its cost on huge texts)."""


def fingerprint(shingles: np.ndarray, hasher: MinHasher, sketch_size: int = 256, lede: bytes = b"") -> Fingerprint:
    """Fingerprint of a sorted distinct shingle-hash array (output of :func:`shingle_hashes`)."""
    sig = hasher.signature(shingles)
    bottom = _sorted_distinct((shingles[:sketch_size] >> np.uint64(32)).astype(np.uint32))
    return Fingerprint(int(len(shingles)), sig.astype("<u4").tobytes(), bottom.astype("<u4").tobytes(), lede)


def lede_key(norm: str, chars: int) -> bytes:
    """8-byte key of the first ``chars`` characters of a normalized text (b"" when shorter or chars is 0).

    An abridged copy (a prefix of the original: a wire story cut short) has the
    original's lede, so this key makes the pair a candidate even when their
    Jaccard similarity is too low for the LSH bands to find it.
    """
    if chars <= 0 or len(norm) < chars:
        return b""
    return hashlib.blake2b(norm[:chars].encode("utf-8", "surrogatepass"), digest_size=_LEDE_BYTES).digest()


def bucket_keys(fp: Fingerprint, bands: int, rows: int) -> list[bytes]:
    """The LSH band keys of a fingerprint plus its lede key (if any): the candidate buckets it joins."""
    keys = band_keys(np.frombuffer(fp.signature, dtype="<u4"), bands, rows)
    if fp.lede:
        keys.append(b"\xff\xff" + fp.lede)
    return keys


def bucket_pairs(nodes: Iterable[str], max_bucket: int) -> Iterator[tuple[str, str]]:
    """The candidate pairs (smaller node, larger node) of one LSH bucket.

    Members are sorted by keeper key and each is paired with every earlier
    member, or with the first ``max_bucket`` only in an oversized bucket (a
    template shared by thousands of texts must not cost n**2 comparisons).
    Pairs of two earlier-run documents are skipped: both are already kept.
    """
    items = sorted(set(nodes))
    for j in range(1, len(items)):
        for i in range(min(j, max_bucket)):
            if is_earlier(items[i]) and is_earlier(items[j]):
                continue
            yield items[i], items[j]


def sketch_estimates(a: Fingerprint, b: Fingerprint) -> tuple[float, float, float]:
    """(Jaccard, containment of the smaller text in the larger, shared shingles) from bottom-k sketches.

    Both sketches are cut at the smaller of their two thresholds (the k-th
    smallest hash of a text with more than k shingles, else no cut): below
    that value each sketch holds ALL of its text's shingles, so the cut
    sketches are one uniform sample of both sets and give unbiased estimates.
    Containment is estimated far better this way than from MinHash
    agreement when the texts differ a lot in length (abridged copies).
    """
    sa = np.frombuffer(a.sketch, dtype="<u4")
    sb = np.frombuffer(b.sketch, dtype="<u4")
    if not len(sa) or not len(sb):
        return 0.0, 0.0, 0.0
    cut = min(
        int(sa[-1]) if a.shingles > len(sa) else 0xFFFFFFFF,
        int(sb[-1]) if b.shingles > len(sb) else 0xFFFFFFFF,
    )
    ca = sa[: np.searchsorted(sa, cut, side="right")]
    cb = sb[: np.searchsorted(sb, cut, side="right")]
    inter = len(np.intersect1d(ca, cb, assume_unique=True))
    union = len(ca) + len(cb) - inter
    jaccard = inter / union if union else 0.0
    small, n_small = (ca, a.shingles) if a.shingles <= b.shingles else (cb, b.shingles)
    containment = inter / len(small) if len(small) else 0.0
    return jaccard, containment, containment * n_small


# ---------------------------------------------------------------------------- verification


@dataclasses.dataclass(frozen=True)
class MatchParams:
    """What makes a candidate pair a match (see :func:`verify_pair`)."""

    threshold: float = 0.8
    containment_threshold: float = 0.95
    min_overlap: int = 250
    containment_min_jaccard: float = 0.2
    method: str = "jaccard_or_containment"  # or "jaccard", or "none" (every LSH candidate matches)
    edit_threshold: float = 0.9  # character alignment similarity of a noisy copy (0 = rule off)
    edit_min_jaccard: float = 0.3  # ...checked only for pairs at least this similar by Jaccard...
    edit_min_chars: int = 500  # ...whose texts (lines they do not share) have at least this many characters


def estimate_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Share of permutations whose minima agree (the MinHash estimate of Jaccard)."""
    return float(np.count_nonzero(sig_a == sig_b)) / len(sig_a)


def edit_similarity(a: str, b: str, min_chars: int = 0) -> float:
    """Character alignment similarity of two normalized texts (lines joined with "\\n"), in [0, 1].

    Lines (of 20+ characters) found word for word in both texts are set aside
    first: two different articles of one site share whole lines (headers,
    footers, a series intro), while a copy with character noise (OCR errors,
    typos, transliteration) has its differences spread over every line. The
    rest of each text is aligned as one string; the result is the Indel
    similarity ``2 * LCS / (len(a) + len(b))`` (1 = equal). 0.0 when either
    rest is shorter than ``min_chars``: on short texts a shared template with
    a few different names aligns almost as well as a noisy copy.
    """
    from rapidfuzz.distance import Indel

    la, lb = a.split("\n"), b.split("\n")
    shared = {x for x in la if len(x) >= _LINE_MIN_CHARS} & {x for x in lb if len(x) >= _LINE_MIN_CHARS}
    ra = " ".join(x for x in la if x not in shared)[:EDIT_MAX_CHARS]
    rb = " ".join(x for x in lb if x not in shared)[:EDIT_MAX_CHARS]
    if min(len(ra), len(rb)) < max(min_chars, 1):
        return 0.0
    return float(Indel.normalized_similarity(ra, rb))


def sketch_kind(
    a: Fingerprint, b: Fingerprint, params: MatchParams, len_a: int = 0, len_b: int = 0
) -> tuple[str, float]:
    """What the sketches alone decide: ("jaccard" | "containment" | "align" | "", similarity).

    ``"align"`` means the pair can only match by the edit-noise rule and needs the
    texts (lengths ``len_a``/``len_b``, 0 = no text): its Jaccard is at least
    ``edit_min_jaccard`` and the shorter text is at least ``t / (2 - t)`` of the
    longer (below that an Indel similarity of ``t`` is out of reach).
    """
    j, c, overlap = sketch_estimates(a, b)
    sim = max(j, c)
    if params.method == "none" or j >= params.threshold:
        return JACCARD, sim
    if (
        params.method == "jaccard_or_containment"
        and c >= params.containment_threshold
        and overlap >= params.min_overlap
        and j >= params.containment_min_jaccard
    ):
        return CONTAINMENT, sim
    t = params.edit_threshold
    if t > 0 and len_a and len_b and j >= params.edit_min_jaccard:
        short, long_ = sorted((len_a, len_b))
        if short >= long_ * t / (2.0 - t):
            return ALIGN, sim
    return "", sim


def match_kind(
    a: Fingerprint, b: Fingerprint, params: MatchParams, text_a: str = "", text_b: str = ""
) -> tuple[str, float]:
    """("jaccard" | "containment" | "edit" | "", similarity) of a candidate pair (see :func:`verify_pair`)."""
    kind, sim = sketch_kind(a, b, params, len(text_a), len(text_b))
    if kind != ALIGN:
        return kind, sim
    e = edit_similarity(text_a, text_b, params.edit_min_chars)
    return (EDIT, e) if e >= params.edit_threshold else ("", sim)


def verify_pair(
    a: Fingerprint, b: Fingerprint, params: MatchParams, text_a: str = "", text_b: str = ""
) -> tuple[bool, float]:
    """Decide whether two texts are near duplicates; returns (match, similarity).

    Match when the estimated Jaccard similarity is at least ``threshold``, or
    (method ``jaccard_or_containment``) when the smaller text is contained in
    the larger (containment >= ``containment_threshold``) AND they share at
    least ``min_overlap`` shingles AND Jaccard is at least
    ``containment_min_jaccard``: an abridged copy (a prefix or subset of the
    original) matches; a short text that shares a passage or boilerplate
    with a long one does not.  ``similarity`` is the larger of the two
    estimates.  Method ``none`` accepts every candidate (plain MinHash LSH).

    Edit-noise rule (``edit_threshold`` > 0, texts given): a pair whose
    Jaccard is at least ``edit_min_jaccard`` but under ``threshold`` matches
    when :func:`edit_similarity` of the two texts reaches ``edit_threshold``
    (then ``similarity`` is that alignment similarity). An OCR-noised copy
    shares only about half of its character 5-grams with the original, yet
    ~94% of its characters align; rewrites and template articles differ in
    whole phrases and align far less.

    A containment match is not transitive the way a Jaccard match is: the
    Beam transform attaches a contained text to its single best container
    only, so a short text found inside several different articles (a series
    intro, a standard paragraph) cannot bridge them into one cluster.
    """
    kind, sim = match_kind(a, b, params, text_a, text_b)
    return bool(kind), sim


# ---------------------------------------------------------------------------- keepers


def node_key(doc_id: str, published_at: int | None, collected_at: int | None, earlier: bool = False) -> str:
    """A string whose order is the keeper order; the smallest key of a cluster is its keeper.

    Order: documents from an earlier run's index first (they are already
    published), then earliest ``published_at``, then earliest
    ``collected_at`` (missing last), then smallest ``doc_id``.  Fixed-width
    fields make plain string comparison give this order on every runner.
    """
    pub = _NULL_TIME if published_at is None else _TIME_OFFSET + int(published_at)
    col = _NULL_TIME if collected_at is None else _TIME_OFFSET + int(collected_at)
    pub = min(max(pub, 0), _NULL_TIME)
    col = min(max(col, 0), _NULL_TIME)
    return f"{0 if earlier else 1}|{pub:013d}|{col:013d}|{doc_id}"


def kept_id_of(node: str) -> str:
    """The doc_id inside a :func:`node_key`."""
    return node.split("|", 3)[3]


def is_earlier(node: str) -> bool:
    """Whether a :func:`node_key` names a document of an earlier run's index (already kept)."""
    return node[0] == "0"


_DAY = 86400


def node_day(node: str) -> int:
    """The day (days since 1970-01-01, the ``date`` partition's day) of a :func:`node_key`'s ``published_at``."""
    return (int(node[2:15]) - _TIME_OFFSET) // _DAY


def published_day(published_at: int) -> int:
    """The day (days since 1970-01-01) of a naive ``published_at`` in seconds."""
    return int(published_at) // _DAY


def within_days(day: int, days: Sequence[int], window: int) -> bool:
    """Whether ``day`` is at most ``window`` days away from one of the sorted ``days``.

    The cross-run window: an earlier run's document is a candidate for a document of this
    run when their dates are at most ``index_retention_days`` apart.
    """
    i = bisect.bisect_left(days, day - window)
    return i < len(days) and days[i] <= day + window


# ---------------------------------------------------------------------------- index

FINGERPRINT_VERSION = 1
"""Version of what an index row's hashes mean: text normalization, the exact key, shingle
hashing, MinHash permutations and the lede key. It changes whenever any of them does, so
an index written before the change is not matched as if it were compatible."""

INDEX_SCHEMA = pa.schema(
    [
        pa.field("date", pa.string(), nullable=False),  # partition column: the kept doc's header date
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("published_at", pa.timestamp("s"), nullable=False),
        pa.field("collected_at", pa.timestamp("s", tz="UTC")),
        pa.field("exact_hash", pa.binary(16), nullable=False),
        pa.field("shingles", pa.int32(), nullable=False),  # distinct shingles; 0 = too short for near matching
        pa.field("signature", pa.binary()),  # num_perm little-endian uint32; null when too short
        pa.field("sketch", pa.binary()),  # bottom-k shingle hashes, little-endian uint32; null when too short
        pa.field("lede", pa.binary()),  # 8-byte key of the text's first characters; null when none
    ],
    metadata={"newsflow.table": "dedupe_index", "newsflow.schema_version": "1"},
)
"""One row per kept document: 16 + 4 + 4*num_perm + 4*sketch_size + 8 bytes of hashes (1,564 B
at 128 permutations and a 256-hash sketch) plus the id and two timestamps; hashes do not
compress, so that is about what a row costs on disk too."""


def index_row(doc: Mapping[str, Any], date: str, key: bytes, fp: Fingerprint | None) -> dict[str, Any]:
    """The index row of a kept document (timestamps stay int seconds)."""
    return {
        "date": date,
        "doc_id": doc["doc_id"],
        "published_at": int(doc["published_at"]),
        "collected_at": None if doc.get("collected_at") is None else int(doc["collected_at"]),
        "exact_hash": key,
        "shingles": 0 if fp is None else fp.shingles,
        "signature": None if fp is None else fp.signature,
        "sketch": None if fp is None else fp.sketch,
        "lede": None if fp is None or not fp.lede else fp.lede,
    }


def _seconds(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if hasattr(value, "timestamp"):  # datetime (naive = UTC wall time) or pandas Timestamp
        import datetime as dt

        if getattr(value, "tzinfo", None) is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return int(value.timestamp())
    return int(value)


def index_entry(row: Mapping[str, Any], num_perm: int) -> dict[str, Any]:
    """What matching needs from an index row: node key, exact key and fingerprint (or None).

    A signature of another length (an index written with other MinHash
    settings) is ignored: the document then takes part in exact matching only.
    A lede key of another length is ignored too (the bands still find the copies).
    """
    published = _seconds(row["published_at"])
    collected = _seconds(row.get("collected_at"))
    fp = None
    sig, sketch = row.get("signature"), row.get("sketch")
    if sig is not None and sketch is not None and len(sig) == 4 * num_perm and int(row.get("shingles") or 0) > 0:
        lede = bytes(row.get("lede") or b"")
        fp = Fingerprint(int(row["shingles"]), bytes(sig), bytes(sketch), lede if len(lede) == _LEDE_BYTES else b"")
    return {
        "node": node_key(str(row["doc_id"]), published, collected, earlier=True),
        "exact": bytes(row["exact_hash"]),
        "fp": fp,
    }


def best_container(a: tuple[float, str], b: tuple[float, str]) -> tuple[float, str]:
    """The better of two (similarity, container node) choices: higher similarity, then smaller node."""
    if a[0] != b[0]:
        return a if a[0] > b[0] else b
    return a if a[1] <= b[1] else b


def lsh_threshold(bands: int, rows: int) -> float:
    """The similarity where the S-curve is steepest, about (1/bands)**(1/rows)."""
    return math.pow(1.0 / bands, 1.0 / rows)
