"""The ingest pipeline: dump files in, ``docs/``, ``duplicates/``, ``rejects/`` Parquet out.

Run it locally on the bundled sample::

    python -m pipelines.ingest --runner=DirectRunner

or on your data and on Dataflow::

    python -m pipelines.ingest --input gs://bucket/dumps/2024-07-05/ --output gs://bucket/news \
        --config configs/default.yaml --runner=DataflowRunner --project=... --region=... \
        --temp_location=gs://bucket/tmp --setup_file=./setup.py

This module is wiring only: ``build_pipeline``, ``run`` and the summary; the command line and
the checks made before a run are in ``pipelines.cli``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import traceback
import uuid
from collections.abc import Sequence
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import StandardOptions, TestOptions

import newsflow
from newsflow.config import Config, ConfigError, load_config
from newsflow.io.read_dump import ReadDump
from newsflow.io.write_tables import WriteTables, join_path
from newsflow.progress import Progress
from newsflow.report import format_summary, load_manifest
from newsflow.transforms.split_header import SplitHeader
from pipelines.cli import (
    IngestOptions,
    UsageError,
    check_run,
    default_input,
    default_run_id,
    failure_lines,
    parse_args,
    quiet_runner_errors,
    split_inputs,
    with_engine,
)

__all__ = ["IngestOptions", "build_pipeline", "default_input", "main", "parse_args", "run"]

_LOGGER = logging.getLogger(__name__)


def _versions() -> dict[str, str]:
    import pyarrow

    return {
        "newsflow": newsflow.__version__,
        "apache_beam": beam.__version__,
        "pyarrow": pyarrow.__version__,
        "python": sys.version.split()[0],
    }


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
        output,
        cfg.output,
        read_count=read.counts,
        mode=output_mode,
        run_id=run_id,
        run_info=run_info,
        extra_tables=extra,
        progress_interval=progress_interval,
        warnings=warnings,
    )


def _print_run_id(run_id: str, ing: argparse.Namespace, files: Sequence[Any] | None) -> None:
    if ing.run_id:
        why = "given by --run_id"
    elif files is None:
        why = "hash of the input patterns and config"
    else:
        why = f"hash of the {len(files)} input files' paths, sizes and modification times and the config"
    named = "; this run's files are named by it" if ing.output_mode == "append" else ""
    print(f"newsflow: run id {run_id} ({why}){named}", file=sys.stderr)


def _print_summary(manifest: dict[str, Any]) -> None:
    print(format_summary(manifest), file=sys.stdout)


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse options, validate, run the pipeline and return the manifest."""
    ing, opts = parse_args(argv)
    opts = with_engine(argv, opts)  # PrismRunner, FlinkRunner, SparkRunner: the installed engine
    inputs = split_inputs(ing.input) or [default_input()]
    try:
        cfg = load_config(ing.config)
    except ConfigError as e:
        raise UsageError(str(e)) from e
    dry_run = bool(opts.view_as(TestOptions).dry_run)
    files = check_run(opts, ing, inputs, cfg, dry_run)
    run_id = ing.run_id or default_run_id(inputs, cfg, files)
    if not ing.quiet:
        _print_run_id(run_id, ing, files)
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
        build_pipeline(
            p,
            inputs,
            ing.output,
            cfg,
            output_mode=ing.output_mode,
            run_id=write_id,
            dedupe_against=split_inputs(ing.dedupe_against),
            run_info=run_info,
            progress_interval=None if ing.quiet else 5.0,
        )
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
    """Console entry point: one line for bad usage (2), Ctrl-C (130) or a failed run (1, plus its cause)."""
    args = list(argv) if argv is not None else sys.argv[1:]
    verbose = "--verbose" in args
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    for handler in logging.getLogger().handlers:
        (handler.removeFilter if verbose else handler.addFilter)(quiet_runner_errors)
    if not verbose:  # an engine's start/stop lines and progress chatter; its errors still show
        logging.getLogger("apache_beam.utils.subprocess_server").setLevel(logging.ERROR)
    try:
        run(args)
    except UsageError as e:
        print(f"newsflow: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("newsflow: interrupted", file=sys.stderr)
        return 130
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    except Exception as e:  # noqa: BLE001 - a failed run: its cause on one line, the traceback on request
        _LOGGER.debug("the pipeline failed", exc_info=True)
        for line in failure_lines(e):
            print(line, file=sys.stderr)
        if verbose:
            traceback.print_exception(e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
