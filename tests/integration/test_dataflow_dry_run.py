"""The full ingest graph translates for Dataflow offline, and nothing in it depends on this machine.

``--runner=DataflowRunner --dry_run=True`` translates the pipeline to the Runner v2
pipeline proto and submits nothing (no credentials, no network). The translation runs in
a subprocess with a timeout: an invalid bucket name or a template option makes Beam try to
reach GCS and hang, and that must fail the test instead of blocking CI.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import contextlib
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Iterator

import pytest
from apache_beam.internal import pickler
from apache_beam.portability import common_urns
from apache_beam.portability.api import beam_runner_api_pb2

# DataflowRunner needs apache-beam[gcp] (the ``test`` extra); without it this import fails loudly.
from apache_beam.runners.dataflow.internal import apiclient  # noqa: F401
from google.protobuf.message import DecodeError, Message

REPO = pathlib.Path(__file__).resolve().parents[2]
BUCKET = "gs://newsflow-dry-run-bucket"
TIMEOUT_S = 180
NEWSFLOW_TRANSFORMS = ("ReadDump", "SplitHeader", "DetectLang", "NormalizeHashtags", "Dedupe", "WriteTables")

# Runs in a subprocess (cwd = repository root); writes the translated pipeline proto to argv[1].
_TRANSLATE = f"""
import sys
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from newsflow.config import load_config
from pipelines.ingest import build_pipeline

opts = PipelineOptions([
    "--runner=DataflowRunner", "--dry_run=True", "--project=newsflow-dry-run", "--region=us-central1",
    "--temp_location={BUCKET}/tmp", "--staging_location={BUCKET}/staging",
])
cfg = load_config("configs/default.yaml")
p = beam.Pipeline(options=opts)
build_pipeline(p, ["{BUCKET}/dumps/2024-07-05/", "{BUCKET}/extra/*.tar.gz"], "{BUCKET}/news", cfg,
               output_mode="append", run_id="2024-07-05", dedupe_against=["{BUCKET}/news"],
               run_info={{"run_id": "2024-07-05"}})
result = p.run()
assert str(result.state) == "DONE", result.state
with open(sys.argv[1], "wb") as fh:
    fh.write(result.job.proto_pipeline.SerializeToString())
"""

_PAYLOAD_TYPES = {
    common_urns.primitives.PAR_DO.urn: beam_runner_api_pb2.ParDoPayload,
    common_urns.composites.COMBINE_PER_KEY.urn: beam_runner_api_pb2.CombinePayload,
    common_urns.composites.COMBINE_GLOBALLY.urn: beam_runner_api_pb2.CombinePayload,
    common_urns.combine_components.COMBINE_PER_KEY_PRECOMBINE.urn: beam_runner_api_pb2.CombinePayload,
    common_urns.combine_components.COMBINE_PER_KEY_MERGE_ACCUMULATORS.urn: beam_runner_api_pb2.CombinePayload,
    common_urns.combine_components.COMBINE_PER_KEY_EXTRACT_OUTPUTS.urn: beam_runner_api_pb2.CombinePayload,
    common_urns.primitives.ASSIGN_WINDOWS.urn: beam_runner_api_pb2.WindowIntoPayload,
}


@pytest.fixture(scope="module")
def dataflow_proto(tmp_path_factory: pytest.TempPathFactory) -> beam_runner_api_pb2.Pipeline:
    """The Dataflow (Runner v2) pipeline proto of the full ingest graph on gs:// paths."""
    out = tmp_path_factory.mktemp("dryrun") / "pipeline.pb"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _TRANSLATE, str(out)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"Dataflow dry-run translation did not finish in {TIMEOUT_S} s (is it trying to reach GCS?)")
    assert proc.returncode == 0, f"dry-run translation failed:\n{proc.stderr[-4000:]}"
    return beam_runner_api_pb2.Pipeline.FromString(out.read_bytes())


def _decoded(data: bytes) -> Iterator[bytes]:
    """``data`` plus what it holds when it is base64 (Beam's pickles) and/or bz2/zlib-compressed."""
    yield data
    layers = [data]
    try:
        if len(data) >= 16:
            layers.append(base64.b64decode(data, validate=True))
            yield layers[-1]
    except (binascii.Error, ValueError):
        pass
    for blob in layers:
        for unpack in (bz2.decompress, zlib.decompress):
            unpacked = None
            with contextlib.suppress(OSError, ValueError, EOFError, zlib.error):
                unpacked = unpack(blob)
            if unpacked is not None:
                yield unpacked


def _blobs(msg: Message) -> Iterator[bytes]:
    """Every string/bytes value in ``msg`` (recursively), with transform payloads parsed and pickles decoded."""
    for field, value in msg.ListFields():
        values = value if field.label == field.LABEL_REPEATED else [value]
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            values = [value[k] for k in value]
            for key in value:
                yield str(key).encode()
        for v in values:
            if isinstance(v, Message):
                yield from _blobs(v)
            elif isinstance(v, str):
                yield v.encode("utf-8")
            elif isinstance(v, bytes):
                yield from _decoded(v)
    if isinstance(msg, beam_runner_api_pb2.FunctionSpec) and msg.urn in _PAYLOAD_TYPES:
        inner = None
        with contextlib.suppress(DecodeError):
            inner = _PAYLOAD_TYPES[msg.urn].FromString(msg.payload)
        if inner is not None:
            yield from _blobs(inner)


