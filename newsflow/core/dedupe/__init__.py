"""Pure dedupe logic, one module per rule; no Beam. The Beam wiring is :mod:`newsflow.transforms.dedupe`.

==================  ==============================================================================
module              rule
==================  ==============================================================================
``text``            normalization, the exact key, line keys (boilerplate)
``fingerprint``     shingles, MinHash signature, bottom-k sketch, lede key, LSH bucket keys
``candidates``      which pairs of a bucket are compared, and in which bucket
``match``           verification of a pair (Jaccard, containment, alignment) and the edge it makes
``keepers``         node keys: the keeper order and the cross-run window
``exact``           exact groups and their representatives
``components``      connected components (star steps, and the union-find reference)
``resolve``         kept document or duplicate rows, once the keeper is known
``reference``       :func:`dedupe`: the whole algorithm in memory, the transform's oracle
==================  ==============================================================================

::

    from newsflow.core.dedupe import MinHasher, normalize_text, shingle_hashes
    mh = MinHasher(num_perm=128, seed=1)
    sig = mh.signature(shingle_hashes(normalize_text(doc["text"]), "char", 5))
"""

from newsflow.core.dedupe.candidates import bucket_pairs, checked_in, head_flags, in_window
from newsflow.core.dedupe.components import components, large_star, parent_of, small_star
from newsflow.core.dedupe.exact import DOC, EARLIER, ExactGroup, exact_group
from newsflow.core.dedupe.fingerprint import (
    EDIT_MAX_CHARS,
    FINGERPRINT_VERSION,
    Fingerprint,
    MinHasher,
    NearDoc,
    band_keys,
    bucket_keys,
    candidate_probability,
    fingerprint,
    lede_key,
    lsh_threshold,
    shingle_hashes,
    text_fingerprint,
)
from newsflow.core.dedupe.keepers import is_earlier, kept_id_of, node_day, node_key, published_day, within_days
from newsflow.core.dedupe.match import (
    ALIGN,
    CONTAINMENT,
    EDIT,
    JACCARD,
    MatchParams,
    best_container,
    edge,
    edit_similarity,
    estimate_jaccard,
    match_kind,
    pair_edge,
    sketch_estimates,
    sketch_kind,
    verify_pair,
)
from newsflow.core.dedupe.reference import DedupeOutcome, dedupe, match_params
from newsflow.core.dedupe.resolve import Resolved, duplicate_row, keeper_similarity, resolve
from newsflow.core.dedupe.text import (
    exact_key,
    line_keys,
    normalize_text,
    normalized_lines,
    strip_lines,
    strip_normalized,
    text_keys,
)

__all__ = [
    "ALIGN",
    "CONTAINMENT",
    "DOC",
    "EARLIER",
    "EDIT",
    "EDIT_MAX_CHARS",
    "FINGERPRINT_VERSION",
    "JACCARD",
    "DedupeOutcome",
    "ExactGroup",
    "Fingerprint",
    "MatchParams",
    "MinHasher",
    "NearDoc",
    "Resolved",
    "band_keys",
    "best_container",
    "bucket_keys",
    "bucket_pairs",
    "candidate_probability",
    "checked_in",
    "components",
    "dedupe",
    "duplicate_row",
    "edge",
    "edit_similarity",
    "estimate_jaccard",
    "exact_group",
    "exact_key",
    "fingerprint",
    "head_flags",
    "in_window",
    "is_earlier",
    "keeper_similarity",
    "kept_id_of",
    "large_star",
    "lede_key",
    "line_keys",
    "lsh_threshold",
    "match_kind",
    "match_params",
    "node_day",
    "node_key",
    "normalize_text",
    "normalized_lines",
    "pair_edge",
    "parent_of",
    "published_day",
    "resolve",
    "shingle_hashes",
    "sketch_estimates",
    "sketch_kind",
    "small_star",
    "strip_lines",
    "strip_normalized",
    "text_fingerprint",
    "text_keys",
    "verify_pair",
    "within_days",
]
