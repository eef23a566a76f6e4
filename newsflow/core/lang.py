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
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.resources
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
    "DEFAULT_LABEL_MAP",
    "LABEL_PREFIX",
    "UNDETERMINED",
    "LangModel",
    "LangResult",
    "aggregate",
    "bundled_model_path",
    "chunk_words",
    "decide",
    "decide_chunks",
    "detect",
    "load_model",
    "map_label",
    "prepare_text",
]

UNDETERMINED = "und"
LABEL_PREFIX = "__label__"
BUNDLED_MODEL = "lid.176.ftz"

# Codes are ISO 639-1 where one exists (as lid.176 answers), else ISO 639-3. Labels of other models
# (GlotLID's ``eng_Latn``, NLLB/OpenLID's ``fra_Latn``) are reduced by ``map_label``: the script suffix
# is dropped and a 639-3 code that has a 639-1 equivalent is replaced by it. This table lists the
# 639-3 -> 639-1 pairs (individual and macro-language codes) for the languages lid.176 knows, plus
# lid.176's own deprecated codes.
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
# lid.176 answers these deprecated codes; map them to the current ones.
DEFAULT_LABEL_MAP: dict[str, str] = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv", "mo": "ro"}

_URL_RE = re.compile(r"(?:https?://|ftp://|www\.)\S+|\S+@\S+\.\w+|(?<!\w)@\w+", re.IGNORECASE)


@functools.cache
def _word_re() -> re.Pattern[str]:
    """A word is a run of letters and combining marks (Unicode categories L* and M*).

    Digits, punctuation, symbols, '_' and '#' separate words. Marks must be kept inside words: Indic
    vowel signs and Yoruba tone marks over dotted vowels (which have no precomposed form) are marks.
    """
    marks = []
    start = None
    for cp in [*range(0x20000), *range(0xE0000, 0xE1000), 0x10FFFF]:  # marks live in these planes
        is_mark = unicodedata.category(chr(cp)).startswith("M")
        if is_mark and start is None:
            start = cp
        elif not is_mark and start is not None:
            marks.append((start, cp - 1))
            start = None
    ranges = "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in marks)
    return re.compile(f"(?:[^\\W\\d_]|[{ranges}])+")


@dataclasses.dataclass(frozen=True)
class LangResult:
    """The decision for one text.

    Attributes:
        lang: code, or ``und``.
        score: share of the best label after prior correction, in [0, 1] (0.0 for a text too short).
        alt: runner-up code (``None`` when there is none).
        alt_score: its share (``None`` when there is none).
    """

    lang: str
    score: float
    alt: str | None
    alt_score: float | None


def prepare_text(text: str, max_chars: int | None = None) -> str:
    """Fold a document into the one-line, lowercase, letters-only form fed to the model.

    Args:
        text: body text, possibly with newlines, URLs, digits and punctuation.
        max_chars: cut after this many characters at the last word boundary (``None`` = no cut).

    Returns:
        Words of letters (combining marks kept) separated by single spaces.
    """
    text = unicodedata.normalize("NFC", text)
    text = _URL_RE.sub(" ", text)
    words = _word_re().findall(text)
    out = " ".join(words).lower()
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
    if not words:
        return []
    if size <= 0:
        return [" ".join(words)]
    return [" ".join(words[i : i + size]) for i in range(0, len(words), size)]


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
    merged: dict[str, float] = {}
    for code, p in zip(codes, probs.tolist(), strict=True):
        merged[code] = merged.get(code, 0.0) + p
    ranked = sorted(merged.items(), key=lambda kv: kv[1], reverse=True)
    best, score = ranked[0]
    alt, alt_score = ranked[1] if len(ranked) > 1 else (None, None)
    limit = (thresholds or {}).get(best, threshold)
    clear = alt_score is None or score >= min_ratio * alt_score
    lang = best if score >= limit and clear and best != UNDETERMINED else UNDETERMINED
    # fastText's softmax adds 1e-5 to every probability, so a sure answer can read 1.00001
    score = min(float(score), 1.0)
    return LangResult(lang, score, alt, None if alt_score is None else min(float(alt_score), 1.0))


