"""Public hashtag API: extract tags from text and normalize them (see ``docs/hashtags.md``).

>>> from newsflow.hashtags import extract_hashtags, normalize_hashtags
>>> extract_hashtags("Talks resume #Venezuela #ÉtatsUnis")
['Venezuela', 'ÉtatsUnis']
>>> normalize_hashtags(["#les", "#Venezuela", "#venezuela", "#2024"], "fr")
['venezuela']
"""

from __future__ import annotations

from newsflow.core.hashtags import (
    DEFAULT_MAX_LENGTH,
    STOPWORDS_SOURCE,
    DropRule,
    HashtagDecision,
    explain_hashtags,
    extract_hashtags,
    extract_hashtags_with_indices,
    normalize_hashtag,
    normalize_hashtags,
    normalize_tag_text,
    stopword_lang,
    stopwords_for,
)

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "DropRule",
    "HashtagDecision",
    "STOPWORDS_SOURCE",
    "explain_hashtags",
    "extract_hashtags",
    "extract_hashtags_with_indices",
    "normalize_hashtag",
    "normalize_hashtags",
    "normalize_tag_text",
    "stopword_lang",
    "stopwords_for",
]
