"""Shared pytest fixtures: the golden seed document and the shared corpora folder."""
from __future__ import annotations

import os
import pathlib

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
