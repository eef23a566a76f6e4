"""DetectLang: set ``lang``, ``lang_score``, ``lang_alt`` and ``lang_alt_score`` on each Doc.

A thin Beam wrapper around :func:`newsflow.core.lang.detect_batch` (:func:`~newsflow.core.lang.detect` for a
batch of documents); the rule and its measurements are in
``docs/lang.md``. The fastText model is loaded once per worker process through
:class:`apache_beam.utils.shared.Shared` (all DoFn instances and threads of a process share it; its
predictions are serialised by a lock) and never pickled with the DoFn.

Counters (namespace ``newsflow``): ``lang_detected``, ``lang_und``, and for the second model
``lang_second_replaced`` (its answer replaced the first model's), ``lang_second_und`` (its doubt made the
answer ``und``) and ``lang_words_und`` (the answer's word list did not fit the text, so it became ``und``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import BoundedWindow, GlobalWindow
from apache_beam.utils.shared import Shared
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from newsflow.config import LangConfig
from newsflow.core.lang import UNDETERMINED, LangModel, LangResult, SecondModel, SecondRule, detect_batch
from newsflow.memory import start_releasing

__all__ = [
    "DetectLang",
    "DetectLangFn",
    "SharedLangModel",
    "detect_options",
    "doc_text",
    "load_second",
    "second_rule",
    "with_lang",
]

_NAMESPACE = "newsflow"
_DEFAULT_CONFIG = LangConfig()
_UNDETERMINED = LangResult(UNDETERMINED, 0.0, None, None)


class SharedLangModel:
    """Weak-referenceable holder of a :class:`LangModel` (and the second model, if any), as :class:`Shared` requires."""

    def __init__(self, model: LangModel, second: SecondModel | None = None) -> None:
        self.model = model
        self.second = second


def doc_text(doc: dict[str, Any], use_hashtags: bool) -> str:
    """The text a Doc is identified from: its body, plus its hashtag words when asked."""
    text = doc.get("text") or ""
    if use_hashtags and doc.get("hashtags_raw"):
        text = text + "\n" + " ".join(doc["hashtags_raw"])
    return text


def second_rule(cfg: LangConfig) -> SecondRule:
    """The two-model rule's settings from the ``lang`` settings."""
    return SecondRule(
        min_score=cfg.second_min_score,
        confirm_score=cfg.second_confirm_score,
        focus_score=cfg.second_focus_score,
        below=cfg.second_below,
        neighbours=cfg.neighbours(),
        always=tuple(cfg.second_always),
        contrast=tuple(cfg.second_contrast),
        word_share=cfg.second_word_share,
    )


def load_second(cfg: LangConfig) -> SecondModel | None:
    """The second model the settings name (``None`` when it is off)."""
    if cfg.second_model is None:
        return None
    return SecondModel(None if cfg.second_model == "bundled" else cfg.second_model, cfg.label_map)


def detect_options(cfg: LangConfig) -> dict[str, Any]:
    """:func:`~newsflow.core.lang.detect`'s keyword arguments from the ``lang`` settings (models excluded)."""
    return {
        "threshold": cfg.threshold,
        "thresholds": cfg.thresholds,
        "min_chars": cfg.min_chars,
        "max_chars": cfg.max_chars,
        "chunk_size": cfg.chunk_words,
        "prior_weight": cfg.prior_weight,
        "trust_score": cfg.trust_score,
        "min_ratio": cfg.min_ratio,
        "second_rule": second_rule(cfg),
    }


