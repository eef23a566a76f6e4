"""The ingest pipeline: dump files in, ``docs/``, ``duplicates/``, ``rejects/`` Parquet out.

Run it locally on the bundled sample::

    python -m pipelines.ingest --runner=DirectRunner

or on your data and on Dataflow::

    python -m pipelines.ingest --input gs://bucket/dumps/2024-07-05/ --output gs://bucket/news \
        --config configs/default.yaml --runner=DataflowRunner --project=... --region=... \
        --temp_location=gs://bucket/tmp --setup_file=./setup.py

This module is wiring only: options, validation, ``build_pipeline`` and a summary.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions, TestOptions

import newsflow
from newsflow.config import Config, ConfigError, load_config
from newsflow.engines import EngineError, engine_flags
from newsflow.io.read_dump import ReadDump
from newsflow.io.write_tables import MANIFEST, OUTPUT_MODES, TABLES, WriteTables, join_path, list_table_files
from newsflow.progress import Progress
from newsflow.report import format_summary, load_manifest
from newsflow.transforms.split_header import SplitHeader

__all__ = ["IngestOptions", "build_pipeline", "default_input", "main", "run"]

_LOGGER = logging.getLogger(__name__)


class UsageError(Exception):
    """A bad option or input: reported as one line, exit status 2."""


class IngestOptions(PipelineOptions):
    """newsflow's own options; every standard Beam option works beside them."""

    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        parser.add_argument("--input", action="append", default=None,
                            help="dump folder, glob or file (local or gs://...); repeat or comma-separate for "
                                 "several; default: the sample dump bundled with newsflow")
        parser.add_argument("--output", default="./out", help="output folder (local or gs://...); default ./out")
        parser.add_argument("--config", default=None, help="YAML settings, e.g. configs/default.yaml")
        parser.add_argument("--output_mode", default="error",
                            help="error: refuse a non-empty output (default); overwrite: replace it; "
                                 "append: add this run's files (named by --run_id) beside earlier runs")
        parser.add_argument("--run_id", default=None,
                            help="names this run's files in append mode (default: a hash of inputs and config)")
        parser.add_argument("--dedupe_against", action="append", default=None,
                            help="earlier output folder(s) or dedupe index whose documents count as published")
        parser.add_argument("--quiet", action="store_true", help="print nothing but errors")


def default_input() -> str:
    """The sample dump shipped inside the package."""
    return os.path.join(os.path.dirname(os.path.abspath(newsflow.__file__)), "sample", "dump")


