"""Text normalization for dedupe: the folded form every key and shingle is computed from.

One pass folds a text (NFKC, case folded, punctuation and controls to spaces, line feeds kept);
:func:`exact_key` hashes the whole normalized text, :func:`line_keys` its lines (boilerplate
counting), :func:`normalized_lines` gives both the text to shingle and its line structure.
"""

from __future__ import annotations

import functools
import hashlib
import unicodedata
from collections.abc import Iterable

import numpy as np

__all__ = [
    "exact_key",
    "line_keys",
    "normalize_text",
    "normalized_lines",
    "strip_lines",
    "strip_normalized",
    "text_keys",
]

LINE_MIN_CHARS = 20
"""Shorter normalized lines are never boilerplate (too common by chance) nor set aside by the alignment."""
_LINE_MIN_CHARS = LINE_MIN_CHARS


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
    return _exact_key(normalize_text(text), text)


def text_keys(text: str, min_chars: int = _LINE_MIN_CHARS) -> tuple[bytes, list[bytes]]:
    """``(exact_key(text), line_keys(text, min_chars))`` from one normalization of the text.

    The normalized text is its normalized lines joined by spaces (see :func:`normalized_lines`).
    """
    lines = normalized_lines(text)
    keys = sorted({_line_key(norm) for norm in lines if len(norm) >= min_chars})
    return _exact_key(" ".join(lines), text), keys


def _exact_key(norm: str, text: str) -> bytes:
    """:func:`exact_key` of ``text`` whose normalized form is ``norm``."""
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
