"""Another pipeline composes the public transforms, as the README shows."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

pytestmark = pytest.mark.integration


def test_public_transforms_compose_on_the_sample() -> None:
    from newsflow import Dedupe, DetectLang, NormalizeHashtags, ReadDump, SplitHeader
    from pipelines.ingest import default_input

    with TestPipeline() as p:
        read = p | ReadDump(default_input())
        parsed = read.docs | SplitHeader()
        docs = parsed.docs | DetectLang() | NormalizeHashtags()
        deduped = docs | Dedupe()
        rejects = (read.rejects, parsed.rejects) | beam.Flatten()
        langs = deduped.kept | "Langs" >> beam.Map(lambda d: d["lang"])
        assert_that(langs, equal_to(["de", "en", "es", "fr", "fr", "it", "pt", "sw"]), label="langs")
        assert_that(
            deduped.duplicates | "Methods" >> beam.Map(lambda d: d["method"]), equal_to(["exact", "near"]), label="dups"
        )
        assert_that(
            rejects | "Reasons" >> beam.Map(lambda r: r["reason"]),
            equal_to(["bad_timestamp", "empty_body", "empty_file", "no_header", "unsafe_path"]),
            label="rejects",
        )
