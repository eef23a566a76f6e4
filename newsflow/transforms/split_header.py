"""SplitHeader: raw documents in, parsed Doc records and reason-coded rejects out.

::

    parsed = read.docs | SplitHeader(ParseConfig(timezone="Europe/Paris"))
    parsed.docs     # Doc dicts (see newsflow.schema)
    parsed.rejects  # Reject dicts: no_header, bad_timestamp, empty_body, binary, too_large, ...
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import apache_beam as beam

from newsflow.config import ParseConfig
from newsflow.core.parse import ParseError, make_doc_id, make_excerpt, parse_document
from newsflow.metrics import counter, reject_counter
from newsflow.reasons import Reason
from newsflow.schema import make_doc, make_reject

__all__ = ["SplitHeader", "SplitResult", "split_raw_doc"]

_LOGGER = logging.getLogger(__name__)


class SplitResult(NamedTuple):
    """What SplitHeader yields."""

    docs: beam.PCollection
    rejects: beam.PCollection


def split_raw_doc(raw: dict[str, Any], cfg: ParseConfig) -> tuple[str, dict[str, Any]]:
    """Parse one RawDoc into ``("doc", Doc)`` or ``("reject", Reject)``; never raises for bad input."""
    data: bytes = raw["data"]
    src, idx = raw["source_path"], raw["doc_index"]
    if raw.get("size", len(data)) > len(data):
        return "reject", make_reject(
            src, idx, Reason.TOO_LARGE, f"document is {raw['size']} bytes, over the limit", make_excerpt(data)
        )
    try:
        parsed = parse_document(
            data,
            timezone=cfg.timezone,
            min_year=cfg.min_year,
            max_year=cfg.max_year,
            max_control_ratio=cfg.max_control_ratio,
        )
    except ParseError as e:
        return "reject", make_reject(src, idx, e.reason, e.detail, make_excerpt(data))
    doc = make_doc(doc_id=make_doc_id(src, idx, data), source_path=src, doc_index=idx, **parsed.as_fields())
    return "doc", doc


# The widest gap a time zone can explain between a naive local header and UTC (UTC+14), plus a day.
_ZONE_SLACK = 14 * 3600 + 86400


class _SplitHeaderFn(beam.DoFn):
    def __init__(self, cfg: ParseConfig):
        self._cfg = cfg
        self._now = 0.0

    def setup(self) -> None:
        self._now = time.time()

    def _count_odd_dates(self, doc: dict[str, Any]) -> None:
        """Odd but possible dates are kept as written and counted, so they can be looked at."""
        if doc["collected_at"] is not None and doc["collected_at"] < doc["published_at"] - _ZONE_SLACK:
            counter("collected_before_published").inc()
        if doc["published_at"] > self._now + _ZONE_SLACK:
            counter("published_in_future").inc()

    def process(self, raw: dict[str, Any]) -> Iterator[Any]:
        try:
            kind, value = split_raw_doc(raw, self._cfg)
        except Exception as e:  # noqa: BLE001 - routed to rejects with its message, never swallowed
            _LOGGER.exception("unexpected error parsing %s #%s", raw.get("source_path"), raw.get("doc_index"))
            kind, value = (
                "reject",
                make_reject(
                    raw.get("source_path", "?"),
                    raw.get("doc_index"),
                    Reason.INTERNAL_ERROR,
                    f"{type(e).__name__}: {e}",
                    make_excerpt(raw.get("data", b"")),
                ),
            )
        if kind == "doc":
            counter("docs_parsed").inc()
            self._count_odd_dates(value)
            if value["invalid_bytes"]:
                counter("invalid_utf8_docs").inc()
                counter("invalid_utf8_bytes").inc(value["invalid_bytes"])
            yield value
        else:
            reject_counter(value["reason"]).inc()
            yield beam.pvalue.TaggedOutput("rejects", value)


class SplitHeader(beam.PTransform):
    """Parse raw documents into records; every failure becomes a reject with a reason."""

    def __init__(self, config: ParseConfig | None = None):
        super().__init__()
        self._cfg = config or ParseConfig()

    def expand(self, raw_docs: beam.PCollection) -> SplitResult:
        out = raw_docs | "Parse" >> beam.ParDo(_SplitHeaderFn(self._cfg)).with_outputs("rejects", main="docs")
        return SplitResult(out.docs, out.rejects)
