"""NormalizeHashtags: fill each Doc's ``hashtags`` from its ``hashtags_raw``.

A thin Beam wrapper around :func:`newsflow.core.hashtags.explain_hashtags`; the rules
are documented in ``docs/hashtags.md``. ``hashtags_raw`` is never changed.

Counters (namespace ``newsflow``): ``hashtags_kept`` and ``hashtags_dropped_<rule>``
for each :class:`~newsflow.core.hashtags.DropRule`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from newsflow.config import HashtagConfig
from newsflow.core.hashtags import DropRule, HashtagDecision, explain_hashtags

__all__ = ["NormalizeHashtags", "NormalizeHashtagsFn", "hashtag_decisions"]

_NAMESPACE = "newsflow"
_DEFAULT_CONFIG = HashtagConfig()


def hashtag_decisions(doc: dict[str, Any], cfg: HashtagConfig) -> list[HashtagDecision]:
    """:func:`~newsflow.core.hashtags.explain_hashtags` for one Doc under the ``hashtags`` settings."""
    return explain_hashtags(
        doc.get("hashtags_raw") or [],
        doc.get("lang"),
        fold_accents=cfg.fold_accents,
        drop_numeric=cfg.drop_numeric,
        drop_stopwords=cfg.drop_stopwords,
        min_length=cfg.min_length,
        max_length=cfg.max_length,
    )


class NormalizeHashtagsFn(beam.DoFn):
    """Doc -> Doc with ``hashtags`` normalized for the doc's ``lang``."""

    def __init__(self, config: HashtagConfig = _DEFAULT_CONFIG) -> None:
        super().__init__()
        config.validate()
        self._config = config

    def setup(self) -> None:
        self._kept = Metrics.counter(_NAMESPACE, "hashtags_kept")
        self._dropped = {rule: Metrics.counter(_NAMESPACE, f"hashtags_dropped_{rule.value}") for rule in DropRule}

    def process(self, doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
        decisions = hashtag_decisions(doc, self._config)
        kept = [d.tag for d in decisions if d.rule is None]
        if kept:
            self._kept.inc(len(kept))
        for d in decisions:
            if d.rule is not None:
                self._dropped[d.rule].inc()
        yield {**doc, "hashtags": kept}


class NormalizeHashtags(beam.PTransform):
    """PCollection[Doc] -> PCollection[Doc] with ``hashtags`` filled from ``hashtags_raw``.

    Args:
        config: The ``hashtags`` section of the run settings (defaults: ``HashtagConfig()``).
            With ``enabled: false`` documents pass through unchanged.
    """

    def __init__(self, config: HashtagConfig = _DEFAULT_CONFIG, label: str | None = None) -> None:
        super().__init__(label)
        config.validate()
        self._config = config

    def expand(self, pcoll: beam.PCollection) -> beam.PCollection:
        if not self._config.enabled:
            return pcoll | "PassThrough" >> beam.Map(_identity)
        return pcoll | "Normalize" >> beam.ParDo(NormalizeHashtagsFn(self._config))


def _identity(doc: dict[str, Any]) -> dict[str, Any]:
    return doc