class DetectLangFn(beam.DoFn):
    """Doc -> Doc with the language fields set (a new dict; the input is not changed).

    Documents are detected :data:`BATCH_DOCS` at a time (:func:`~newsflow.core.lang.detect_batch`: each model
    asked once per batch, about a third less CPU than one text at a time between other steps' work): a bundle's
    documents are held until the batch is full or the bundle ends, then sent on in their own windows with their
    own timestamps. A direct call of :meth:`process` outside a runner therefore yields only when a batch fills;
    :meth:`finish_bundle` yields the rest (as ``WindowedValue``).
    """

    BATCH_DOCS = 256

    def __init__(self, config: LangConfig = _DEFAULT_CONFIG, shared: Shared | None = None) -> None:
        super().__init__()
        config.validate()
        self._config = config
        self._shared = shared if shared is not None else Shared()
        self._holder: SharedLangModel | None = None
        self._batch: list[tuple[dict[str, Any], Any, Any]] = []

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_holder"] = None  # the model lives in the worker, never in the pickle
        state["_batch"] = []
        return state

    def _load(self) -> SharedLangModel:
        cfg = self._config
        return SharedLangModel(LangModel(cfg.model_path, cfg.label_map), load_second(cfg))

    def setup(self) -> None:
        start_releasing()
        cfg = self._config
        tag = f"newsflow-lang:{cfg.model_path}:{cfg.second_model}:{sorted(cfg.label_map.items())}"
        self._holder = self._shared.acquire(self._load, tag=tag)
        self._detected = Metrics.counter(_NAMESPACE, "lang_detected")
        self._und = Metrics.counter(_NAMESPACE, "lang_und")
        self._second = {
            "second": Metrics.counter(_NAMESPACE, "lang_second_replaced"),
            "second_und": Metrics.counter(_NAMESPACE, "lang_second_und"),
            "words_und": Metrics.counter(_NAMESPACE, "lang_words_und"),
        }
        self._use_hashtags = cfg.use_hashtags
        self._options = detect_options(cfg)  # read from the config once instead of per element

    def start_bundle(self) -> None:
        self._batch = []

    def process(
        self,
        doc: dict[str, Any],
        timestamp: Any = beam.DoFn.TimestampParam,
        window: Any = beam.DoFn.WindowParam,
    ) -> Iterator[Any]:
        if self._holder is None:  # process() without setup(), e.g. a direct call in a test
            self.setup()
        if not isinstance(window, BoundedWindow):  # a direct call: no runner supplied the element's window
            timestamp, window = MIN_TIMESTAMP, GlobalWindow()
        self._batch.append((doc, timestamp, window))
        if len(self._batch) >= self.BATCH_DOCS:
            yield from self._flush()

    def finish_bundle(self) -> Iterator[Any]:
        yield from self._flush()

    def _flush(self) -> Iterator[WindowedValue]:
        """The held documents, detected, each in its own window."""
        batch, self._batch = self._batch, []
        if not batch:
            return
        assert self._holder is not None
        holder = self._holder
        texts = [doc_text(doc, self._use_hashtags) for doc, _, _ in batch]
        results = detect_batch(texts, holder.model, second=holder.second, **self._options)
        for (doc, timestamp, window), result in zip(batch, results, strict=True):
            yield WindowedValue(with_lang(doc, result), timestamp, (window,))
            self._count(result)

    def _count(self, result: LangResult) -> None:
        (self._und if result.lang == UNDETERMINED else self._detected).inc()
        if result.source in self._second:
            self._second[result.source].inc()


def with_lang(doc: dict[str, Any], result: LangResult) -> dict[str, Any]:
    """A new Doc with the language fields of ``result`` (the input is not changed)."""
    return {
        **doc,
        "lang": result.lang,
        "lang_score": result.score,
        "lang_alt": result.alt,
        "lang_alt_score": result.alt_score,
    }


class DetectLang(beam.PTransform):
    """PCollection[Doc] -> PCollection[Doc] with ``lang``/``lang_score``/``lang_alt``/``lang_alt_score``.

    Args:
        config: the ``lang`` settings; with ``enabled: false`` every Doc gets ``und`` and score 0.
    """

    def __init__(self, config: LangConfig = _DEFAULT_CONFIG) -> None:
        super().__init__()
        config.validate()
        self._config = config

    def expand(self, docs: beam.PCollection) -> beam.PCollection:
        if not self._config.enabled:
            return docs | "Undetermined" >> beam.Map(with_lang, _UNDETERMINED)
        return docs | "Detect" >> beam.ParDo(DetectLangFn(self._config))
