"""Silence Beam's notices that it ignores newsflow's annotations of composite transforms.

Beam (2.78 and later) reads the return annotation of every ``PTransform.expand`` and of every
``DoFn.process`` as a type hint. newsflow's composites return named tuples or dicts of
PCollections (``ReadResult``, ``DedupeResult``) and its DoFns yield ``TaggedOutput``s, which Beam
cannot use as hints, so it logs one warning per applied transform (about 80 lines for the ingest
graph, even with ``--quiet``). The hints are ignored either way; the coders come from the
declared ``with_output_types``. Without Beam's ``gcp`` extras, importing Beam also logs that its
BigQuery clients are missing, which newsflow never uses. This filter drops exactly those notices,
and nothing else Beam logs; importing this module installs it (``newsflow`` and ``pipelines``
import it before Beam).
"""

from __future__ import annotations

import logging
import os

__all__ = ["IgnoredHintNotices", "install"]

# Beam module (path suffix) -> the start of each notice of it that is dropped
_NOTICES = {
    os.path.join("apache_beam", "typehints", "decorators.py"): (
        "This output type hint will be ignored",
        "This input type hint will be ignored",
        "TaggedOutput in return type must include type parameters",
    ),
    os.path.join("apache_beam", "io", "gcp", "internal", "clients", "bigquery", "__init__.py"): (
        "apitools not found, and bigquery client libraries are not available",
    ),
}


class IgnoredHintNotices(logging.Filter):
    """Drops Beam's 'type hint will be ignored' and 'BigQuery clients missing' warnings, only those."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING:
            return True
        for source, notices in _NOTICES.items():
            if record.pathname.endswith(source) and str(record.msg).startswith(notices):
                return False
        return True


def install() -> None:
    """Add the filter to the root logger (where Beam logs these notices), once per process."""
    root = logging.getLogger()
    if not any(isinstance(f, IgnoredHintNotices) for f in root.filters):
        root.addFilter(IgnoredHintNotices())


install()
