"""The ingest command line: newsflow's options, Beam's, and every check made before a run starts.

A user mistake found here is a :class:`UsageError`: one line on stderr and exit status 2,
before any work. ``pipelines.ingest`` uses it; other pipelines can reuse ``parse_args``.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import importlib
import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import (
    DirectOptions,
    GoogleCloudOptions,
    PipelineOptions,
    StandardOptions,
)

import newsflow
from newsflow.config import Config
from newsflow.engines import EngineError, engine_flags
from newsflow.io.dedupe_index import index_patterns
from newsflow.io.read_dump import expand_pattern, plan_sources
from newsflow.io.write_tables import MANIFEST, OUTPUT_MODES, TABLES, join_path, list_table_files

__all__ = [
    "IngestOptions",
    "UsageError",
    "check_run",
    "default_input",
    "default_run_id",
    "failure_lines",
    "parse_args",
    "quiet_runner_errors",
    "split_inputs",
    "with_engine",
]

_LOGGER = logging.getLogger(__name__)


class UsageError(Exception):
    """A bad option or input: reported as one line, exit status 2."""


class IngestOptions(PipelineOptions):
    """newsflow's own options; every standard Beam option works beside them."""

    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        parser.add_argument(
            "--input",
            nargs="+",
            action="extend",
            default=None,
            metavar="PATH",
            help="dump folder (read recursively), glob or file, local or gs://...; several: "
            "--input a b c, repeated --input or comma-separated "
            "(default: the sample dump bundled with newsflow)",
        )
        parser.add_argument("--output", default="./out", help="output folder, local or gs://... (default: ./out)")
        parser.add_argument(
            "--config", default=None, help="YAML settings, e.g. configs/default.yaml (default: the built-in defaults)"
        )
        parser.add_argument(
            "--output_mode",
            default="error",
            help="error: refuse an output that holds tables; overwrite: replace them; "
            "append: add this run's files (named by --run_id) beside earlier runs "
            "(default: error)",
        )
        parser.add_argument(
            "--run_id",
            default=None,
            help="names this run's files in append mode (default: a hash of the matched input "
            "files' paths, sizes and modification times and of the config)",
        )
        parser.add_argument(
            "--dedupe_against",
            nargs="+",
            action="extend",
            default=None,
            metavar="PATH",
            help="earlier output folder(s) or dedupe index whose documents count as published; "
            "must exist, except the run's own --output (default: none)",
        )
        parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
        parser.add_argument(
            "--verbose", action="store_true", help="log at INFO and print the full traceback when the pipeline fails"
        )


def default_input() -> str:
    """The sample dump shipped inside the package."""
    return os.path.join(os.path.dirname(os.path.abspath(newsflow.__file__)), "sample", "dump")


def split_inputs(values: Sequence[str] | None) -> list[str]:
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
            "version; use --direct_running_mode=multi_processing"
        )
    if mode == "multi_processing" and several:
        _LOGGER.warning(
            "--direct_running_mode=multi_processing: this Beam version's local multi-process runner drops elements "
            "of large shuffles (plain Beam shows it: python benchmarks/check_direct_runner.py); one process is exact. "
            "Use it to try the graph locally; produce corpora with one process or on Dataflow (docs/running.md)."
        )
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
                "--output_mode=overwrite to replace them or --output_mode=append to add this run"
            )


def _check_index_settings(against: list[str], cfg: Config, dry_run: bool) -> None:
    """Refuse an earlier index written with other fingerprint settings: it would match wrongly or not at all."""
    if not against or not cfg.dedupe.enabled or dry_run:  # a dry run reads nothing and may have no credentials
        return
    from newsflow.io.dedupe_index import IndexSettingsError, check_index_settings

    try:
        check_index_settings(",".join(against), cfg.dedupe)
    except IndexSettingsError as e:
        raise UsageError(str(e)) from e


# ---------------------------------------------------------------------------- command line
# newsflow's options are parsed by argparse; everything else must be an option some Beam
# options class knows, else the run stops before any work (Beam itself would discard it
# with a log line: an unquoted glob after --input used to lose every file but the first).

