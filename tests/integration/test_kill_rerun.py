"""Faults and reruns: a run killed with SIGKILL leaves no torn files, and a rerun gives the full output.

The pipeline runs as ``python -m pipelines.ingest`` in a child process (on the in-process
runner and on Prism) on a corpus made from two MasakhaNEWS languages, and is killed at a
fixed time and at the moment its hidden temporary folder appears.  After each kill the output holds no visible data file
or only complete Parquet files; a rerun with ``--output_mode=overwrite`` then gives
exactly the rows of an uninterrupted run, and the input tree is never written to.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipelines.ingest import run
from tests.conftest import make_corpus, read_sorted

pytestmark = pytest.mark.integration

REPO = pathlib.Path(__file__).resolve().parents[2]
LANGS = ("eng", "hau")
FAST = "lang: {enabled: false}\nhashtags: {enabled: false}\ndedupe: {enabled: false}\n"


def _snapshot(folder: pathlib.Path) -> dict[str, tuple[int, int]]:
    """Every path under ``folder`` with its size and mtime (links not followed)."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            st = os.lstat(os.path.join(root, name))
            out[os.path.relpath(os.path.join(root, name), folder)] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, shared_dir) -> pathlib.Path:
    base = tmp_path_factory.mktemp("killcorpus")
    make_corpus(base, shared_dir, LANGS)
    (base / "fast.yaml").write_text(FAST)
    return base


def _args(corpus: pathlib.Path, out: pathlib.Path, *extra: str) -> list[str]:
    return [
        "--input",
        str(corpus / "gen" / "dump"),
        "--output",
        str(out),
        "--config",
        str(corpus / "fast.yaml"),
        "--quiet",
        *extra,
    ]


def _table(out: pathlib.Path, name: str) -> pd.DataFrame:
    return read_sorted(out, name)


def _visible_parquet(out: pathlib.Path) -> list[pathlib.Path]:
    if not out.exists():
        return []
    return [
        p for p in out.rglob("*.parquet") if not any(part.startswith((".", "_")) for part in p.relative_to(out).parts)
    ]


def _assert_complete_or_absent(out: pathlib.Path) -> int:
    """Every visible data file opens and holds the rows its footer says; returns how many there are."""
    files = _visible_parquet(out)
    for f in files:
        table = pq.read_table(f)
        assert table.num_rows == pq.read_metadata(f).num_rows
    return len(files)


def _start(corpus: pathlib.Path, out: pathlib.Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "pipelines.ingest", *_args(corpus, out, *extra)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _kill(proc: subprocess.Popen) -> bool:
    """SIGKILL the run (its own process group); False if it had already finished."""
    finished = proc.poll() is not None
    if not finished:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    return not finished


def _wait_for_tmp(proc: subprocess.Popen, out: pathlib.Path, timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and any(p.name.startswith(".newsflow-tmp-") for p in out.iterdir()):
            return True
        time.sleep(0.01)
    return False


@pytest.fixture(scope="module")
def baseline(corpus, tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("baseline") / "out"
    run(_args(corpus, out))
    return out


@pytest.mark.parametrize("engine", [(), ("--runner=PrismRunner",)], ids=["in-process", "prism"])
def test_killed_runs_leave_no_torn_files_and_a_rerun_gives_the_full_output(corpus, baseline, tmp_path, engine) -> None:
    before = _snapshot(corpus / "gen" / "dump")
    out = tmp_path / "out"

    proc = _start(corpus, out, *engine)
    time.sleep(1.0)
    assert _kill(proc), "the run finished within a second: nothing was interrupted"
    assert not (out / "_manifest.json").exists()
    assert _assert_complete_or_absent(out) == 0

    caught = False
    for _ in range(3):  # the write phase is short: a run that finished before the kill is tried again
        proc = _start(corpus, out, "--output_mode=overwrite", *engine)
        saw_tmp = _wait_for_tmp(proc, out)
        caught = _kill(proc) and saw_tmp
        _assert_complete_or_absent(out)
        if caught:
            break
    assert caught, "no run was caught while writing its temporary folder"

    run(_args(corpus, out, "--output_mode=overwrite", *engine))
    for name in ("docs", "duplicates", "rejects"):
        pd.testing.assert_frame_equal(_table(baseline, name), _table(out, name), check_like=True, obj=name)
    assert _assert_complete_or_absent(out) == _assert_complete_or_absent(baseline)
    visible = sorted(p.name for p in out.iterdir() if not p.name.startswith(".newsflow-tmp-"))
    assert visible == sorted(p.name for p in baseline.iterdir())  # only hidden leftovers of the killed runs differ
    assert _snapshot(corpus / "gen" / "dump") == before  # the input was never written to


def test_killed_overwrite_keeps_a_complete_earlier_output(corpus, baseline, tmp_path) -> None:
    """Killing an overwrite run while it writes leaves the earlier complete output readable and whole."""
    out = tmp_path / "out"
    run(_args(corpus, out))
    caught = False
    for _ in range(3):  # a run that finished before the kill (same rows) is tried again
        proc = _start(corpus, out, "--output_mode=overwrite")
        saw_tmp = _wait_for_tmp(proc, out)
        caught = _kill(proc) and saw_tmp
        if caught:
            break
    assert caught, "no overwrite run was caught while writing its temporary folder"
    assert _assert_complete_or_absent(out) > 0
    for name in ("docs", "rejects"):
        pd.testing.assert_frame_equal(_table(baseline, name), _table(out, name), check_like=True, obj=name)


def test_append_run_leaves_earlier_run_files_untouched(corpus, tmp_path) -> None:
    out = tmp_path / "out"
    dump = corpus / "gen" / "dump"
    parts = sorted(p for p in dump.iterdir() if p.is_dir())
    assert len(parts) >= 2

    def append(part: pathlib.Path, run_id: str) -> None:
        args = ["--input", str(part), "--output", str(out), "--config", str(corpus / "fast.yaml"), "--quiet"]
        run([*args, "--output_mode=append", f"--run_id={run_id}"])

    append(parts[0], "first")
    first = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in _visible_parquet(out)}
    assert first
    append(parts[1], "second")
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in first} == first
    assert len(_visible_parquet(out)) > len(first)
