"""Language identification with a fastText model: text preparation, decision rule, code mapping.

Pure logic, no Beam. :class:`LangModel` wraps one loaded fastText model; :func:`detect` runs the whole
rule on one text and returns a :class:`LangResult`.

How a text is decided (see docs/lang.md for the measurements behind each step):

1. :func:`prepare_text` folds the text into one line: Unicode NFC (Yoruba written with combining
   marks becomes the precomposed letters the model knows), URLs, e-mail addresses and @handles
   removed, digits and punctuation replaced by spaces, lowercased, whitespace collapsed, cut at a word
   boundary after ``max_chars`` characters.
2. One prediction on the whole prepared text; if fastText gives its best label at least
   ``trust_score`` that answer is kept (most texts in well-resourced languages stop here).
3. Otherwise :func:`chunk_words` cuts the text into chunks of ``chunk_words`` words. fastText averages
   the vectors of all words of its input; on a long text in a language the model knows poorly
   (Somali, Yoruba in lid.176) that average has almost no length and the answer falls back to the
   class prior, i.e. English. Short chunks keep each chunk's evidence. Each chunk gets the full
   distribution ``p(l | chunk)``; the training label frequencies ``pi(l)`` (stored in every fastText
   model) are divided out, ``log p(l | chunk) - log pi(l)`` (a uniform prior over languages: lid.176
   saw 2,500 times more English than Somali, a news stream has no such skew); :func:`aggregate`
   averages the chunk scores and renormalises them (a normalised geometric mean).
4. :func:`decide` merges labels mapped to one code, takes the best and runner-up (``lang`` /
   ``lang_score``, ``lang_alt`` / ``lang_alt_score``) and answers ``und`` when the score is under the
   threshold (per code from ``thresholds`` or the global ``threshold``) or not ``min_ratio`` times the
   runner-up's. A prepared text shorter than ``min_chars`` is ``und`` with score 0.
5. With a second model (:class:`SecondModel`, the bundled lid.africa16.ftz for ten African languages lid.176
   does not know), :func:`needs_second` picks the answers it checks and :func:`combine` merges its answer. When
   lid.176 is unsure of the whole text and the second model is sure of a language lid.176 cannot name, that
   answer is taken before step 3 (:func:`settle`): most texts in those languages skip the chunk rule.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import importlib.resources
import json
import os
import re
import shutil
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "BUNDLED_MODEL",
    "BUNDLED_SECOND_MODEL",
    "DEFAULT_LABEL_MAP",
    "DEFAULT_ALWAYS",
    "DEFAULT_CONTRAST",
    "DEFAULT_NEIGHBOURS",
    "LABEL_PREFIX",
    "UNDETERMINED",
    "WORDS_SUFFIX",
    "LangModel",
    "LangResult",
    "LanguageWords",
    "SecondModel",
    "SecondRule",
    "aggregate",
    "bundled_model_path",
    "check_words",
    "chunk_words",
    "combine",
    "decide",
    "decide_chunks",
    "detect",
    "detect_batch",
    "load_model",
    "load_words",
    "map_label",
    "needs_second",
    "parse_words",
    "prepare_text",
    "second_opinion",
    "settle",
    "sure_of_unknown",
    "word_share",
    "words_path",
]

UNDETERMINED = "und"
LABEL_PREFIX = "__label__"
BUNDLED_MODEL = "lid.176.ftz"
# The second model (trained by tools/train_lid.py): 16 MasakhaNEWS languages, 10 of them unknown to lid.176.
BUNDLED_SECOND_MODEL = "lid.africa16.ftz"

# Codes are ISO 639-1 where one exists (as lid.176 answers), else ISO 639-3. Labels of other models
# (GlotLID's ``eng_Latn``, NLLB/OpenLID's ``fra_Latn``) are reduced by ``map_label``: the script suffix
# is dropped and a 639-3 code that has a 639-1 equivalent is replaced by it. This table lists the
# 639-3 -> 639-1 pairs (individual and macro-language codes) for the languages lid.176 knows, plus
# lid.176's own deprecated codes.
# fmt: off
_ISO3_TO_ISO1 = {
    "afr": "af", "amh": "am", "ara": "ar", "arb": "ar", "arg": "an", "asm": "as", "ava": "av", "aze": "az",
    "azj": "az", "bak": "ba", "bel": "be", "ben": "bn", "bod": "bo", "bos": "bs", "bre": "br", "bul": "bg",
    "cat": "ca", "ces": "cs", "che": "ce", "chv": "cv", "cor": "kw", "cos": "co", "cym": "cy", "dan": "da",
    "deu": "de", "div": "dv", "ell": "el", "eng": "en", "epo": "eo", "est": "et", "ekk": "et", "eus": "eu",
    "fas": "fa", "pes": "fa", "fin": "fi", "fra": "fr", "fry": "fy", "gle": "ga", "gla": "gd", "glg": "gl",
    "grn": "gn", "guj": "gu", "glv": "gv", "heb": "he", "hin": "hi", "hrv": "hr", "hat": "ht", "hun": "hu",
    "hye": "hy", "ina": "ia", "ind": "id", "ile": "ie", "ido": "io", "isl": "is", "ita": "it", "jpn": "ja",
    "jav": "jv", "kat": "ka", "kaz": "kk", "khm": "km", "kan": "kn", "kor": "ko", "kur": "ku", "kmr": "ku",
    "kom": "kv", "kpv": "kv", "kir": "ky", "lat": "la", "ltz": "lb", "lim": "li", "lao": "lo", "lit": "lt",
    "lav": "lv", "lvs": "lv", "mlg": "mg", "plt": "mg", "mkd": "mk", "mal": "ml", "mon": "mn", "khk": "mn",
    "mar": "mr", "msa": "ms", "zsm": "ms", "mlt": "mt", "mya": "my", "nep": "ne", "npi": "ne", "nld": "nl",
    "nno": "nn", "nor": "no", "nob": "no", "oci": "oc", "ori": "or", "ory": "or", "oss": "os", "pan": "pa",
    "pol": "pl", "pus": "ps", "pbt": "ps", "por": "pt", "que": "qu", "roh": "rm", "ron": "ro", "rus": "ru",
    "san": "sa", "srd": "sc", "snd": "sd", "hbs": "sh", "sin": "si", "slk": "sk", "slv": "sl", "som": "so",
    "sqi": "sq", "als": "sq", "srp": "sr", "sun": "su", "swe": "sv", "swa": "sw", "swh": "sw", "tam": "ta",
    "tel": "te", "tgk": "tg", "tha": "th", "tuk": "tk", "tgl": "tl", "tur": "tr", "tat": "tt", "uig": "ug",
    "ukr": "uk", "urd": "ur", "uzb": "uz", "uzn": "uz", "vie": "vi", "vol": "vo", "wln": "wa", "yid": "yi",
    "ydd": "yi", "yor": "yo", "zho": "zh", "cmn": "zh", "hau": "ha", "ibo": "ig", "lin": "ln", "lug": "lg",
    "orm": "om", "gaz": "om", "run": "rn", "sna": "sn", "tir": "ti", "xho": "xh", "zul": "zu", "kin": "rw",
    "nya": "ny", "sot": "st", "tsn": "tn", "tso": "ts", "wol": "wo", "ful": "ff", "kik": "ki", "lua": "lu",
    "bam": "bm", "ewe": "ee", "twi": "tw", "aka": "ak", "mri": "mi", "smo": "sm", "ton": "to", "fij": "fj",
}
# fmt: on
# lid.176 answers these deprecated codes; map them to the current ones.
DEFAULT_LABEL_MAP: dict[str, str] = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv", "mo": "ro"}

_URL_RE = re.compile(r"(?:https?://|ftp://|www\.)\S+|\S+@\S+\.\w+|(?<!\w)@\w+", re.IGNORECASE)
_SPACE_RE = re.compile(r"\s")
_ASTRAL_RE = re.compile("[\U00010000-\U0010ffff]")
# Planes searched for letters and marks: 0-3 hold all letters, 14 the variation selectors (marks); the others are
# unassigned or private use.
_WORD_PLANES = (range(0x40000), range(0xE0000, 0xE1000))


@functools.cache
def _word_re(astral: bool = True) -> re.Pattern[str]:
    """A word is a run of letters and combining marks (Unicode categories L* and M*).

    Digits, punctuation, symbols, '_' and '#' separate words. Marks must be kept inside words: Indic
    vowel signs and Yoruba tone marks over dotted vowels (which have no precomposed form) are marks.
    "Letters" are what ``[^\\W\\d_]`` matches (``str.isalnum`` but not a decimal digit, so also ``²``, ``½``).
    One character class of explicit ranges: several times faster than ``(?:[^\\W\\d_]|[marks])+``; with
    ``astral=False`` only the Basic Multilingual Plane (re checks ranges above U+FFFF one by one for every
    character, which makes the full class ten times slower on texts that have none).
    """
    ranges: list[tuple[int, int]] = []
    for plane in _WORD_PLANES if astral else (range(0x10000),):
        start = None
        for cp in plane:
            ch = chr(cp)
            ok = (ch.isalnum() and not ch.isdecimal()) or unicodedata.category(ch)[0] == "M"
            if ok and start is None:
                start = cp
            elif not ok and start is not None:
                ranges.append((start, cp - 1))
                start = None
        if start is not None:
            ranges.append((start, plane[-1]))
    cls = "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges)
    return re.compile(f"[{cls}]+")


@dataclasses.dataclass(frozen=True)
class LangResult:
    """The decision for one text.

    Attributes:
        lang: code, or ``und``.
        score: share of the best label after prior correction, in [0, 1] (0.0 for a text too short).
        alt: runner-up code (``None`` when there is none).
        alt_score: its share (``None`` when there is none).
        source: which step decided: ``first`` (the first model's decision stands), ``second`` (the second
            model's answer replaced it), ``second_und`` (the second model's doubt made it ``und``) or ``words_und``
            (the answer's word list did not fit the text: :func:`check_words`).
    """

    lang: str
    score: float
    alt: str | None
    alt_score: float | None
    source: str = "first"


def prepare_text(text: str, max_chars: int | None = None) -> str:
    """Fold a document into the one-line, lowercase, letters-only form fed to the model.

    Args:
        text: body text, possibly with newlines, URLs, digits and punctuation.
        max_chars: cut after this many characters at the last word boundary (``None`` = no cut).

    Returns:
        Words of letters (combining marks kept) separated by single spaces.
    """
    text = unicodedata.normalize("NFC", text)
    if max_chars is not None:
        # Neither words nor URL matches contain whitespace, so the text before a whitespace character prepares to a
        # prefix of the whole result (followed there by a space). Once that prefix is longer than max_chars the cut
        # below gives the same answer, and the rest of a long text is never scanned.
        end = max_chars + max_chars // 2 + 64
        while end < len(text):
            space = _SPACE_RE.search(text, end)
            if space is None:
                break
            out = _fold(text[: space.start()])
            if len(out) > max_chars:
                return _cut(out, max_chars)
            end = 2 * end
    return _cut(_fold(text), max_chars)


def _fold(text: str) -> str:
    """URLs, e-mails and handles removed; words joined by single spaces, lowercased (``text`` is already NFC)."""
    if _may_hold_url(text):
        text = _URL_RE.sub(" ", text)
    words = _word_re(_ASTRAL_RE.search(text) is not None).findall(text)
    return " ".join(words).lower()


def _may_hold_url(text: str) -> bool:
    """Whether :data:`_URL_RE` can match: it needs "@", "://" or "www." (any case). Most texts have none and skip
    the (slow) substitution; substring tests are about four times faster than one regex search for the three."""
    return "@" in text or "://" in text or "www." in text.lower()


def _cut(out: str, max_chars: int | None) -> str:
    """``out`` cut at the last space within ``max_chars`` characters (hard cut if there is none)."""
    if max_chars is not None and len(out) > max_chars:
        cut = out.rfind(" ", 0, max_chars + 1)
        out = out[: cut if cut > 0 else max_chars]
    return out


def chunk_words(text: str, size: int) -> list[str]:
    """Split a prepared text into chunks of ``size`` words (the last one may be shorter).

    Args:
        text: output of :func:`prepare_text`.
        size: words per chunk; ``0`` keeps the whole text as one chunk.
    """
    words = text.split()
    return [" ".join(words[i : i + n]) for i, n in _chunk_spans(len(words), size)]


def _chunk_spans(n_words: int, size: int) -> list[tuple[int, int]]:
    """(first word, word count) of each chunk of ``size`` words (``0``: one chunk) in ``n_words`` words."""
    if not n_words:
        return []
    size = size if size > 0 else n_words
    return [(i, min(size, n_words - i)) for i in range(0, n_words, size)]


def aggregate(chunk_probs: np.ndarray, log_prior: np.ndarray, prior_weight: float = 1.0) -> np.ndarray:
    """Combine per-chunk distributions into one distribution over labels.

    Args:
        chunk_probs: array (chunks, labels) of p(label | chunk).
        log_prior: array (labels,) of log training frequency of each label.
        prior_weight: how much of the prior to divide out (1 = all, 0 = none).

    Returns:
        Array (labels,) summing to 1: softmax of the mean over chunks of log p - prior_weight * log prior.
    """
    logp = np.log(np.clip(chunk_probs, 1e-7, 1.0)) - prior_weight * log_prior
    mean = logp.mean(axis=0)
    mean = np.exp(mean - mean.max())
    return mean / mean.sum()


def map_label(label: str, label_map: Mapping[str, str] | None = None) -> str:
    """Turn a model label into the code the pipeline emits.

    ``__label__`` is stripped; an explicit ``label_map`` entry wins (looked up for the raw label, the
    stripped one and the final code, so ``{"sr": "hbs"}`` also catches ``srp_Cyrl``); otherwise a
    ``xxx_Scrp`` label loses its script part and an ISO 639-3 code with an ISO 639-1 equivalent is
    replaced by it (``eng_Latn`` -> ``en``); lid.176's deprecated codes are modernised (``iw`` -> ``he``).
    """
    label_map = label_map or {}
    bare = label[len(LABEL_PREFIX) :] if label.startswith(LABEL_PREFIX) else label
    for key in (label, bare):
        if key in label_map:
            return label_map[key]
    code = bare.split("_", 1)[0] if re.fullmatch(r"[a-z]{2,3}_[A-Z][a-z]{3}", bare) else bare
    if code in label_map:
        return label_map[code]
    code = DEFAULT_LABEL_MAP.get(_ISO3_TO_ISO1.get(code, code), _ISO3_TO_ISO1.get(code, code))
    return label_map.get(code, code)


def decide(
    probs: np.ndarray,
    codes: Sequence[str],
    threshold: float,
    thresholds: Mapping[str, float] | None = None,
    min_ratio: float = 1.0,
) -> LangResult:
    """Pick the best and runner-up codes of one distribution; ``und`` when unsure.

    Labels that map to the same code (e.g. ``no`` and ``nb`` after a collapse) have their shares added
    first, so a mapping can never make a text less certain.

    Args:
        probs: array (labels,) summing to 1.
        codes: code of each label (after :func:`map_label`).
        threshold: minimal score to answer.
        thresholds: per-code thresholds that replace ``threshold`` for that code.
        min_ratio: the best score must be at least this many times the runner-up's (1 = no check).
    """
    if len(probs) != len(codes):
        raise ValueError(f"{len(probs)} probabilities for {len(codes)} codes")
    names, inverse = _code_groups(tuple(codes))
    # Shares added per code in label order from 0.0 (as a dict would), codes in order of first appearance; a stable
    # sort then ranks equal shares in that order.
    merged = np.bincount(inverse, weights=probs, minlength=len(names)) if len(names) < len(codes) else probs
    order = np.argsort(-merged, kind="stable")[:2]
    best, score = names[order[0]], float(merged[order[0]])
    alt, alt_score = (names[order[1]], float(merged[order[1]])) if len(names) > 1 else (None, None)
    limit = (thresholds or {}).get(best, threshold)
    clear = alt_score is None or score >= min_ratio * alt_score
    lang = best if score >= limit and clear and best != UNDETERMINED else UNDETERMINED
    # fastText's softmax adds 1e-5 to every probability, so a sure answer can read 1.00001
    score = min(float(score), 1.0)
    return LangResult(lang, score, alt, None if alt_score is None else min(float(alt_score), 1.0))


@functools.lru_cache(maxsize=64)
def _code_groups(codes: tuple[str, ...]) -> tuple[tuple[str, ...], np.ndarray]:
    """The distinct codes in order of first appearance, and each label's position among them."""
    names = tuple(dict.fromkeys(codes))
    at = {code: i for i, code in enumerate(names)}
    return names, np.array([at[code] for code in codes], dtype=np.intp)


# lid.176 answers that may hide a language it does not know, and the second-model codes that may replace each
# (MasakhaNEWS dev/test: Tigrinya is called ``am`` at 1.0, Nigerian Pidgin ``en`` at 0.5-0.94, Igbo ``vi`` at 0.5-1.0,
# Oromo ``fi`` at 0.5-0.6). See docs/lang.md.
DEFAULT_NEIGHBOURS: dict[str, tuple[str, ...]] = {"am": ("ti",), "en": ("pcm",), "vi": ("ig",), "fi": ("om",)}
# Neighbours checked whatever their score (the others only under ``SecondRule.below``).
DEFAULT_ALWAYS: tuple[str, ...] = ("am",)
# Languages in the bundled second model as contrast (it must tell Pidgin from English), and Pidgin itself, which
# it answers for short Germanic and Romance texts: its naming them is no sign of an African-language text.
DEFAULT_CONTRAST: tuple[str, ...] = ("en", "fr", "pcm")


@dataclasses.dataclass(frozen=True)
class SecondRule:
    """Settings of the two-model rule (see :func:`needs_second` and :func:`combine`; defaults in LangConfig).

    Attributes:
        min_score: second-model probability that replaces an unsure first answer.
        confirm_score: second-model probability that confirms a first answer, or replaces a confident one.
        focus_score: a second answer in one of its focus languages (not ``contrast``) at least this sure makes an
            unconfirmed weak first answer ``und``.
        below: confident first answers listed in ``neighbours`` and scored under this are checked.
        neighbours: first-model code -> second-model codes that may replace it when it is confident.
        always: neighbours checked at any score.
        contrast: second-model codes that are not its focus.
        word_share: a focus-language answer the second model was consulted on stands only if the share of the
            text's words found in that language's word list (:class:`LanguageWords`) is at least this fraction of
            the language's typical share; else ``und`` (0: no check).
    """

    min_score: float = 0.99
    confirm_score: float = 0.95
    focus_score: float = 0.5
    below: float = 0.95
    neighbours: Mapping[str, Sequence[str]] = dataclasses.field(default_factory=lambda: dict(DEFAULT_NEIGHBOURS))
    always: Sequence[str] = DEFAULT_ALWAYS
    contrast: Sequence[str] = DEFAULT_CONTRAST
    word_share: float = 0.35


def needs_second(first: LangResult, trust_score: float, rule: SecondRule) -> bool:
    """Whether the first model's answer is checked by the second model.

    Checked: ``und`` and unsure answers (under ``trust_score``: the chunk rule decided), and answers listed in
    ``rule.neighbours`` scored under ``rule.below`` (or listed in ``rule.always``). Other confident answers, e.g.
    English at 0.95 or more, are final without a second prediction.
    """
    if first.lang == UNDETERMINED or first.score < trust_score:
        return True
    return first.lang in rule.neighbours and (first.score < rule.below or first.lang in rule.always)


def combine(
    first: LangResult,
    second: LangResult,
    first_codes: frozenset[str],
    second_codes: frozenset[str],
    trust_score: float,
    rule: SecondRule,
    threshold: float = 0.0,
    thresholds: Mapping[str, float] | None = None,
) -> LangResult:
    """Merge the first model's decision with the second model's top-2 answer on the same text.

    The second model is often confident on languages it never saw (it calls Catalan ``fr`` at a median 0.94, and
    Oromo left out of its training ``so`` at 0.996), so it overrules only where the first model leaves room, and its
    doubt counts as evidence:

    1. a second answer equal to the first at ``confirm_score`` or more confirms it;
    2. an unsure first answer (``und`` or under ``trust_score``) is replaced by a second answer at ``min_score``;
    3. a confident first answer is replaced by a second answer at ``confirm_score`` that ``neighbours`` lists for
       it and the first model cannot answer (``am`` -> ``ti``, ``en`` -> ``pcm``, ``vi`` -> ``ig``);
    4. an unsure first answer left standing becomes ``und`` when it is one of the second model's languages (which
       it knows well and did not confirm); an unsure one, or a listed neighbour under ``below``, also when the
       second model names one of its focus languages at ``focus_score``: a text in an African language neither
       model knows gets ``und``, not lid.176's near-miss (``sw`` for Hausa, ``rm`` for Lingala, ``vi`` for Igbo);
    5. otherwise the first answer stands.

    A second answer that wins must also reach ``threshold`` (or its code's entry in ``thresholds``), as first
    answers must; else the text is ``und``.

    Args:
        first: the first model's decision (lid.176 with the chunk rule).
        second: the second model's best and runner-up on the whole prepared text (``und`` when it has none).
        first_codes: codes the first model can answer.
        second_codes: codes the second model can answer.
        trust_score: first answers at least this sure are confident (``detect``'s ``trust_score``).
        rule: the thresholds and lists.
        threshold, thresholds: ``detect``'s minimal scores.
    """
    known = second.lang != UNDETERMINED
    unsure = first.lang == UNDETERMINED or first.score < trust_score
    if known and second.lang == first.lang and second.score >= rule.confirm_score:
        return first
    replace = (known and unsure and second.score >= rule.min_score) or (
        known
        and not unsure
        and second.score >= rule.confirm_score
        and second.lang not in first_codes
        and second.lang in rule.neighbours.get(first.lang, ())
    )
    if replace:
        if second.score < (thresholds or {}).get(second.lang, threshold):
            return dataclasses.replace(second, lang=UNDETERMINED, source="second_und")
        return dataclasses.replace(second, source="second")
    weak = unsure or (first.lang in rule.neighbours and first.score < rule.below)
    focus = known and second.lang not in rule.contrast and second.score >= rule.focus_score
    if first.lang != UNDETERMINED and ((unsure and first.lang in second_codes) or (weak and focus)):
        return dataclasses.replace(first, lang=UNDETERMINED, source="second_und")
    return first


_DEFAULT_RULE = SecondRule()


def bundled_model_path(name: str = BUNDLED_MODEL) -> Path:
    """Path of a model file shipped inside the package (works from a wheel too)."""
    ref = importlib.resources.files("newsflow") / "models" / name
    path = Path(str(ref))
    if not path.is_file():  # pragma: no cover - a zipped install; fall back to the source tree
        path = Path(__file__).resolve().parents[1] / "models" / name
    return path


def _local_copy(uri: str) -> str:
    """Copy a model at a Beam filesystem URI (gs://, s3://, ...) to a local temporary file."""
    from apache_beam.io.filesystems import FileSystems

    fd, local = tempfile.mkstemp(suffix=os.path.splitext(uri)[1] or ".bin", prefix="newsflow-lang-")
    with os.fdopen(fd, "wb") as out, FileSystems.open(uri) as src:
        shutil.copyfileobj(src, out, 1 << 20)
    return local


def load_model(model_path: str | None = None, bundled: str = BUNDLED_MODEL) -> Any:
    """Load a fastText model: the bundled one (``None``), a local path or a Beam filesystem URI."""
    import fasttext

    if model_path is None:
        return fasttext.load_model(str(bundled_model_path(bundled)))
    if "://" in model_path and not model_path.startswith("file://"):
        local = _local_copy(model_path)
        try:
            return fasttext.load_model(local)
        finally:
            os.unlink(local)
    path = model_path[len("file://") :] if model_path.startswith("file://") else model_path
    if not os.path.isfile(path):
        raise FileNotFoundError(f"fastText model not found: {model_path}")
    return fasttext.load_model(path)


class _HierarchicalSoftmax:
    """fastText's hierarchical-softmax output layer in numpy: label distributions from hidden vectors.

    fastText builds a Huffman tree over the labels from their training counts; p(label) is the product, along the
    root-to-leaf path, of ``sigmoid(w_node . h)`` (right) or ``1 - sigmoid(...)`` (left), each plus 1e-5, and a
    prediction with ``threshold=0`` leaves out labels under 1e-5. This class rebuilds that tree
    (``HierarchicalSoftmaxLoss::buildTree``) and computes the log-probabilities of all labels for many hidden vectors
    at once as sums of gathered path terms, so all chunks of a text cost a few array operations instead of one full
    ``predict(k=-1)`` each (and 176 label strings per chunk coming back to Python).
    """

    _EPS = 1e-5

    def __init__(self, counts: Sequence[int], output: np.ndarray) -> None:
        osz = len(counts)
        size = 2 * osz - 1
        count = [float(c) for c in counts] + [1e15] * (osz - 1)
        parent, right_side = [-1] * size, [False] * size
        leaf, node = osz - 1, osz
        for i in range(osz, size):
            mini = [0, 0]
            for j in range(2):
                if leaf >= 0 and count[leaf] < count[node]:
                    mini[j], leaf = leaf, leaf - 1
                else:
                    mini[j], node = node, node + 1
            count[i] = count[mini[0]] + count[mini[1]]
            parent[mini[0]] = parent[mini[1]] = i
            right_side[mini[1]] = True
        # Path terms are rows of a (2 * (osz - 1), hidden rows) array: log(1 - s + eps) of internal node n at row n,
        # log(s + eps) at row osz - 1 + n. Each label's path is a run of row indices in ``self._path``.
        path: list[int] = []
        starts: list[int] = []
        for label in range(osz):
            starts.append(len(path))
            j = label
            while parent[j] != -1:
                path.append(parent[j] - osz + (osz - 1 if right_side[j] else 0))
                j = parent[j]
        self.osz = osz
        self.output = np.asarray(output, dtype=np.float64)[: osz - 1]  # one row per internal node
        self._path = np.array(path, dtype=np.intp)
        self._starts = np.array(starts, dtype=np.intp)

    def probs(self, hidden: np.ndarray) -> np.ndarray:
        """Array (rows, labels) of p(label | h) for an array (rows, dim) of hidden vectors, 0 under 1e-5."""
        if self.osz == 1:
            return np.ones((hidden.shape[0], 1))
        s = 1.0 / (1.0 + np.exp(-(self.output @ hidden.T)))  # (internal nodes, rows)
        terms = np.log(np.concatenate([1.0 - s, s]) + self._EPS)
        score = np.add.reduceat(terms[self._path], self._starts, axis=0).T
        out = np.exp(score)
        out[score < np.log(self._EPS)] = 0.0
        return out


class LangModel:
    """One loaded fastText model with its label prior and code mapping; safe to share across threads.

    The whole-text distribution (the cheap first look that settles most texts) comes from fastText's own
    ``predict`` in C++. The per-chunk distributions of the texts it leaves unsure are computed, for a
    hierarchical-softmax model with plain word features (lid.176), in numpy from cached per-word vectors (see
    :class:`_HierarchicalSoftmax`): every chunk of a text is a sum of the same word vectors, so all of them cost a
    few array operations. Other models take ``predict`` for chunks too. Both give the same distributions (checked
    against ``predict`` on load; up to float rounding).

    Args:
        model_path: ``None`` for the bundled lid.176.ftz, else a path or URI.
        label_map: extra label -> code entries (see :func:`map_label`).
        model: an already loaded fastText model (tests); ``model_path`` is then ignored.
        fast: use the numpy path for chunks when the model allows it (``False``: always ``predict``).
    """

    # Word vectors kept: 16 float32 (the mean fastText returns) and one row count per word for lid.176, about 100
    # bytes a word with the index; the cache is emptied when full.
    _CACHE_WORDS = 1 << 18
    _TOP_K = 5

    def __init__(
        self,
        model_path: str | None = None,
        label_map: Mapping[str, str] | None = None,
        model: Any = None,
        fast: bool = True,
    ) -> None:
        self.model = model if model is not None else load_model(model_path)
        labels, counts = self.model.get_labels(include_freq=True)
        self.labels: list[str] = list(labels)
        self._index = {label: i for i, label in enumerate(self.labels)}
        freq = np.asarray(counts, dtype=np.float64)
        self.log_prior = np.log(np.maximum(freq, 1.0) / max(freq.sum(), 1.0))
        self.codes: list[str] = [map_label(label, label_map) for label in self.labels]
        self.code_set: frozenset[str] = frozenset(self.codes)
        self._lock = threading.Lock()
        self._hs: _HierarchicalSoftmax | None = self._numpy_output(list(counts)) if fast else None
        if self._hs is not None:
            dim = self.model.get_dimension()
            self._means = np.zeros((self._CACHE_WORDS, dim), dtype=np.float32)
            self._counts = np.zeros(self._CACHE_WORDS)
            self._words: dict[str, int] = {}
            self._eos = self._word_vector("</s>")
            if not self._agrees_with_predict():
                self._hs = None

    @property
    def fast(self) -> bool:
        """Whether chunk distributions are computed in numpy (else through ``predict``)."""
        return self._hs is not None

    def _numpy_output(self, counts: list[int]) -> _HierarchicalSoftmax | None:
        """The numpy output layer, or ``None`` when the model is not a supervised hs model on words alone."""
        try:
            args = self.model.f.getArgs()
            if args.loss.name != "hs" or args.model.name != "supervised" or args.wordNgrams > 1:
                return None
            output = np.array(self.model.f.getOutputMatrix())  # fails for a quantised output layer (-qout)
        except (AttributeError, RuntimeError, ValueError):
            return None
        if output.shape != (len(counts), self.model.get_dimension()):
            return None
        return _HierarchicalSoftmax(counts, output)

    def _agrees_with_predict(self) -> bool:
        """Check the numpy path against ``predict(k=-1)`` on a few texts (a safety net for unknown builds)."""
        probes = [
            "the government announced a new budget",
            "le gouvernement a annoncé un nouveau budget",
            "dalka ayaa lagu soo rogay xayiraado",
            "правительство объявило",
            "a",
        ]
        fast = self.chunk_probs(probes)
        self._hs, hs = None, self._hs
        slow = self.chunk_probs(probes)
        self._hs = hs
        return bool(np.allclose(fast, slow, rtol=1e-3, atol=1e-6))

    def _word_vector(self, word: str) -> tuple[np.ndarray, int]:
        """Sum of the input rows fastText adds for ``word`` (word id and kept character n-grams) and their number."""
        n = len(self.model.f.getSubwords(word, "strict")[1])
        vec = self.model.get_word_vector(word).astype(np.float64)  # the mean of those rows
        return vec * n, n

    def _word_rows(self, words: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Arrays (words, dim) of row sums and (words,) of row counts, from the cache or the model."""
        with self._lock:
            if len(words) > self._CACHE_WORDS:  # more than the cache holds: no caching
                unique = list(dict.fromkeys(words))
                means, counts = self._word_vectors(unique)
                at = {word: i for i, word in enumerate(unique)}
                rows = [at[word] for word in words]
                return means[rows].astype(np.float64) * counts[rows, None], counts[rows]
            index = self._words
            if len(index) + len(words) > self._CACHE_WORDS:
                index.clear()
            rows = list(map(index.get, words))  # one C-level pass; news text repeats its words
            if None in rows:
                new = list(dict.fromkeys(word for word, row in zip(words, rows, strict=True) if row is None))
                start = len(index)
                end = start + len(new)
                self._means[start:end], self._counts[start:end] = self._word_vectors(new)
                index.update(zip(new, range(start, end), strict=True))
                rows = list(map(index.__getitem__, words))
            counts = self._counts[rows]
            # float32 mean times a small count: exact in float64, the same value as _word_vector's sum
            return self._means[rows].astype(np.float64) * counts[:, None], counts

    def _word_vectors(self, words: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Means (float32, as fastText returns them) and row counts of several words: one reused fastText vector."""
        try:
            from fasttext_pybind import Vector
        except ImportError:  # pragma: no cover - another binding: one word at a time
            pairs = [self._word_vector(word) for word in words]
            counts = np.array([n for _, n in pairs], dtype=np.float64)
            sums = np.array([v for v, _ in pairs]).reshape(len(words), -1)
            return (sums / np.maximum(counts, 1.0)[:, None]).astype(np.float32), counts
        f = self.model.f
        dim = self.model.get_dimension()
        means = np.empty((len(words), dim), dtype=np.float32)  # what get_word_vector returns, row by row
        counts = np.empty(len(words), dtype=np.float64)
        vec = Vector(dim)
        for i, word in enumerate(words):
            counts[i] = len(f.getSubwords(word, "strict")[1])
            f.getWordVector(vec, word)
            means[i] = vec
        return means, counts

    def _dist(self, sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Distributions (rows, labels) for rows of summed word vectors; fastText adds the end-of-line token."""
        assert self._hs is not None
        sums = sums + self._eos[0]
        counts = counts + self._eos[1]
        empty = counts == 0  # nothing fastText knows: predict returns no label
        out = self._hs.probs(sums / np.where(empty, 1.0, counts)[:, None])
        out[empty] = 0.0
        return out

    def top_probs(self, text: str, k: int = _TOP_K) -> np.ndarray:
        """Array (1, labels) holding the ``k`` best probabilities of one text, zeros elsewhere (fastText's ``predict``).

        Enough for the confident-answer check (a best label over 0.5 leaves less than 0.5 to
        share among the rest) and several times cheaper than the full distribution.
        """
        return self.top_probs_batch([text], k)

    def top_probs_batch(self, texts: Sequence[str], k: int = _TOP_K) -> np.ndarray:
        """:meth:`top_probs` of several non-empty one-line texts, array (texts, labels), in one ``predict`` call.

        One call keeps the model's tables in the CPU caches from one text to the next (a text predicted between
        other work costs about twice as much) and pays Python's per-call overhead once.
        """
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float64)
        if not texts:
            return out
        with self._lock:  # a fastText object is not documented as thread-safe
            labels, probs = self.model.predict(list(texts), k=k, threshold=0.0)
        lookup = self._index.__getitem__
        for row, (lab, prob) in enumerate(zip(labels, probs, strict=True)):
            out[row, list(map(lookup, lab))] = prob
        return out

    def chunk_probs(self, chunks: Sequence[str]) -> np.ndarray:
        """Full distribution p(label | chunk) for each chunk, array (chunks, labels)."""
        if self._hs is None or not chunks:
            return self.top_probs_batch(chunks, k=-1)
        words = [chunk.split() for chunk in chunks]
        sums, counts = self._word_rows([w for ws in words for w in ws])
        return self._dist(*_chunk_sums(sums, counts, [len(ws) for ws in words]))

    def text_probs(self, prepared: str, chunk_size: int) -> tuple[np.ndarray, Callable[[], np.ndarray]]:
        """``(top_probs(prepared), chunk_probs of its chunks)``, the second computed only when called."""
        return self.top_probs(prepared), self.chunks_of(prepared, chunk_size)

    def chunks_of(self, prepared: str, chunk_size: int) -> Callable[[], np.ndarray]:
        """A function computing the per-chunk distributions of a prepared text (the chunk rule's input) when called."""
        if self._hs is None or not prepared:
            return lambda: self.chunk_probs(chunk_words(prepared, chunk_size))

        def chunks() -> np.ndarray:
            words = prepared.split()
            sums, counts = self._word_rows(words)
            return self._dist(*_chunk_sums(sums, counts, [n for _, n in _chunk_spans(len(words), chunk_size)]))

        return chunks


WORDS_SUFFIX = ".words.json.gz"
"""A second model's word lists lie beside it: the model's file name with this suffix instead of its own."""

WORDS_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class LanguageWords:
    """The frequent words of one language of a second model's training data.

    Attributes:
        words: the most frequent prepared words (:func:`prepare_text`) of its training articles.
        share: the typical share of an unseen article's words found in such a list (the median over held-out
            training articles, with the list built from the others).
    """

    words: frozenset[str]
    share: float


def words_path(model_path: str) -> str:
    """Where the word lists of the model at ``model_path`` (path or URI) lie."""
    stem, ext = os.path.splitext(model_path)
    return (stem if ext in (".ftz", ".bin") else model_path) + WORDS_SUFFIX


def parse_words(data: bytes) -> dict[str, LanguageWords]:
    """Word lists from their gzip-compressed JSON file (``{"format": 1, "languages": {code: {share, words}}}``)."""
    doc = json.loads(gzip.decompress(data))
    if not isinstance(doc, dict) or doc.get("format") != WORDS_FORMAT or not isinstance(doc.get("languages"), dict):
        raise ValueError(f"not a word-list file of format {WORDS_FORMAT}")
    out = {}
    for code, entry in doc["languages"].items():
        share, words = (entry.get("share"), entry.get("words")) if isinstance(entry, dict) else (None, None)
        if not isinstance(share, float | int) or not 0.0 < share <= 1.0 or not isinstance(words, list) or not words:
            raise ValueError(f"word list of {code!r}: needs a share in (0, 1] and a non-empty list of words")
        out[str(code)] = LanguageWords(frozenset(map(str, words)), float(share))
    return out


def load_words(model_path: str | None) -> dict[str, LanguageWords]:
    """The word lists beside a second model (bundled: ``None``); empty when the model has none."""
    path = str(bundled_model_path(BUNDLED_SECOND_MODEL)) if model_path is None else model_path
    if path.startswith("file://"):
        path = path[len("file://") :]
    where = words_path(path)
    if "://" in where:
        from apache_beam.io.filesystems import FileSystems  # only for a model at a filesystem URI

        if not FileSystems.exists(where):
            return {}
        with FileSystems.open(where) as fh:
            data = fh.read()
    elif os.path.isfile(where):
        with open(where, "rb") as fh:
            data = fh.read()
    else:
        return {}
    try:
        return parse_words(data)
    except (ValueError, OSError, EOFError) as e:  # bad JSON or gzip, a cut-short file
        raise ValueError(f"{where}: {e}") from e


def word_share(prepared: str, words: frozenset[str]) -> float:
    """Share of the words of a prepared text found in ``words`` (0 for a text without words)."""
    tokens = prepared.split()
    if not tokens:
        return 0.0
    return sum(map(words.__contains__, tokens)) / len(tokens)


class SecondModel:
    """The model consulted by :func:`combine`: one ``predict(k=2)`` on the whole prepared text.

    Args:
        model_path: ``None`` for the bundled lid.africa16.ftz, else a path or URI.
        label_map: extra label -> code entries (see :func:`map_label`).
        model: an already loaded fastText model (tests); ``model_path`` is then ignored.
        words: word lists per code (tests); by default those beside the model file (:func:`load_words`), none
            for ``model``.
    """

    def __init__(
        self,
        model_path: str | None = None,
        label_map: Mapping[str, str] | None = None,
        model: Any = None,
        words: Mapping[str, LanguageWords] | None = None,
    ) -> None:
        self.model = model if model is not None else load_model(model_path, BUNDLED_SECOND_MODEL)
        if words is None:
            words = {} if model is not None else load_words(model_path)
        self.words: dict[str, LanguageWords] = {map_label(code, label_map): w for code, w in words.items()}
        self._label_map = dict(label_map or {})
        self.codes: frozenset[str] = frozenset(map_label(label, label_map) for label in self.model.get_labels())
        self._lock = threading.Lock()

    def predict(self, prepared: str) -> LangResult:
        """Best and runner-up code with their probabilities for a prepared text (``und``, 0 when it has no words)."""
        if not prepared:
            return LangResult(UNDETERMINED, 0.0, None, None)
        with self._lock:
            labels, probs = self.model.predict(prepared, k=2, threshold=0.0)
        return self._result(labels, probs)

    def predict_batch(self, prepared: Sequence[str]) -> list[LangResult]:
        """:meth:`predict` of several non-empty prepared texts in one ``predict`` call (see
        :meth:`LangModel.top_probs_batch`)."""
        if not prepared:
            return []
        with self._lock:
            all_labels, all_probs = self.model.predict(list(prepared), k=2, threshold=0.0)
        return [self._result(labels, probs) for labels, probs in zip(all_labels, all_probs, strict=True)]

    def _result(self, labels: Sequence[str], probs: Sequence[float]) -> LangResult:
        """The answer of one ``predict(k=2)``."""
        if not len(labels):
            return LangResult(UNDETERMINED, 0.0, None, None)
        codes = [map_label(label, self._label_map) for label in labels]
        scores = [min(float(p), 1.0) for p in probs]
        if len(codes) > 1:
            return LangResult(codes[0], scores[0], codes[1], scores[1])
        return LangResult(codes[0], scores[0], None, None)

    def fits(self, code: str, prepared: str, factor: float) -> bool:
        """Whether a prepared text's words fit ``code``: its :func:`word_share` in the code's list is at least
        ``factor`` times the language's typical share (always, for a code without a list or ``factor`` 0)."""
        entry = self.words.get(code)
        if entry is None or factor <= 0.0:
            return True
        return word_share(prepared, entry.words) >= factor * entry.share


def _chunk_sums(sums: np.ndarray, counts: np.ndarray, lengths: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per-chunk totals of consecutive word rows; chunk ``i`` has ``lengths[i]`` (> 0) words."""
    starts = np.cumsum([0, *lengths[:-1]])
    return np.add.reduceat(sums, starts, axis=0), np.add.reduceat(counts, starts)


def detect(
    text: str,
    model: LangModel,
    *,
    threshold: float = 0.0,
    thresholds: Mapping[str, float] | None = None,
    min_chars: int = 0,
    max_chars: int | None = None,
    chunk_size: int = 5,
    prior_weight: float = 1.0,
    trust_score: float = 0.5,
    min_ratio: float = 1.0,
    second: SecondModel | None = None,
    second_rule: SecondRule | None = None,
) -> LangResult:
    """Identify the language of one text (the whole rule; see the module docstring).

    Args:
        text: raw text (newlines allowed).
        model: the loaded model.
        threshold: global minimal score to answer.
        thresholds: per-code minimal scores.
        min_chars: prepared texts shorter than this are ``und`` with score 0.
        max_chars: text budget in prepared characters.
        chunk_size: words per chunk (0 = one chunk, plain fastText on the prepared text).
        prior_weight: share of the training prior divided out (0 = plain fastText scores).
        trust_score: a plain fastText answer on the whole prepared text with at least this probability
            is kept as is (> 1 disables the shortcut).
        min_ratio: ``und`` unless the best score is at least this many times the runner-up's.
        second: the second model (``None``: the first model's decision is final).
        second_rule: thresholds of the two-model rule (``None``: the defaults).
    """
    return detect_batch(
        [text],
        model,
        threshold=threshold,
        thresholds=thresholds,
        min_chars=min_chars,
        max_chars=max_chars,
        chunk_size=chunk_size,
        prior_weight=prior_weight,
        trust_score=trust_score,
        min_ratio=min_ratio,
        second=second,
        second_rule=second_rule,
    )[0]


def detect_batch(
    texts: Sequence[str],
    model: LangModel,
    *,
    threshold: float = 0.0,
    thresholds: Mapping[str, float] | None = None,
    min_chars: int = 0,
    max_chars: int | None = None,
    chunk_size: int = 5,
    prior_weight: float = 1.0,
    trust_score: float = 0.5,
    min_ratio: float = 1.0,
    second: SecondModel | None = None,
    second_rule: SecondRule | None = None,
) -> list[LangResult]:
    """:func:`detect` of each text (same arguments, same answers), the model calls made for all texts at once.

    Both models are asked in one ``predict`` call each: lid.176 on every prepared text, the second model on the
    texts whose whole-text answer :func:`needs_second` says it checks (a text lid.176 is unsure of as a whole is
    always asked, first by :func:`sure_of_unknown`). Per text, a fastText prediction between other work costs
    about twice one in a run of predictions (the model's tables leave the CPU caches), so a Beam step that
    detects a few hundred documents at a time spends about half the CPU on the models.
    """
    rule = second_rule or _DEFAULT_RULE
    prepared = [prepare_text(text, max_chars) for text in texts]
    todo = [i for i, p in enumerate(prepared) if len(p) >= max(min_chars, 1)]
    wholes = model.top_probs_batch([prepared[i] for i in todo])
    plain = [decide(wholes[row], model.codes, 0.0, thresholds, min_ratio) for row in range(len(todo))]
    asked: dict[int, LangResult] = {}
    if second is not None:
        ask_for = [i for i, first in zip(todo, plain, strict=True) if needs_second(first, trust_score, rule)]
        asked = dict(zip(ask_for, second.predict_batch([prepared[i] for i in ask_for]), strict=True))
    out = [LangResult(UNDETERMINED, 0.0, None, None)] * len(texts)
    for row, i in enumerate(todo):
        text = prepared[i]
        out[i] = settle(
            wholes[row : row + 1],
            model.chunks_of(text, chunk_size),
            _asker(asked.get(i), second, text),
            model,
            second,
            threshold=threshold,
            thresholds=thresholds,
            prior_weight=prior_weight,
            trust_score=trust_score,
            min_ratio=min_ratio,
            rule=second_rule,
            fits=None if second is None else _fits(second, text, rule.word_share),
            plain=plain[row],
        )
    return out


def _fits(second: SecondModel, prepared: str, share: float) -> Callable[[str], bool]:
    """code -> whether the prepared text's words fit that language (:meth:`SecondModel.fits`)."""
    return lambda code: second.fits(code, prepared, share)


def _asker(answer: LangResult | None, second: SecondModel | None, prepared: str) -> Callable[[], LangResult]:
    """The second model's answer on a prepared text: the one already asked for, else asked once when needed."""
    if answer is not None:
        return lambda: answer
    if second is None:
        return lambda: LangResult(UNDETERMINED, 0.0, None, None)
    return functools.cache(lambda: second.predict(prepared))


def settle(
    whole: np.ndarray,
    chunks: Callable[[], np.ndarray],
    ask: Callable[[], LangResult],
    model: LangModel,
    second: SecondModel | None,
    *,
    threshold: float,
    thresholds: Mapping[str, float] | None,
    prior_weight: float,
    trust_score: float,
    min_ratio: float,
    rule: SecondRule | None,
    fits: Callable[[str], bool] | None = None,
    plain: LangResult | None = None,
) -> LangResult:
    """The whole decision on model outputs, cheapest evidence first (split out so evaluation can cache model calls).

    1. lid.176 sure on the whole text (``trust_score``): its answer, checked by the second model when
       :func:`needs_second` says so.
    2. lid.176 unsure and the second model sure (``rule.min_score``) of a language lid.176 cannot name: the second
       model's answer (:func:`sure_of_unknown`); the chunk rule is not run.
    3. Otherwise the chunk rule (as in :func:`decide_chunks`), then :func:`second_opinion`.

    Wherever the second model was consulted, the answer then goes through :func:`check_words`.
    The whole-text distribution is decided once for steps 1 and 2.

    Args:
        whole: array (1, labels), the first model's distribution for the whole prepared text.
        chunks: returns the array (chunks, labels) of per-chunk distributions (called only if needed).
        ask: returns the second model's answer on the prepared text (called at most once when cached).
        model, second: the two models (``second`` ``None``: the first model decides alone).
        threshold, thresholds, prior_weight, trust_score, min_ratio: as in :func:`detect`.
        rule: the two-model settings (``None``: the defaults).
        fits: code -> whether the text's words fit that language (``SecondModel.fits`` on the prepared text;
            ``None``: no word check).
        plain: ``decide(whole[0], model.codes, 0.0, thresholds, min_ratio)`` when the caller already made it.
    """
    rule = rule or _DEFAULT_RULE
    first = plain if plain is not None else decide(whole[0], model.codes, 0.0, thresholds, min_ratio)
    if first.score < trust_score:
        early = None if second is None else sure_of_unknown(ask(), model.code_set, rule, threshold, thresholds)
        if early is not None:
            return check_words(early, fits, rule)
        first = _chunk_decision(chunks(), model, threshold, thresholds, prior_weight, min_ratio)
    return second_opinion(
        first,
        ask,
        model,
        second,
        trust_score=trust_score,
        rule=rule,
        threshold=threshold,
        thresholds=thresholds,
        fits=fits,
    )


def check_words(result: LangResult, fits: Callable[[str], bool] | None, rule: SecondRule) -> LangResult:
    """``und`` (source ``words_und``) for an answer in a focus language whose word list does not fit the text.

    The second model may name one of its languages with confidence for a related language it never saw (Oromo
    left out of its training: ``so`` at a median 0.996), and lid.176 calls Tigrinya ``am``. Such a text shares
    few of its words with the named language's frequent words (Tigrinya articles: at most 23% of their words are
    among the 5,000 most frequent Amharic ones; 99% of Amharic articles: 50% or more), so an answer the second
    model was consulted on stands only when :meth:`SecondModel.fits` says the words fit. Codes in
    ``rule.contrast`` (English, French, Pidgin: too many shared words) and codes without a list are not checked.
    """
    if fits is None or result.lang == UNDETERMINED or result.lang in rule.contrast or fits(result.lang):
        return result
    return dataclasses.replace(result, lang=UNDETERMINED, source="words_und")


def sure_of_unknown(
    second: LangResult,
    first_codes: frozenset[str],
    rule: SecondRule,
    threshold: float = 0.0,
    thresholds: Mapping[str, float] | None = None,
) -> LangResult | None:
    """The second model's answer when it is sure (``rule.min_score``) of a language the first model cannot name.

    ``None`` otherwise. Such an answer would replace any unsure first answer in :func:`combine` (the first model
    cannot confirm a language it does not know), so for a text the first model is unsure of as a whole it is taken
    before the chunk rule runs. Like every answer it must reach ``threshold`` (or its code's entry in
    ``thresholds``), else the text is ``und``.
    """
    if second.lang == UNDETERMINED or second.score < rule.min_score or second.lang in first_codes:
        return None
    if second.score < (thresholds or {}).get(second.lang, threshold):
        return dataclasses.replace(second, lang=UNDETERMINED, source="second_und")
    return dataclasses.replace(second, source="second")


def second_opinion(
    first: LangResult,
    ask: Callable[[], LangResult],
    model: LangModel,
    second: SecondModel | None,
    *,
    trust_score: float,
    rule: SecondRule | None,
    threshold: float,
    thresholds: Mapping[str, float] | None,
    fits: Callable[[str], bool] | None = None,
) -> LangResult:
    """lid.176's decision ``first`` after the two-model rule: the second model (``ask``) is
    consulted only when :func:`needs_second` says so, :func:`combine` settles the answer and
    :func:`check_words` checks it (``fits``: see :func:`settle`)."""
    if second is None:
        return first
    rule = rule or _DEFAULT_RULE
    if not needs_second(first, trust_score, rule):
        return first
    combined = combine(first, ask(), model.code_set, second.codes, trust_score, rule, threshold, thresholds)
    return check_words(combined, fits, rule)


def decide_chunks(
    whole: np.ndarray,
    chunks: Callable[[], np.ndarray],
    model: LangModel,
    *,
    threshold: float,
    thresholds: Mapping[str, float] | None,
    prior_weight: float,
    trust_score: float,
    min_ratio: float = 1.0,
) -> LangResult:
    """The two-stage decision on model outputs (split out so evaluation can cache model calls).

    Args:
        whole: array (1, labels), the model's distribution for the whole prepared text.
        chunks: returns the array (chunks, labels) of per-chunk distributions (called only if needed).
        model: gives label prior and codes.
        threshold, thresholds, prior_weight, trust_score, min_ratio: as in :func:`detect`.
    """
    plain = decide(whole[0], model.codes, 0.0, thresholds, min_ratio)
    if plain.score >= trust_score:
        return plain
    return _chunk_decision(chunks(), model, threshold, thresholds, prior_weight, min_ratio)


def _chunk_decision(
    chunk_probs: np.ndarray,
    model: LangModel,
    threshold: float,
    thresholds: Mapping[str, float] | None,
    prior_weight: float,
    min_ratio: float,
) -> LangResult:
    """The chunk rule's answer: the chunks' prior-corrected distributions aggregated, then decided."""
    return decide(aggregate(chunk_probs, model.log_prior, prior_weight), model.codes, threshold, thresholds, min_ratio)
