"""Beam counters under one namespace, created once per name."""

from __future__ import annotations

import functools

from apache_beam.metrics import Metrics

__all__ = ["NAMESPACE", "counter", "reject_counter"]

NAMESPACE = "newsflow"


@functools.cache
def counter(name: str):  # noqa: ANN201 - Beam's counter type is private
    """The Beam counter ``newsflow:<name>``."""
    return Metrics.counter(NAMESPACE, name)


def reject_counter(reason: str):  # noqa: ANN201
    """The counter of one reject reason, ``newsflow:reject_<reason>``."""
    return counter(f"reject_{reason}")
