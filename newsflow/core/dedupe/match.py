"""Verification of a candidate pair: what makes two fingerprints (and texts) a match, and the edge it makes.

Similarity is measured on a set of hashed shingles (character k-grams of the normalized text by default).
Two documents match when the estimated Jaccard similarity reaches ``threshold``, or when the smaller is
contained in the larger (estimated containment >= ``containment_threshold``) with enough shared shingles
and a Jaccard floor, or (noisy copies) when their characters align; see :func:`verify_pair`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from newsflow.core.dedupe.fingerprint import EDIT_MAX_CHARS, Fingerprint, NearDoc
from newsflow.core.dedupe.text import LINE_MIN_CHARS as _LINE_MIN_CHARS

__all__ = [
    "ALIGN",
    "CONTAINMENT",
    "EDIT",
    "JACCARD",
    "MatchParams",
    "best_container",
    "edge",
    "edit_similarity",
    "estimate_jaccard",
    "match_kind",
    "pair_edge",
    "sketch_estimates",
    "sketch_kind",
    "verify_pair",
]

JACCARD = "jaccard"
CONTAINMENT = "containment"
EDIT = "edit"
ALIGN = "align"  # sketch verdict: only the texts' alignment can decide


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


def edit_similarity(a: str, b: str, min_chars: int = 0, cutoff: float = 0.0) -> float:
    """Character alignment similarity of two normalized texts (lines joined with "\\n"), in [0, 1].

    Lines (of 20+ characters) found word for word in both texts are set aside
    first: two different articles of one site share whole lines (headers,
    footers, a series intro), while a copy with character noise (OCR errors,
    typos, transliteration) has its differences spread over every line. The
    rest of each text is aligned as one string; the result is the Indel
    similarity ``2 * LCS / (len(a) + len(b))`` (1 = equal). 0.0 when either
    rest is shorter than ``min_chars``: on short texts a shared template with
    a few different names aligns almost as well as a noisy copy. A similarity
    under ``cutoff`` is returned as 0.0: the alignment then stops as soon as
    the cutoff is out of reach (about 4x faster on pairs that do not match).
    """
    from rapidfuzz.distance import Indel

    la, lb = a.split("\n"), b.split("\n")
    shared = {x for x in la if len(x) >= _LINE_MIN_CHARS} & {x for x in lb if len(x) >= _LINE_MIN_CHARS}
    ra = " ".join(x for x in la if x not in shared)[:EDIT_MAX_CHARS]
    rb = " ".join(x for x in lb if x not in shared)[:EDIT_MAX_CHARS]
    if min(len(ra), len(rb)) < max(min_chars, 1):
        return 0.0
    return float(Indel.normalized_similarity(ra, rb, score_cutoff=cutoff or None))


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
    e = edit_similarity(text_a, text_b, params.edit_min_chars, params.edit_threshold)
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


def best_container(a: tuple[float, str], b: tuple[float, str]) -> tuple[float, str]:
    """The better of two (similarity, container node) choices: higher similarity, then smaller node."""
    if a[0] != b[0]:
        return a if a[0] > b[0] else b
    return a if a[1] <= b[1] else b


def edge(kind: str, sim: float, a: str, shingles_a: int, b: str, shingles_b: int) -> tuple[str, str, str, float] | None:
    """The edge a verdict makes: ``(kind, a, b, sim)`` or ``("containment", contained, container, sim)``; None: none.

    A containment edge points from the text with fewer shingles to the one with more.
    """
    if not kind:
        return None
    if kind == CONTAINMENT:
        small, big = (a, b) if shingles_a < shingles_b else (b, a)
        return kind, small, big, sim
    return kind, a, b, sim


def pair_edge(
    a: str, near_a: NearDoc, b: str, near_b: NearDoc, params: MatchParams
) -> tuple[str, str, str, float] | None:
    """The edge a verified candidate pair makes, or None.

    ``("jaccard" | "edit", a, b, similarity)`` (symmetric: the two texts are
    copies of each other) or ``("containment", contained, container,
    similarity)`` (the shorter text is inside the longer one; only the contained
    text's best container is kept (:func:`best_container`), so a standard paragraph
    found in several articles cannot bridge them into one cluster).
    """
    kind, sim = match_kind(near_a.fp, near_b.fp, params, near_a.text, near_b.text)
    return edge(kind, sim, a, near_a.fp.shingles, b, near_b.fp.shingles)
