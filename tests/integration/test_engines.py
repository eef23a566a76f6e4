"""The same rows on every engine: Beam's in-process runner and Prism, on a corpus with bad inputs.

Prism is Beam's Go runner (``python -m newsflow.engines install prism`` builds it). The
corpus is made by the shared corpus generator from four MasakhaNEWS languages and holds
re-publications, edited copies and the bad inputs real dumps contain (unsafe archive
paths, truncated compression, binary and oversized documents), so accounting, rejects and
dedupe decisions are all compared. An engine that dies mid-run must fail the run and
publish nothing.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import apache_beam as beam
import pandas as pd
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability import common_urns
from apache_beam.portability.api import beam_runner_api_pb2

from newsflow.config import load_config
from newsflow.engines import find
from pipelines.ingest import build_pipeline, run
from tests.conftest import make_corpus, read_sorted, score_output

pytestmark = pytest.mark.integration

REPO = pathlib.Path(__file__).resolve().parents[2]
LANGS = ("eng", "fra", "som", "hau")
PRISM = ("--runner=PrismRunner",)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, shared_dir) -> pathlib.Path:
    return make_corpus(tmp_path_factory.mktemp("enginecorpus"), shared_dir, LANGS)


@pytest.fixture(scope="module")
def prism_installed() -> pathlib.Path:
    path = find("prism")
    if path is None:
        pytest.fail("Prism is not installed; run: python -m newsflow.engines install prism")
    return path


def _ingest(corpus: pathlib.Path, out: pathlib.Path, *extra: str) -> dict:
    return run(["--input", str(corpus / "dump"), "--output", str(out), "--quiet", *extra])


@pytest.fixture(scope="module")
def in_process(corpus, tmp_path_factory) -> tuple[pathlib.Path, dict]:
    out = tmp_path_factory.mktemp("inprocess") / "out"
    return out, _ingest(corpus, out)


@pytest.fixture(scope="module")
def on_prism(corpus, tmp_path_factory, prism_installed) -> tuple[pathlib.Path, dict]:
    out = tmp_path_factory.mktemp("prism") / "out"
    return out, _ingest(corpus, out, *PRISM)


def test_prism_writes_the_rows_of_the_in_process_runner(in_process, on_prism) -> None:
    (a, ma), (b, mb) = in_process, on_prism
    assert "prism" in mb["runner"].lower()
    for name in ("docs", "duplicates", "rejects"):
        ta, tb = read_sorted(a, name), read_sorted(b, name)
        assert len(ta) > 0 or name == "duplicates"
        pd.testing.assert_frame_equal(ta, tb, check_like=True, obj=name)
    assert ma["counts"] == mb["counts"]
    assert len(read_sorted(b, "duplicates")) > 0  # the comparison covers dedupe decisions


def test_prism_output_scores_accounting_and_every_bad_input(corpus, on_prism, shared_dir) -> None:
    out, _ = on_prism
    require = "accounting_ok,reject_recall>=1,reject_precision>=1,reject_reason_acc>=1,exact_dup_recall>=1"
    assert score_output(shared_dir, corpus, out, require)["accounting"]["missing"] == 0


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, command name) of every descendant of ``pid``."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{entry}/comm") as fh:
                    comm = fh.read().strip()
            except OSError:
                continue
            if int(fields[1]) == parent:
                found.append((int(entry), comm))
                todo.append(int(entry))
    return found


def test_an_engine_killed_mid_run_fails_the_run_and_publishes_nothing(corpus, tmp_path, prism_installed) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipelines.ingest",
            "--input",
            str(corpus / "dump"),
            "--output",
            str(out),
            "--quiet",
            *PRISM,
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        engine = []
        while time.monotonic() < deadline and proc.poll() is None and not engine:
            engine = [pid for pid, comm in _children(proc.pid) if comm == "prism"]
            time.sleep(0.05)
        assert engine, "Prism never started"
        time.sleep(2.0)  # the job is submitted and running
        assert proc.poll() is None, "the run ended before the engine could be killed"
        os.kill(engine[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode != 0, "the run reported success after its engine was killed"
    assert not (out / "_manifest.json").exists()
    published = [p for p in out.rglob("*.parquet") if not any(s.startswith(".") for s in p.relative_to(out).parts)]
    assert published == [], f"files were published by a failed run: {published[:3]}"
    assert err.strip(), "the failed run said nothing on stderr"


_PORTABLE_PRIMITIVES = {
    common_urns.primitives.IMPULSE.urn,
    common_urns.primitives.PAR_DO.urn,
    common_urns.primitives.GROUP_BY_KEY.urn,
    common_urns.primitives.FLATTEN.urn,
    common_urns.primitives.ASSIGN_WINDOWS.urn,
}
_SIDE_INPUTS = {common_urns.side_inputs.ITERABLE.urn, common_urns.side_inputs.MULTIMAP.urn}


def test_the_graph_uses_only_what_every_portable_runner_executes(tmp_path) -> None:
    """Prism, Flink, Spark and Dataflow execute the graph from the same primitives: no runner-specific shortcut."""
    p = beam.Pipeline(options=PipelineOptions([]))
    build_pipeline(
        p,
        [str(tmp_path / "in")],
        str(tmp_path / "out"),
        load_config(None),
        dedupe_against=[str(tmp_path / "earlier")],
        run_id="r",
    )
    proto = p.to_runner_api()
    odd, side = [], []
    for t in proto.components.transforms.values():
        # Beam's pass-through placeholders (inside Create) produce no collection of their own.
        produces = set(t.outputs.values()) - set(t.inputs.values())
        if not t.subtransforms and t.spec.urn not in _PORTABLE_PRIMITIVES and produces:
            odd.append(f"{t.unique_name}: {t.spec.urn}")
        if t.spec.urn == common_urns.primitives.PAR_DO.urn:
            payload = beam_runner_api_pb2.ParDoPayload.FromString(t.spec.payload)
            side += [
                f"{t.unique_name}: {s.access_pattern.urn}"
                for s in payload.side_inputs.values()
                if s.access_pattern.urn not in _SIDE_INPUTS
            ]
    assert not odd, "leaf transforms a portable runner may not know:\n" + "\n".join(odd)
    assert not side, "side inputs of an unusual kind:\n" + "\n".join(side)
    assert len(proto.components.environments) == 1  # one Python SDK environment, nothing runner-specific
    assert sum(t.spec.urn == common_urns.primitives.GROUP_BY_KEY.urn for t in proto.components.transforms.values())