def _split_inputs(values: Sequence[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


def _is_local(path: str) -> bool:
    return "://" not in path


def _validate(opts: PipelineOptions, ing: IngestOptions, inputs: list[str], dry_run: bool = False) -> None:
    if ing.output_mode not in OUTPUT_MODES:
        raise UsageError(f"--output_mode must be one of {', '.join(OUTPUT_MODES)}, got {ing.output_mode!r}")
    direct = opts.view_as(DirectOptions)
    mode = (direct.direct_running_mode or "in_memory").lower()
    several = (direct.direct_num_workers or 1) != 1
    if mode == "multi_threading" and several:
        raise UsageError(
            "--direct_running_mode=multi_threading with more than one worker loses elements in this Beam "
            "version; use --direct_running_mode=multi_processing")
    if mode == "multi_processing" and several:
        _LOGGER.warning(
            "--direct_running_mode=multi_processing: this Beam version's local multi-process runner drops elements "
            "of large shuffles (plain Beam shows it: python benchmarks/check_direct_runner.py); one process is exact. "
            "Use it to try the graph locally; produce corpora with one process or on Dataflow (docs/running.md).")
    for path in inputs:
        if _is_local(path) and not any(ch in path for ch in "*?[") and not os.path.exists(path):
            raise UsageError(f"input not found: {path}")
    out = ing.output
    if _is_local(out):
        out_abs = os.path.abspath(out)
        for path in inputs:
            if _is_local(path):
                base = os.path.abspath(path.split("*")[0].rstrip("/")) or "/"
                if os.path.isdir(base) and (out_abs == base or out_abs.startswith(base.rstrip("/") + "/")):
                    raise UsageError(f"output {out} is inside input {path}; inputs are never written to")
    if ing.output_mode == "error" and not dry_run:  # a dry run writes nothing and may have no credentials
        existing = [t for t in TABLES if list_table_files(out, t)]
        if existing or FileSystems.exists(join_path(out, MANIFEST)):
            raise UsageError(
                f"output {out} already holds tables ({', '.join(existing) or MANIFEST}); pass "
                "--output_mode=overwrite to replace them or --output_mode=append to add this run")


def _check_dedupe_against(against: list[str], cfg: Config, dry_run: bool) -> None:
    """Refuse an earlier index written with other fingerprint settings: it would match wrongly or not at all."""
    if not against or not cfg.dedupe.enabled or dry_run:  # a dry run reads nothing and may have no credentials
        return
    from newsflow.io.dedupe_index import IndexSettingsError, check_index_settings

    try:
        check_index_settings(",".join(against), cfg.dedupe)
    except IndexSettingsError as e:
        raise UsageError(str(e)) from e


def _run_id(inputs: list[str], cfg: Config) -> str:
    blob = json.dumps({"inputs": inputs, "config": cfg.to_dict()}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def _versions() -> dict[str, str]:
    import pyarrow

    return {"newsflow": newsflow.__version__, "apache_beam": beam.__version__, "pyarrow": pyarrow.__version__,
            "python": sys.version.split()[0]}


def build_pipeline(
    p: beam.Pipeline,
    inputs: Sequence[str],
    output: str,
    cfg: Config,
    *,
    output_mode: str = "error",
    run_id: str = "run",
    dedupe_against: Sequence[str] | None = None,
    run_info: dict[str, Any] | None = None,
    progress_interval: float | None = None,
) -> beam.PCollection:
    """Add the ingest graph to ``p``; returns the manifest PCollection (one dict)."""
    read = p | "ReadDump" >> ReadDump(list(inputs), cfg.read, progress_interval=progress_interval)
    parsed = read.docs | "SplitHeader" >> SplitHeader(cfg.parse)
    docs = parsed.docs | "ProgressParsed" >> Progress("parsed", progress_interval)
    if cfg.lang.enabled:
        from newsflow.transforms.detect_lang import DetectLang

        docs = docs | "DetectLang" >> DetectLang(cfg.lang) | "ProgressLang" >> Progress("language", progress_interval)
    if cfg.hashtags.enabled:
        from newsflow.transforms.normalize_hashtags import NormalizeHashtags

        docs = docs | "NormalizeHashtags" >> NormalizeHashtags(cfg.hashtags)
    tables: dict[str, beam.PCollection] = {}
    extra = {}
    warnings = None
    if cfg.dedupe.enabled:
        from newsflow.transforms.dedupe import Dedupe

        against = ",".join(dedupe_against) if dedupe_against else None
        deduped = docs | "Dedupe" >> Dedupe(cfg.dedupe, against=against)
        tables["docs"] = deduped.kept | "ProgressKept" >> Progress("dedupe kept", progress_interval)
        tables["duplicates"] = deduped.duplicates | "ProgressDups" >> Progress("dedupe duplicates", progress_interval)
        warnings = deduped.warnings
        if getattr(cfg.dedupe, "write_index", False):
            from newsflow.io.dedupe_index import index_schema
            from newsflow.io.tables import register_table

            extra["index"] = register_table("index", index_schema(cfg.dedupe))
            tables["index"] = deduped.index
    else:
        tables["docs"] = docs
        tables["duplicates"] = p | "NoDuplicates" >> beam.Create([])
    tables["rejects"] = (read.rejects, parsed.rejects) | "AllRejects" >> beam.Flatten()
    return tables | "WriteTables" >> WriteTables(
        output, cfg.output, read_count=read.counts, mode=output_mode, run_id=run_id,
        run_info=run_info, extra_tables=extra, progress_interval=progress_interval,
        warnings=warnings)


def _print_summary(manifest: dict[str, Any]) -> None:
    print(format_summary(manifest), file=sys.stdout)


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse options, validate, run the pipeline and return the manifest."""
    argv = list(argv) if argv is not None else sys.argv[1:]
    opts = PipelineOptions(argv)
    try:  # PrismRunner, FlinkRunner, SparkRunner: the engine newsflow.engines installed
        extra = engine_flags(opts.view_as(StandardOptions).runner, argv)
    except EngineError as e:
        raise UsageError(str(e)) from e
    if extra:
        opts = PipelineOptions(argv + extra)
    ing = opts.view_as(IngestOptions)
    inputs = _split_inputs(ing.input) or [default_input()]
    try:
        cfg = load_config(ing.config)
    except ConfigError as e:
        raise UsageError(str(e)) from e
    dry_run = bool(opts.view_as(TestOptions).dry_run)
    _validate(opts, ing, inputs, dry_run)
    _check_dedupe_against(_split_inputs(ing.dedupe_against), cfg, dry_run)
    run_id = ing.run_id or _run_id(inputs, cfg)
    started = time.time()
    run_info = {
        "run_id": run_id,
        "inputs": inputs,
        "dedupe_against": ing.dedupe_against or [],
        "config": cfg.to_dict(),
        "runner": opts.view_as(StandardOptions).runner or "DirectRunner",
        "versions": _versions(),
        "started_at_unix": started,
    }
    # append mode names its files by the run id; other modes only need a unique temporary folder
    write_id = run_id if ing.output_mode == "append" else f"{run_id}-{uuid.uuid4().hex[:8]}"
    with beam.Pipeline(options=opts) as p:
        build_pipeline(p, inputs, ing.output, cfg, output_mode=ing.output_mode, run_id=write_id,
                       dedupe_against=_split_inputs(ing.dedupe_against), run_info=run_info,
                       progress_interval=None if ing.quiet else 5.0)
    if dry_run:  # the graph was translated, nothing ran
        return {"run_id": run_id, "dry_run": True}
    manifest = load_manifest(ing.output)  # raises when the run "succeeded" without writing one
    _verify_output(ing.output, manifest)
    if not ing.quiet:
        _print_summary(manifest)
    return manifest


def _verify_output(output: str, manifest: dict[str, Any]) -> None:
    """Check, after the runner said DONE, that the files the manifest lists are there with their rows."""
    import pyarrow.parquet as pq

    listed = {f["path"]: f["rows"] for f in manifest.get("files", [])}
    for rel, rows in listed.items():
        path = join_path(output, rel)
        if not FileSystems.exists(path):
            raise RuntimeError(f"output file missing after the run: {path}")
        with FileSystems.open(path) as fh:
            got = pq.ParquetFile(fh).metadata.num_rows
        if got != rows:
            raise RuntimeError(f"output file {path} holds {got} rows, the run wrote {rows}")


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: one clear line for bad usage, non-zero on failure."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        run(argv)
    except UsageError as e:
        print(f"newsflow: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
