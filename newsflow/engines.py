"""Beam's local engines, prepared once and found by name: Prism, Flink and Spark job servers.

Beam's ``PrismRunner``, ``FlinkRunner`` and ``SparkRunner`` need a program beside the Python
SDK: the Prism binary (a Go command of the Beam Go module) or a job-server jar (a Maven
artifact). Without one, Beam tries to download it at run time. newsflow builds or fetches
them ahead of time with the ordinary clients (``go install``, ``mvn dependency:copy``) into a
cache folder, and ``python -m pipelines.ingest --runner=PrismRunner`` then finds them::

    python -m newsflow.engines install            # prism, flink, spark; reports each
    python -m newsflow.engines install prism      # only Prism (needs Go)
    python -m newsflow.engines status             # what is installed, where

The cache is ``$NEWSFLOW_ENGINES`` or ``~/.cache/newsflow/engines``. Every engine's version
follows the installed apache-beam (the portable protocol is shared within a release), so a
Beam upgrade installs a new copy beside the old one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ENGINES",
    "EngineError",
    "Engine",
    "cache_dir",
    "engine_flags",
    "find",
    "install",
    "main",
]

_GO_PACKAGE = "github.com/apache/beam/sdks/v2/go/cmd/prism"
_FLINK_VERSION = "2.2"  # Beam's default --flink_version
_INSTALL_HINT = "python -m newsflow.engines install {name}"
_JOB_TIMEOUT_S = 7 * 24 * 3600  # a batch job's longest wait for its engine


class EngineError(Exception):
    """An engine is missing or could not be installed: one line for the user."""


@dataclass(frozen=True)
class Engine:
    """One local engine: the runner that uses it and how it is installed."""

    name: str
    runner: str
    client: str  # the program that installs it: go or mvn

    def artifact(self, beam_version: str) -> str:
        """What is installed, as its client names it."""
        if self.name == "prism":
            return f"{_GO_PACKAGE}@v{beam_version}"
        if self.name == "flink":
            return f"org.apache.beam:beam-runners-flink-{_FLINK_VERSION}-job-server:{beam_version}"
        return f"org.apache.beam:beam-runners-spark-3-job-server:{beam_version}"

    def path(self, beam_version: str, root: Path | None = None) -> Path:
        """Where the installed program lives in the cache."""
        base = (root or cache_dir()) / self.name / beam_version
        if self.name == "prism":
            return base / "prism"
        artifact = self.artifact(beam_version).split(":")[1]
        return base / f"{artifact}-{beam_version}.jar"


ENGINES: dict[str, Engine] = {
    "prism": Engine("prism", "PrismRunner", "go"),
    "flink": Engine("flink", "FlinkRunner", "mvn"),
    "spark": Engine("spark", "SparkRunner", "mvn"),
}
_BY_RUNNER = {e.runner: e for e in ENGINES.values()}


def beam_version() -> str:
    """The installed apache-beam release, e.g. ``2.77.0`` (development suffixes dropped)."""
    import apache_beam

    return apache_beam.__version__.split(".dev")[0].split("rc")[0]


def cache_dir() -> Path:
    """``$NEWSFLOW_ENGINES``, else ``~/.cache/newsflow/engines``."""
    env = os.environ.get("NEWSFLOW_ENGINES")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "newsflow" / "engines"


def find(name: str, version: str | None = None, root: Path | None = None) -> Path | None:
    """The installed program of engine ``name``, or None."""
    path = ENGINES[name].path(version or beam_version(), root)
    return path if path.is_file() else None


def _last_error(output: str) -> str:
    """The line of a client's output that says why it failed."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for ln in lines:
        if "Could not find artifact" in ln or "not found" in ln.lower() or "error" in ln.lower():
            return ln.replace("[ERROR] ", "")[:400]
    return (lines[-1] if lines else "no output")[:400]


