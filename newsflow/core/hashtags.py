"""Hashtags: extraction from free text and normalization of tags (pure functions).

Extraction follows the twitter-text hashtag rules (checked against its conformance
suite). Normalization turns tags as written (``#ÉtatsUnis``) into comparable keys
(``étatsunis``) and drops the ones that carry no topic: tags without a letter, stop
words of the document's language, repeats. Every drop has a rule name so that
counters, tests and docs can say why a tag disappeared. See ``docs/hashtags.md``.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import re
import unicodedata
from collections.abc import Iterable, Iterator

import stopwordsiso

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

#: Twitter's limit on a hashtag's length (code points after the sign).
DEFAULT_MAX_LENGTH = 139

#: Where the stop-word lists come from (package and version), for docs and run manifests.
STOPWORDS_SOURCE = f"stopwordsiso {stopwordsiso.__version__}"


class DropRule(str, enum.Enum):
    """Why a tag was dropped, in the order the rules are tried."""

    EMPTY = "empty"  # nothing left once '#' and surrounding punctuation/symbols are stripped
    NUMERIC = "numeric"  # no letter at all: digits only (possibly joined by '_' or '·')
    TOO_SHORT = "too_short"  # fewer code points than min_length
    TOO_LONG = "too_long"  # more code points than max_length
    STOPWORD = "stopword"  # a stop word of the document's language
    DUPLICATE = "duplicate"  # the same normalized tag was already kept for this document

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value


@dataclasses.dataclass(frozen=True)
class HashtagDecision:
    """What happened to one tag: its normalized form and the rule that dropped it (None = kept)."""

    raw: str
    tag: str
    rule: DropRule | None = None

    @property
    def kept(self) -> bool:
        return self.rule is None


# ---------------------------------------------------------------------------
# Extraction (twitter-text rules)
# ---------------------------------------------------------------------------

_HASH_SIGNS = "#\uff03"  # '#' and fullwidth '＃'
# Joiners and marks twitter-text accepts inside a tag besides letters, marks and digits:
# underscore, ZWNJ, ZWJ, Cyrillic kavyka, Hebrew maqaf/geresh/gershayim, wave dashes,
# kana voicing marks, katakana double hyphen and middle dot, ditto mark, Tibetan tsheg,
# middle dot.
_TAG_SPECIAL = frozenset(
    "_\u200c\u200d\ua67e\u05be\u05f3\u05f4\uff5e\u301c\u309b\u309c\u30a0\u30fb\u3003\u0f0b\u0f0c\u00b7"
)
_VARIATION_SELECTORS = "\ufe0e\ufe0f"
_HASH_RE = re.compile("[#\uff03]")
# What makes a '#' part of a URL rather than a tag: a scheme, or host.tld/ before it in the same word.
_URL_BEFORE_RE = re.compile(
    r"[A-Za-z][A-Za-z0-9+.\-]*://"
    r"|(?:^|[^\w.@\-])(?:[^\W_](?:[\w\-]*[^\W_])?\.)+[^\W\d_]{2,}(?::\d{1,5})?/"
)
_URL_LOOKBACK = 2048

_OTHER, _JOINER, _LETTER = 0, 1, 2


@functools.lru_cache(maxsize=8192)
def _tag_char_kind(ch: str) -> int:
    """_LETTER for letters and marks, _JOINER for digits and allowed joiners, _OTHER otherwise."""
    cat = unicodedata.category(ch)
    if cat[0] in "LM":
        return _LETTER
    if cat == "Nd" or ch in _TAG_SPECIAL:
        return _JOINER
    return _OTHER


def _inside_url(text: str, hash_pos: int) -> bool:
    """True when the '#' at ``hash_pos`` continues a URL written in the same word."""
    start = max(0, hash_pos - _URL_LOOKBACK)
    word = re.search(r"\S*\Z", text[start:hash_pos])
    return bool(word and _URL_BEFORE_RE.search(word.group()))


def _iter_hashtag_spans(text: str) -> Iterator[tuple[int, int]]:
    """(sign index, end index) of every valid hashtag in ``text``."""
    n = len(text)
    for m in _HASH_RE.finditer(text):
        i = m.start()
        if i > 0:
            prev = text[i - 1]
            if prev not in _VARIATION_SELECTORS and (
                prev == "&" or prev in _HASH_SIGNS or _tag_char_kind(prev) != _OTHER
            ):
                continue  # glued to a word, an entity ('&#...') or another sign
        j = i + 1
        if j < n and text[j] in "\ufe0f\u20e3":
            continue  # keycap emoji such as #️⃣
        k = j
        has_letter = False
        while k < n:
            kind = _tag_char_kind(text[k])
            if kind == _OTHER:
                break
            has_letter = has_letter or kind == _LETTER
            k += 1
        if not has_letter:
            continue  # empty, digits only, or joiners only
        if text.startswith(("#", "\uff03", "://"), k):
            continue  # '#a#b' and '#http://...' are not tags
        if _inside_url(text, i):
            continue
        yield i, k


def extract_hashtags(text: str) -> list[str]:
    """Hashtags found in free text, in order, each without its sign and unchanged otherwise.

    Args:
        text: Any text (a post, a body line, a hashtag line).

    Returns:
        The tags as written (no case or Unicode normalization), repeats included.
    """
    if not text:
        return []
    return [text[i + 1 : k] for i, k in _iter_hashtag_spans(text)]


def extract_hashtags_with_indices(text: str) -> list[dict[str, object]]:
    """Like :func:`extract_hashtags`, with ``indices`` = [sign index, end index) in code points.

    Returns:
        ``[{"hashtag": str, "indices": [start, end]}, ...]`` (the twitter-text shape).
    """
    if not text:
        return []
    return [{"hashtag": text[i + 1 : k], "indices": [i, k]} for i, k in _iter_hashtag_spans(text)]


# ---------------------------------------------------------------------------
# Normalization
# ---------------------------------------------------------------------------

_TURKIC = frozenset({"tr", "az"})
_NO_LANG = frozenset({"", "und", "zxx", "mul", "mis"})
_ACCENT_SCRIPTS = ("LATIN", "GREEK", "CYRILLIC")


@functools.lru_cache(maxsize=1024)
def stopword_lang(lang: str | None) -> str | None:
    """The primary language subtag used for stop words and casing ('fr-CA' -> 'fr'), or None."""
    if not lang:
        return None
    key = re.split(r"[-_]", lang.strip().lower(), maxsplit=1)[0]
    return None if key in _NO_LANG else key


def _trim(s: str) -> str:
    """Cut everything before the first letter/digit and after the last one (and its marks)."""
    cat = unicodedata.category
    n = len(s)
    first = 0
    while first < n and cat(s[first])[0] not in "LN":
        first += 1
    if first == n:
        return ""
    last = n - 1
    while cat(s[last])[0] not in "LN":
        last -= 1
    end = last + 1
    while end < n and cat(s[end])[0] == "M":
        end += 1
    return s[first:end]


def _accent_base_ok(ch: str) -> bool:
    return unicodedata.name(ch, "").startswith(_ACCENT_SCRIPTS)


def _fold_accents(s: str) -> str:
    """Drop combining marks that sit on Latin, Greek or Cyrillic letters (NFD, drop, NFC)."""
    out: list[str] = []
    base_ok = False
    for ch in unicodedata.normalize("NFD", s):
        if unicodedata.combining(ch) or unicodedata.category(ch) == "Mn":
            if base_ok:
                continue
        else:
            base_ok = _accent_base_ok(ch)
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def _casefold(s: str, turkic: bool) -> str:
    if turkic:
        s = s.replace("I", "\u0131").replace("\u0130", "i")
    else:
        s = s.replace("\u0130", "i")  # 'İ' -> 'i', not 'i' + combining dot above
    return s.casefold()


def normalize_tag_text(tag: str, lang: str | None = None, *, fold_accents: bool = False) -> str:
    """The canonical form of a tag, before any drop rule ('' when nothing is left).

    Steps: NFKC; strip the signs and whatever surrounds the first..last letter or digit;
    case folding (Turkish/Azeri dotless i when ``lang`` says so); NFKC again; optionally
    fold accents. The result is a fixed point: normalizing it again gives it back.

    Args:
        tag: A tag as written, with or without '#'/'＃'.
        lang: The document's language code (only tr/az change the result).
        fold_accents: Remove accents from Latin, Greek and Cyrillic letters.
    """
    turkic = stopword_lang(lang) in _TURKIC
    s = _trim(unicodedata.normalize("NFKC", tag))
    # Casefolding can leave text that is not NFKC ('ǰ' -> 'j' + combining caron): normalize again.
    s = _trim(unicodedata.normalize("NFKC", _casefold(s, turkic)))
    if fold_accents:
        s = _trim(_fold_accents(s))
    return s


def stopwords_for(lang: str | None, *, fold_accents: bool = False) -> frozenset[str]:
    """Normalized stop words of a language from stopwords-iso (empty when there is no list).

    Each list is read and normalized once per (language, fold_accents) and cached for the
    life of the process, so per-element calls cost one dictionary lookup.
    """
    key = stopword_lang(lang)
    return frozenset() if key is None else _stopwords(key, fold_accents)


@functools.cache
def _stopwords(key: str, fold_accents: bool) -> frozenset[str]:
    words = (normalize_tag_text(w, key, fold_accents=fold_accents) for w in stopwordsiso.stopwords(key))
    return frozenset(w for w in words if w)


def _check_tag(
    tag: str,
    lang: str | None,
    fold_accents: bool,
    drop_numeric: bool,
    drop_stopwords: bool,
    min_length: int,
    max_length: int,
) -> tuple[str, DropRule | None]:
    norm = normalize_tag_text(tag, lang, fold_accents=fold_accents)
    if not norm:
        return norm, DropRule.EMPTY
    if drop_numeric and not any(unicodedata.category(ch)[0] == "L" for ch in norm):
        return norm, DropRule.NUMERIC
    if len(norm) < min_length:
        return norm, DropRule.TOO_SHORT
    if len(norm) > max_length:
        return norm, DropRule.TOO_LONG
    if drop_stopwords and norm in stopwords_for(lang, fold_accents=fold_accents):
        return norm, DropRule.STOPWORD
    return norm, None


# Tags repeat a lot across documents (stop words, topics of the day): remember recent decisions.
# Long tags are not cached so that the cache stays small.
_check_tag_cached = functools.lru_cache(maxsize=65536)(_check_tag)
_CACHE_MAX_TAG_LEN = 256


def _decide(
    tag: str,
    lang: str | None,
    fold_accents: bool,
    drop_numeric: bool,
    drop_stopwords: bool,
    min_length: int,
    max_length: int,
) -> tuple[str, DropRule | None]:
    check = _check_tag_cached if len(tag) <= _CACHE_MAX_TAG_LEN else _check_tag
    return check(tag, lang, fold_accents, drop_numeric, drop_stopwords, min_length, max_length)


def normalize_hashtag(
    tag: str,
    lang: str | None = None,
    *,
    fold_accents: bool = False,
    drop_numeric: bool = True,
    drop_stopwords: bool = True,
    min_length: int = 1,
    max_length: int = DEFAULT_MAX_LENGTH,
) -> str | None:
    """Normalize one tag; None when a rule drops it.

    Args:
        tag: The tag as written (``#ÉtatsUnis``, ``＃ｔａｇ``, ``(#tag)``).
        lang: The document's language; None, 'und' or a language without a stop-word
            list means no stop-word rule.
        fold_accents: Also remove accents (``étatsunis`` -> ``etatsunis``).
        drop_numeric: Drop tags without any letter (``#2024``).
        drop_stopwords: Drop stop words of ``lang``.
        min_length: Drop tags shorter than this many code points.
        max_length: Drop tags longer than this many code points.
    """
    norm, rule = _decide(tag, lang, fold_accents, drop_numeric, drop_stopwords, min_length, max_length)
    return None if rule is not None else norm


def explain_hashtags(
    tags: Iterable[str],
    lang: str | None = None,
    *,
    fold_accents: bool = False,
    drop_numeric: bool = True,
    drop_stopwords: bool = True,
    min_length: int = 1,
    max_length: int = DEFAULT_MAX_LENGTH,
) -> list[HashtagDecision]:
    """One decision per input tag, in order: kept, or dropped with the rule's name.

    Same arguments as :func:`normalize_hashtag`; a tag whose normalized form was
    already kept earlier in ``tags`` is dropped as ``duplicate``.
    """
    seen: set[str] = set()
    out: list[HashtagDecision] = []
    for raw in tags:
        norm, rule = _decide(raw, lang, fold_accents, drop_numeric, drop_stopwords, min_length, max_length)
        if rule is None and norm in seen:
            rule = DropRule.DUPLICATE
        if rule is None:
            seen.add(norm)
        out.append(HashtagDecision(raw=raw, tag=norm, rule=rule))
    return out


def normalize_hashtags(
    tags: Iterable[str],
    lang: str | None = None,
    *,
    fold_accents: bool = False,
    drop_numeric: bool = True,
    drop_stopwords: bool = True,
    min_length: int = 1,
    max_length: int = DEFAULT_MAX_LENGTH,
) -> list[str]:
    """Normalized tags that survive every rule, first occurrence order, no repeats.

    Same arguments as :func:`normalize_hashtag`.
    """
    decisions = explain_hashtags(
        tags,
        lang,
        fold_accents=fold_accents,
        drop_numeric=drop_numeric,
        drop_stopwords=drop_stopwords,
        min_length=min_length,
        max_length=max_length,
    )
    return [d.tag for d in decisions if d.rule is None]