def bundled_model_path() -> Path:
    """Path of the lid.176.ftz file shipped inside the package (works from a wheel too)."""
    ref = importlib.resources.files("newsflow") / "models" / BUNDLED_MODEL
    path = Path(str(ref))
    if not path.is_file():  # pragma: no cover - a zipped install; fall back to the source tree
        path = Path(__file__).resolve().parents[1] / "models" / BUNDLED_MODEL
    return path


def _local_copy(uri: str) -> str:
    """Copy a model at a Beam filesystem URI (gs://, s3://, ...) to a local temporary file."""
    from apache_beam.io.filesystems import FileSystems

    fd, local = tempfile.mkstemp(suffix=os.path.splitext(uri)[1] or ".bin", prefix="newsflow-lang-")
    with os.fdopen(fd, "wb") as out, FileSystems.open(uri) as src:
        shutil.copyfileobj(src, out, 1 << 20)
    return local


def load_model(model_path: str | None = None) -> Any:
    """Load a fastText model: the bundled lid.176 (``None``), a local path or a Beam filesystem URI."""
    import fasttext

    if model_path is None:
        return fasttext.load_model(str(bundled_model_path()))
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


class LangModel:
    """One loaded fastText model with its label prior and code mapping; safe to share across threads.

    Args:
        model_path: ``None`` for the bundled lid.176.ftz, else a path or URI.
        label_map: extra label -> code entries (see :func:`map_label`).
        model: an already loaded fastText model (tests); ``model_path`` is then ignored.
    """

    def __init__(
        self,
        model_path: str | None = None,
        label_map: Mapping[str, str] | None = None,
        model: Any = None,
    ) -> None:
        self.model = model if model is not None else load_model(model_path)
        labels, counts = self.model.get_labels(include_freq=True)
        self.labels: list[str] = list(labels)
        self._index = {label: i for i, label in enumerate(self.labels)}
        freq = np.asarray(counts, dtype=np.float64)
        self.log_prior = np.log(np.maximum(freq, 1.0) / max(freq.sum(), 1.0))
        self.codes: list[str] = [map_label(label, label_map) for label in self.labels]
        self._lock = threading.Lock()

    def top_probs(self, text: str, k: int = 5) -> np.ndarray:
        """Array (1, labels) holding the ``k`` best probabilities of one text, zeros elsewhere.

        Enough for the confident-answer check (a best label over 0.5 leaves less than 0.5 to
        share among the rest) and several times cheaper than the full distribution.
        """
        out = np.zeros((1, len(self.labels)), dtype=np.float64)
        with self._lock:
            labels, probs = self.model.predict(text, k=k, threshold=0.0)
        out[0, [self._index[label] for label in labels]] = probs
        return out

    def chunk_probs(self, chunks: Sequence[str]) -> np.ndarray:
        """Full distribution p(label | chunk) for each chunk, array (chunks, labels)."""
        out = np.zeros((len(chunks), len(self.labels)), dtype=np.float64)
        if not chunks:
            return out
        with self._lock:  # a fastText object is not documented as thread-safe
            labels, probs = self.model.predict(list(chunks), k=-1, threshold=0.0)
        lookup = self._index.__getitem__
        for row, (lab, prob) in enumerate(zip(labels, probs, strict=True)):
            out[row, list(map(lookup, lab))] = prob
        return out


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
    """
    prepared = prepare_text(text, max_chars)
    if len(prepared) < max(min_chars, 1):
        return LangResult(UNDETERMINED, 0.0, None, None)
    whole = model.top_probs(prepared)
    return decide_chunks(
        whole, lambda: model.chunk_probs(chunk_words(prepared, chunk_size)), model,
        threshold=threshold, thresholds=thresholds, prior_weight=prior_weight, trust_score=trust_score,
        min_ratio=min_ratio,
    )


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
    probs = aggregate(chunks(), model.log_prior, prior_weight)
    return decide(probs, model.codes, threshold, thresholds, min_ratio)
