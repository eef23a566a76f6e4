"""Shared pytest fixtures: the golden seed document and the shared corpora folder."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
SEED_PATH = FIXTURES / "seed" / "000_9e7363cd7f7dbcf0.txt"


def _shared_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("NEWSFLOW_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared_dir() -> pathlib.Path:
    """The folder with FORMAT.md, corpora/ and tools/ (``$NEWSFLOW_SHARED`` or ``../shared``)."""
    path = _shared_dir()
    if not (path / "corpora").is_dir():
        pytest.fail(f"shared corpora not found at {path}; set NEWSFLOW_SHARED")
    return path


@pytest.fixture(scope="session")
def seed_bytes() -> bytes:
    """The user's real example document, byte for byte."""
    return SEED_PATH.read_bytes()


def make_corpus(base: pathlib.Path, shared: pathlib.Path, langs: tuple[str, ...]) -> pathlib.Path:
    """Generate a dump (``<base>/gen/dump``, truth in ``<base>/gen/truth.jsonl``) from MasakhaNEWS dev splits.

    The corpus generator of the shared folder turns real articles into the dump format with
    duplicates and the bad inputs real dumps contain; the articles are linked, never copied.
    """
    src = base / "masakhane"
    for lang in langs:
        (src / lang).mkdir(parents=True)
        os.symlink(shared / "corpora" / "masakhanews" / lang / "dev.tsv", src / lang / "dev.tsv")
    tool = shared / "tools" / "make_dump_corpus.py"
    subprocess.run(
        [sys.executable, str(tool), "--out", str(base / "gen"), "--masakhane", str(src)],
        check=True,
        capture_output=True,
    )
    return base / "gen"


def score_output(shared: pathlib.Path, corpus: pathlib.Path, out: pathlib.Path, require: str) -> dict:
    """Score an output against its corpus's truth with the shared scoring tool; fails on any unmet ``require``."""
    import json

    proc = subprocess.run(
        [
            sys.executable,
            str(shared / "tools" / "score_run.py"),
            "--truth",
            str(corpus / "truth.jsonl"),
            "--output",
            str(out),
            "--json",
            "-",
            "--require",
            require,
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def read_sorted(out: pathlib.Path, name: str):  # noqa: ANN201 - a pandas DataFrame
    """One output table as a DataFrame in a stable row order, partition columns as strings."""
    import pandas as pd

    df = pd.read_parquet(out / name)
    for col in ("lang", "date"):
        if col in df:
            df[col] = df[col].astype(str)
    keys = [c for c in ("source_path", "doc_index", "reason") if c in df]
    return df.sort_values(keys).reset_index(drop=True)
