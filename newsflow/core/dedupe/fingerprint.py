"""Fingerprints: shingle hashes, MinHash signature, bottom-k sketch, lede key and LSH bucket keys.

Deterministic on every process and runner: hashes come from :mod:`hashlib` (BLAKE2b) and fixed 64-bit
arithmetic in numpy, never from Python's salted ``hash()``; permutation parameters from a seeded
``numpy.random.default_rng``.
"""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from newsflow.core.dedupe.text import normalized_lines, strip_normalized

if TYPE_CHECKING:
    from newsflow.config import DedupeConfig

__all__ = [
    "EDIT_MAX_CHARS",
    "FINGERPRINT_VERSION",
    "Fingerprint",
    "MinHasher",
    "NearDoc",
    "band_keys",
    "bucket_keys",
    "candidate_probability",
    "fingerprint",
    "lede_key",
    "lsh_threshold",
    "shingle_hashes",
    "text_fingerprint",
]

_LEDE_BYTES = 8  # lede key length
_P = np.uint64(0x100000001B3)  # FNV-64 prime (odd, so invertible mod 2**64)

FINGERPRINT_VERSION = 2
"""Version of what an index row's hashes mean: text normalization, the exact key, shingle
hashing, the MinHash scheme and its seeded parameters, and the lede key. It changes whenever any of them does, so
an index written before the change is not matched as if it were compatible."""


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
    """One-permutation MinHash with optimal densification: ``num_perm`` values from one hash per shingle.

    Each shingle hash is mixed with a seeded key; its top 32 bits pick one of ``num_perm`` bins
    (multiply-shift), its low 32 bits are the value, and each bin keeps its minimum. A bin that
    no shingle fell into takes the value of the first non-empty bin in a fixed pseudo-random
    order of the other bins, its own (``self.order[i]``): the optimal densification of
    Shrivastava (ICML 2017). Two texts then agree in a bin with probability equal to their
    Jaccard similarity, as with ``num_perm`` independent permutations, for one hash per shingle
    instead of ``num_perm``.
    """

    EMPTY = np.uint32(0xFFFFFFFF)

    def __init__(self, num_perm: int = 128, seed: int = 1) -> None:
        if num_perm < 1:
            raise ValueError(f"num_perm must be at least 1, got {num_perm}")
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x6E657773, 2]))
        self.num_perm = num_perm
        self.seed = seed
        self.key = rng.integers(0, 1 << 63, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        # order[i]: the other bins in the order bin i borrows from when it is empty
        self.order = np.array(
            [[j for j in rng.permutation(num_perm) if j != i] for i in range(num_perm)], dtype=np.intp
        ).reshape(num_perm, num_perm - 1)

    def bins_and_values(self, shingles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bin (``intp``) and value (``uint32``) of each shingle hash."""
        h = _mix64(np.asarray(shingles, dtype=np.uint64) ^ self.key)
        bins = ((h >> np.uint64(32)) * np.uint64(self.num_perm)) >> np.uint64(32)
        return bins.astype(np.intp), (h & np.uint64(0xFFFFFFFF)).astype(np.uint32)

    def signature(self, shingles: np.ndarray) -> np.ndarray:
        """uint32[num_perm] signature; all 0xFFFFFFFF for an empty shingle set."""
        sig = np.full(self.num_perm, self.EMPTY, dtype=np.uint32)
        if len(shingles) == 0:
            return sig
        bins, values = self.bins_and_values(shingles)
        np.minimum.at(sig, bins, values)
        filled = np.zeros(self.num_perm, dtype=bool)
        filled[bins] = True
        empty = np.flatnonzero(~filled)
        if len(empty):
            order = self.order[empty]
            first = np.argmax(filled[order], axis=1)  # some bin is filled: the set is not empty
            sig[empty] = sig[order[np.arange(len(empty)), first]]
        return sig


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


def lsh_threshold(bands: int, rows: int) -> float:
    """The similarity where the S-curve is steepest, about (1/bands)**(1/rows)."""
    return math.pow(1.0 / bands, 1.0 / rows)


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