def _run(cmd: Sequence[str], env: dict[str, str] | None = None) -> None:
    tool = cmd[0]
    if shutil.which(tool) is None:
        raise EngineError(f"{tool} is not on PATH; it is needed to install this engine")
    proc = subprocess.run(list(cmd), env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise EngineError(f"{' '.join(cmd[:2])} failed: {_last_error(proc.stdout + proc.stderr)}")


def _install_prism(engine: Engine, version: str, target: Path) -> None:
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        env = dict(os.environ, GOBIN=tmp, CGO_ENABLED="0")
        _run(["go", "install", engine.artifact(version)], env=env)
        os.replace(os.path.join(tmp, "prism"), target)


def _install_jar(engine: Engine, version: str, target: Path) -> None:
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        _run(
            [
                "mvn",
                "-q",
                "-B",
                "-Dstyle.color=never",
                "dependency:copy",
                f"-Dartifact={engine.artifact(version)}",
                f"-DoutputDirectory={tmp}",
            ]
        )
        os.replace(os.path.join(tmp, target.name), target)


def install(name: str, version: str | None = None, root: Path | None = None, force: bool = False) -> Path:
    """Install engine ``name`` for this Beam version into the cache (reused when present)."""
    engine = ENGINES[name]
    version = version or beam_version()
    target = engine.path(version, root)
    if target.is_file() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    if engine.client == "go":
        _install_prism(engine, version, target)
    else:
        _install_jar(engine, version, target)
    return target


def _given(argv: Sequence[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in argv)


def engine_flags(runner: str | None, argv: Sequence[str]) -> list[str]:
    """Flags that point ``runner`` at the installed engine, unless the user gave them.

    Raises:
      EngineError: the runner needs an engine that is not installed.
    """
    engine = _BY_RUNNER.get((runner or "").split(".")[-1])
    if engine is None:
        return []
    flag = {"prism": "--prism_location", "flink": "--flink_job_server_jar", "spark": "--spark_job_server_jar"}[
        engine.name
    ]
    if engine.name == "flink" and (_given(argv, "--job_endpoint") or _given(argv, "--flink_submit_uber_jar")):
        return []
    if engine.name == "spark" and (_given(argv, "--job_endpoint") or _given(argv, "--spark_submit_uber_jar")):
        return []
    extra: list[str] = []
    if not _given(argv, flag):
        path = find(engine.name)
        if path is None:
            raise EngineError(
                f"--runner={engine.runner} needs {engine.name} for apache-beam {beam_version()}, which is not "
                f"installed in {cache_dir()}; run: {_INSTALL_HINT.format(name=engine.name)} (or pass {flag})"
            )
        extra.append(f"{flag}={path}")
    if not _given(argv, "--job_server_timeout"):
        # Beam puts this deadline on the job's state and message streams too, so a job that
        # runs longer than it (300 s by default) fails with DEADLINE_EXCEEDED while it works.
        extra.append(f"--job_server_timeout={_JOB_TIMEOUT_S}")
    if engine.name == "prism":
        # Beam keeps one Prism job server per process, made with the options of the first
        # pipeline that asked (a DirectRunner's failed attempt, say): one server per run
        # makes every run use the binary it was given.
        extra.append("--experiments=disable_prism_server_singleton")
        if not _given(argv, "--prism_log_level"):
            extra.append("--prism_log_level=warn")  # Prism's own job-state chatter; its warnings and errors show
    if engine.name == "flink" and not _given(argv, "--flink_master"):
        extra.append("--flink_master=[local]")
    if engine.name == "spark" and not _given(argv, "--spark_master_url"):
        extra.append("--spark_master_url=local[2]")
    return extra


def main(argv: Sequence[str] | None = None) -> int:
    """``install [NAME ...]`` or ``status``; exit status 1 when an asked-for engine cannot be had."""
    parser = argparse.ArgumentParser(prog="python -m newsflow.engines", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    inst = sub.add_parser("install", help="build or fetch engines into the cache (default: all)")
    inst.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(ENGINES)}")
    inst.add_argument("--force", action="store_true", help="install again even when present")
    sub.add_parser("status", help="print where each engine is installed, or that it is not")
    args = parser.parse_args(argv)
    version = beam_version()
    if args.command == "status":
        for name in ENGINES:
            path = find(name, version)
            print(f"{name:6} {path if path else 'not installed (' + _INSTALL_HINT.format(name=name) + ')'}")
        return 0
    unknown = [n for n in args.names if n not in ENGINES]
    if unknown:
        parser.error(f"unknown engine {unknown[0]!r}; choose from {', '.join(ENGINES)}")
    failed = 0
    for name in args.names or list(ENGINES):
        if not args.force and (path := find(name, version)) is not None:
            print(f"{name:6} {path}")
            continue
        print(
            f"newsflow: installing {name} for apache-beam {version} ({ENGINES[name].artifact(version)}) ...",
            file=sys.stderr,
            flush=True,
        )
        try:
            path = install(name, version, force=args.force)
        except EngineError as e:
            failed += 1
            print(f"newsflow: {name}: not installed: {e}", file=sys.stderr)
            continue
        print(f"{name:6} {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
