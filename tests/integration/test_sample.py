"""The main job on its bundled sample: exact outcome, summary, readable tables."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.ingest import main

pytestmark = pytest.mark.integration


def test_default_sample_run(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["--runner=DirectRunner", "--output", str(out)]) == 0
    summary = capsys.readouterr().out
    assert "accounting  ok: read = kept + duplicates + rejects" in summary
    docs = pd.read_parquet(out / "docs")
    dups = pd.read_parquet(out / "duplicates")
    rejects = pd.read_parquet(out / "rejects")
    assert len(docs) + len(dups) + len(rejects) == 15
    assert sorted(rejects["reason"]) == ["bad_timestamp", "empty_body", "empty_file", "no_header", "unsafe_path"]
    assert sorted(docs["lang"].astype(str)) == ["de", "en", "es", "fr", "fr", "it", "pt", "sw"]
    assert sorted(dups["method"]) == ["exact", "near"]
    riverton = docs[docs["source_path"] == "feeds/site-b/2024-07-05/000_riverton-libraries.txt"]
    assert set(dups["kept_id"]) == set(riverton["doc_id"])  # the earliest copy is kept
    seed = docs[docs["source_path"] == "feeds/site-a/2024-07-04/000_9e7363cd7f7dbcf0.txt"].iloc[0]
    assert list(seed["hashtags_raw"])[0] == "#quoi" and "dialogues" in list(seed["hashtags"])
