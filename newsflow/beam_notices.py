"""Silence Beam's notices that it ignores newsflow's annotations of composite transforms.

Beam (2.78 and later) reads the return annotation of every ``PTransform.expand`` and of every
``DoFn.process`` as a type hint. newsflow's composites return named tuples or dicts of
PCollections (``ReadResult``, ``DedupeResult``) and its DoFns yield ``TaggedOutput``s, which Beam
cannot use as hints, so it logs one warning per applied transform (about 80 lines for the ingest
graph, even with ``--quiet``). The hints are ignored either way; the coders come from the
declared ``with_output_types``. This filter drops exactly those notices, and nothing else Beam
logs.
"""

from __future__ import annotations

import logging
import os

__all__ = ["IgnoredHintNotices", "install"]

_NOTICES = (
    "This output type hint will be ignored",
    "This input type hint will be ignored",
    "TaggedOutput in return type must include type parameters",
)
_SOURCE = os.path.join("apache_beam", "typehints", "decorators.py")


class IgnoredHintNotices(logging.Filter):
    """Drops Beam's 'type hint will be ignored' warnings (logged by ``apache_beam.typehints.decorators``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING or not record.pathname.endswith(_SOURCE):
            return True
        return not str(record.msg).startswith(_NOTICES)


def install() -> None:
    """Add the filter to the root logger (where Beam logs these notices), once per process."""
    root = logging.getLogger()
    if not any(isinstance(f, IgnoredHintNotices) for f in root.filters):
        root.addFilter(IgnoredHintNotices())