_DATAFLOW_RUNNERS = ("DataflowRunner", "TestDataflowRunner")
_DATAFLOW_SETTINGS = ("project", "region", "temp_location")


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` (one line, exit 2) instead of printing usage."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _prog() -> str:
    return "newsflow-ingest" if os.path.basename(sys.argv[0]) == "newsflow-ingest" else "python -m pipelines.ingest"


def _newsflow_parser() -> argparse.ArgumentParser:
    """The parser of newsflow's own options (``--help`` lists them with their defaults)."""
    parser = _ArgumentParser(
        prog=_prog(),
        description="Read news dumps into docs/, duplicates/ and rejects/ Parquet tables (README.md).",
        epilog="Beam pipeline options are accepted too: --runner=DirectRunner|DataflowRunner|PrismRunner|..., "
        "--direct_num_workers, --direct_running_mode, Dataflow options (--project, --region, --temp_location, "
        "--setup_file, ...). An argument neither newsflow nor Beam knows is an error.",
        allow_abbrev=False,
    )
    IngestOptions._add_argparse_args(parser)
    return parser


def _beam_option_classes() -> list[type]:
    """Every Beam options class loaded (subclasses of subclasses too), newsflow's included."""
    found: dict[str, type] = {}
    todo = list(PipelineOptions.__subclasses__())
    while todo:
        cls = todo.pop()
        found.setdefault(f"{cls.__module__}.{cls.__qualname__}", cls)
        todo.extend(cls.__subclasses__())
    return [found[k] for k in sorted(found)]


def _beam_parser() -> argparse.ArgumentParser:
    """A parser of every option the loaded Beam options classes define; errors raise UsageError."""
    from apache_beam.options.pipeline_options import _BeamArgumentParser

    class _Parser(_BeamArgumentParser):
        def error(self, message: str) -> NoReturn:
            raise UsageError(message)

    parser = _Parser(allow_abbrev=False, add_help=False, conflict_handler="resolve")
    for cls in _beam_option_classes():
        if "_add_argparse_args" in cls.__dict__:
            cls._add_argparse_args(parser)
    return parser


def _check_beam_args(args: Sequence[str]) -> None:
    """Refuse any argument no Beam options class knows, naming it (and the option it resembles)."""
    parser = _beam_parser()
    _, unknown = parser.parse_known_args(list(args))
    if not unknown:
        return
    first = unknown[0]
    if first.startswith("-"):
        known = [o for a in [*parser._actions, *_newsflow_parser()._actions] for o in a.option_strings]
        close = difflib.get_close_matches(first.split("=", 1)[0], known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UsageError(f"unknown option {first}{hint}; nothing was run")
    raise UsageError(
        f"unexpected argument {first!r}: put several paths right after one --input (--input a b c), "
        "repeat --input or comma-separate; nothing was run"
    )


def _runner_arg(args: Sequence[str]) -> str | None:
    parser = _ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--runner", default=None)
    return parser.parse_known_args(list(args))[0].runner


def _resolve_runner(name: str | None) -> str:
    """The class name of the runner ``--runner`` names (as Beam resolves it), or UsageError.

    Importing the runner's module also loads the options classes it defines.
    """
    if not name:
        return StandardOptions.DEFAULT_RUNNER
    known = {path.rsplit(".", 1)[-1].lower(): path for path in StandardOptions.ALL_KNOWN_RUNNERS}
    path = known.get(name.lower()) or known.get(name.lower() + "runner") or name
    unknown = UsageError(
        f"unknown runner {name!r} (known: {', '.join(StandardOptions.KNOWN_RUNNER_NAMES)}, "
        "or the full module.Class path of a runner)"
    )
    if "." not in path:
        raise unknown
    module_name, cls_name = path.rsplit(".", 1)
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        if "dataflow" in path.lower():
            raise UsageError(f"--runner={name} needs Beam's gcp extra: pip install 'newsflow[gcp]'") from e
        raise UsageError(f"runner {name!r} cannot be loaded: {e}") from e
    if not hasattr(module, cls_name):
        raise unknown
    return cls_name


def parse_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, PipelineOptions]:
    """newsflow's options and Beam's pipeline options of one command line.

    Raises UsageError for an argument neither knows, an unknown runner or a bad value.
    """
    args = list(argv) if argv is not None else sys.argv[1:]
    ing, rest = _newsflow_parser().parse_known_args(args)
    _resolve_runner(_runner_arg(rest))
    _check_beam_args(rest)
    return ing, PipelineOptions(args)


def with_engine(argv: Sequence[str] | None, opts: PipelineOptions) -> PipelineOptions:
    """``opts`` pointed at the engine newsflow.engines installed, for runners that need one.

    The runner is named as Beam resolves it (``--runner=prism`` is PrismRunner too).
    Raises UsageError when that engine is not installed.
    """
    args = list(argv) if argv is not None else sys.argv[1:]
    try:
        extra = engine_flags(_resolve_runner(opts.view_as(StandardOptions).runner), args)
    except EngineError as e:
        raise UsageError(str(e)) from e
    return PipelineOptions(args + extra) if extra else opts


def _check_runner(opts: PipelineOptions, ing: argparse.Namespace, inputs: list[str]) -> None:
    """Dataflow needs its settings and remote paths; remote paths with no --runner are refused.

    ``$(python deploy/dataflow_flags.py ...)`` that fails expands to nothing: without this
    check the job would run on this machine against gs://.
    """
    name = opts.view_as(StandardOptions).runner
    runner = _resolve_runner(name)
    gco = opts.view_as(GoogleCloudOptions)
    against = split_inputs(ing.dedupe_against)
    if runner in _DATAFLOW_RUNNERS:
        missing = [f"--{k}" for k in _DATAFLOW_SETTINGS if not getattr(gco, k, None)]
        if missing:
            raise UsageError(
                f"--runner={name} needs {', '.join(missing)} (fill them in configs/dataflow.yaml and pass "
                "$(python deploy/dataflow_flags.py configs/dataflow.yaml))"
            )
        for key in ("temp_location", "staging_location"):
            value = getattr(gco, key, None)
            if value and not value.startswith("gs://"):
                raise UsageError(f"--{key} must be a gs:// path on Dataflow, got {value}")
        local = [p for p in [*inputs, ing.output, *against] if _is_local(p)]
        if local:
            raise UsageError(f"{local[0]} is a path on this machine: Dataflow workers cannot reach it (use gs://...)")
        return
    if name is None:
        remote = [p for p in [*inputs, ing.output, *against, gco.temp_location] if p and not _is_local(p)]
        cloud = [k for k in (*_DATAFLOW_SETTINGS, "staging_location", "template_location") if getattr(gco, k, None)]
        if remote and not cloud:
            raise UsageError(
                f"{remote[0]} is remote but no --runner was given: pass --runner=DataflowRunner with its settings "
                "(did $(python deploy/dataflow_flags.py ...) fail?) or --runner=DirectRunner to run on this machine"
            )


def _check_output(out: str) -> None:
    """A local output must be a folder, or creatable, and writable."""
    if not _is_local(out):
        return
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"output {out} is a file, not a folder")
    parent = os.path.abspath(out)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise UsageError(f"output {out} cannot be created: {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"output {out} is not writable ({parent}: permission denied)")


def _same_place(a: str, b: str) -> bool:
    if _is_local(a) and _is_local(b):
        return os.path.abspath(a) == os.path.abspath(b)
    return a.rstrip("/") == b.rstrip("/")


def _check_dedupe_against(against: list[str], output: str, dry_run: bool) -> None:
    """Every --dedupe_against folder must exist: a typo would silently re-admit published articles.

    The run's own output may not exist yet (the first day of a daily job).  A folder that
    exists but holds no index yet is fine (with a warning).
    """
    for folder in against:
        if _same_place(folder, output):
            continue
        if _is_local(folder):
            if not os.path.exists(folder):
                raise UsageError(f"--dedupe_against {folder} not found (an earlier output folder or its index/)")
            if not os.path.isdir(folder):
                raise UsageError(f"--dedupe_against {folder} is a file, not an output or index folder")
        elif dry_run:
            continue  # a dry run may have no credentials: nothing remote is listed
        elif not _remote_folder_exists(folder):
            raise UsageError(f"--dedupe_against {folder} not found (nothing is stored under it)")
        if not _listed(index_patterns(folder)):
            _LOGGER.warning("--dedupe_against %s holds no dedupe index yet: nothing to match against there", folder)


def _listed(patterns: Sequence[str]) -> bool:
    try:
        return any(r.metadata_list for r in FileSystems.match(list(patterns)))
    except Exception as e:  # noqa: BLE001 - any listing failure is the user's to fix
        raise UsageError(f"cannot list {patterns[0]}: {_first_line(str(e))}") from e


def _remote_folder_exists(folder: str) -> bool:
    return _listed([folder.rstrip("/") + "/**"]) or FileSystems.exists(folder)


def _match_inputs(inputs: list[str], dry_run: bool) -> list[tuple[str, str, int, float]] | None:
    """(path, source path, size, mtime) of every input file, found before the run starts.

    An input matching no file (an empty folder, a glob matching nothing) is a usage error.
    None in a dry run, which lists nothing (it may have no credentials).
    """
    if dry_run:
        return None
    roots, matched, meta = [], [], {}
    for pattern in inputs:
        root, glob = expand_pattern(pattern)
        try:
            found = FileSystems.match([glob])[0].metadata_list
        except Exception as e:  # noqa: BLE001 - any listing failure is the user's to fix
            raise UsageError(f"input {pattern} cannot be listed: {_first_line(str(e))}") from e
        if not found:
            folder = glob.endswith("**") and not any(ch in pattern for ch in "*?[")
            raise UsageError(f"input folder {pattern} holds no file" if folder else f"input {pattern} matches no file")
        roots.append(root)
        matched.append([m.path for m in found])
        meta.update({m.path: m for m in found})
    files, _ = plan_sources(inputs, matched, roots)
    return [(_abs(p), rel, meta[p].size_in_bytes, meta[p].last_updated_in_seconds) for p, rel in files]


def _abs(path: str) -> str:
    return os.path.abspath(path) if _is_local(path) else path


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def quiet_runner_errors(record: logging.LogRecord) -> bool:
    """Without --verbose, a runner's own report of a failed step (a traceback) is left to main's two lines."""
    failed_step = record.levelno >= logging.ERROR and "[while running '" in record.getMessage()
    return not (record.name.startswith("apache_beam.runners") and failed_step)


def failure_lines(exc: BaseException) -> list[str]:
    """Two lines for a failed run: what failed (the step when Beam names one) and the root cause."""
    chain = [exc]
    while (nxt := chain[-1].__cause__ or chain[-1].__context__) is not None and nxt not in chain and len(chain) < 20:
        chain.append(nxt)
    step = next((m.group(1) for e in chain if (m := re.search(r"\[while running '([^']+)'\]", str(e)))), None)
    root = chain[-1]
    text = str(root)
    errors = [ln.strip() for ln in text.splitlines() if re.match(r"^\s*[\w.]+(Error|Exception|Exit)\b", ln)]
    cause = errors[-1] if errors else f"{type(root).__name__}: {_first_line(text)}".rstrip(": ")
    cause = re.sub(r"\s*\[while running '[^']+'\]", "", cause)[:500]
    where = f" in step '{step}'" if step else ""
    return [
        f"newsflow: error: the pipeline failed{where} (--verbose prints the full traceback)",
        f"newsflow: cause: {cause}",
    ]


def default_run_id(inputs: list[str], cfg: Config, files: Sequence[tuple[str, str, int, float]] | None = None) -> str:
    """The default run id: a hash of the matched files (path, source path, size, mtime) and the config.

    New contents in the same folder give a new id (append mode then adds a run instead of
    replacing the last one); a rerun on the same files gets the same id and replaces its
    own files.  Without ``files`` (a dry run lists nothing) the input patterns stand in.
    """
    what: dict[str, Any] = {"config": cfg.to_dict()}
    if files is None:
        what["inputs"] = inputs
    else:
        what["files"] = [list(f) for f in files]
    blob = json.dumps(what, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def check_run(
    opts: PipelineOptions, ing: argparse.Namespace, inputs: list[str], cfg: Config, dry_run: bool
) -> list[tuple[str, str, int, float]] | None:
    """Every check made before a run starts; the matched input files (None in a dry run, which lists nothing).

    Raises:
      UsageError: the first mistake found (runner and its settings, output, inputs, --dedupe_against).
    """
    _check_runner(opts, ing, inputs)
    _check_output(ing.output)
    _validate(opts, ing, inputs, dry_run)
    against = split_inputs(ing.dedupe_against)
    _check_dedupe_against(against, ing.output, dry_run)
    _check_index_settings(against, cfg, dry_run)
    return _match_inputs(inputs, dry_run)