def _local_markers() -> list[bytes]:
    marks = {str(REPO), os.path.realpath(REPO), os.path.expanduser("~"), tempfile.gettempdir(), "/tmp/"}
    return sorted({m.encode() for m in marks if m and m not in ("/", "")})


def test_dataflow_translation_holds_every_newsflow_transform(dataflow_proto: beam_runner_api_pb2.Pipeline) -> None:
    transforms = dataflow_proto.components.transforms
    names = {t.unique_name for t in transforms.values()}
    missing = [n for n in NEWSFLOW_TRANSFORMS if n not in names]
    assert not missing, f"transforms missing from the Dataflow graph: {missing}"
    # Each one is a real composite with steps inside, not an empty shell.
    for name in NEWSFLOW_TRANSFORMS:
        inner = [n for n in names if n.startswith(name + "/")]
        assert inner, f"{name} has no sub-transforms in the translated graph"
    # The read and write ends are wired to the gs:// paths given, not to anything local.
    everything = b"\0".join(_blobs(dataflow_proto))
    assert f"{BUCKET}/dumps/2024-07-05/".encode() in everything
    assert f"{BUCKET}/news".encode() in everything


def test_dataflow_graph_has_no_local_paths(dataflow_proto: beam_runner_api_pb2.Pipeline) -> None:
    comps = dataflow_proto.components
    found = []
    for kind, items in (
        ("transform", comps.transforms),
        ("pcollection", comps.pcollections),
        ("coder", comps.coders),
        ("windowing", comps.windowing_strategies),
    ):
        for key, item in items.items():
            blob = b"\0".join(_blobs(item))
            for mark in _local_markers():
                # The source file name of a function pickled by value (a lambda) only labels tracebacks.
                if mark in re.sub(re.escape(mark) + rb"[^\x00-\x20]*?\.py(?![\w/])", b"", blob):
                    found.append(f"{kind} {getattr(item, 'unique_name', key)!s} holds {mark.decode()}")
    assert not found, "local paths baked into the graph:\n" + "\n".join(sorted(set(found))[:20])


def test_dataflow_environment_only_references_staged_artifacts(dataflow_proto: beam_runner_api_pb2.Pipeline) -> None:
    """Local files named by the environment are Beam's staging inputs (uploaded at submit), nothing else."""
    for env_id, env in dataflow_proto.components.environments.items():
        for dep in env.dependencies:
            if dep.type_urn == common_urns.artifact_types.FILE.urn:
                assert dep.role_urn == common_urns.artifact_roles.STAGING_TO.urn, (
                    f"environment {env_id} depends on a local file that is not staged: {dep}"
                )


def test_dofns_unpickle_without_open_files(dataflow_proto: beam_runner_api_pb2.Pipeline) -> None:
    """What Dataflow ships to workers: every DoFn/CombineFn payload loads again and holds no open file."""
    loaded = 0
    for t in dataflow_proto.components.transforms.values():
        payload_type = _PAYLOAD_TYPES.get(t.spec.urn)
        if payload_type not in (beam_runner_api_pb2.ParDoPayload, beam_runner_api_pb2.CombinePayload):
            continue
        payload = payload_type.FromString(t.spec.payload)
        fn = payload.do_fn if payload_type is beam_runner_api_pb2.ParDoPayload else payload.combine_fn
        if not fn.payload or not fn.urn.startswith("beam:") or "python" not in fn.urn:
            continue
        raw = b"".join(_decoded(fn.payload))
        assert b"_file_reconstructor" not in raw, f"{t.unique_name} pickles an open file"
        pickler.loads(fn.payload)
        loaded += 1
    newsflow_steps = [
        t.unique_name
        for t in dataflow_proto.components.transforms.values()
        if t.spec.urn == common_urns.primitives.PAR_DO.urn and t.unique_name.split("/")[0] in NEWSFLOW_TRANSFORMS
    ]
    assert len(newsflow_steps) >= len(NEWSFLOW_TRANSFORMS)
    assert loaded >= len(newsflow_steps)


def test_the_ingest_command_itself_dry_runs_offline() -> None:
    """``python -m pipelines.ingest ... --runner=DataflowRunner --dry_run=True`` translates without GCS access."""
    cmd = [
        sys.executable,
        "-m",
        "pipelines.ingest",
        f"--input={BUCKET}/dumps/2024-07-05/",
        f"--output={BUCKET}/news",
        "--runner=DataflowRunner",
        "--dry_run=True",
        "--project=newsflow-dry-run",
        "--region=us-central1",
        f"--temp_location={BUCKET}/tmp",
        "--quiet",
    ]
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the ingest command's dry run did not finish in {TIMEOUT_S} s (is it trying to reach GCS?)")
    assert proc.returncode == 0, proc.stderr[-3000:]
