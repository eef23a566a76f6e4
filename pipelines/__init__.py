"""The ingest job (``python -m pipelines.ingest``) and its command line."""

from newsflow import beam_notices  # noqa: F401 - installs newsflow's log filter before Beam is imported
