"""WriteTables: write the output tables as Parquet, finalize atomically, verify, write the manifest.

::

    tables = {"docs": kept, "duplicates": dups, "rejects": rejects}
    manifest = tables | WriteTables("out/", OutputConfig(), read_count=read_count,
                                    run_info={"inputs": [...]})

How it works, and why not ``fileio.WriteToFiles``: every row gets a Hive partition
folder and a deterministic shard (``crc32(row key) % shards``, with shards sized from
a per-partition count), each shard is written as one Parquet file (rows sorted by
their key, written in row groups) into a hidden temporary folder, and one finalize
step then checks every table's row count against the counts of its input, renames the
files into place (creating folders first, which ``WriteToFiles`` does not), re-reads
each file's footer to check that the rows arrived, and writes ``_manifest.json``.
One combine counts every table (rows, rows per partition, the manifest's breakdowns)
and the documents read, so the writer adds few steps to the graph; rows travel to the
shard files as (sort key, values in file-schema order) tuples, not dicts.
File names are deterministic, so a rerun replaces its own files instead of adding a
second copy.  Files are renamed only after everything is written: a run killed
before that leaves the output as it was; readers skip the hidden temporary folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import math
import os
import posixpath
import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.utils.windowed_value import WindowedValue

from newsflow.config import OutputConfig
from newsflow.io.tables import TABLES, TableSpec, lang_partition, shard_of
from newsflow.memory import start_releasing
from newsflow.metrics import counter
from newsflow.progress import StageProgress, acquire_progress, release_progress, run_token
from newsflow.schema import rows_to_table

__all__ = [
    "OUTPUT_MODES",
    "OutputVerificationError",
    "TmpFolder",
    "WriteTables",
    "join_path",
    "list_table_files",
    "list_tmp_folders",
    "manifest_warnings",
    "remove_stale_tmp",
    "stale_reason",
]

_LOGGER = logging.getLogger(__name__)
OUTPUT_MODES = ("error", "overwrite", "append")
TMP_PREFIX = ".newsflow-tmp-"
TMP_SUFFIX = ".tmp"
WRITER_MARK = "_writer-"  # _writer-<host>-<pid>.json in a temporary folder: who is writing it
MANIFEST = "_manifest.json"


class OutputVerificationError(RuntimeError):
    """The files written do not hold the rows the pipeline counted."""


def join_path(base: str, *parts: str) -> str:
    """Join path parts for local paths and URIs alike."""
    base = base.rstrip("/")
    rest = "/".join(p.strip("/") for p in parts if p)
    return f"{base}/{rest}" if rest else base


def _ensure_parent(path: str) -> None:
    parent = posixpath.dirname(path) if "://" in path else os.path.dirname(path)
    if not parent:
        return
    if "://" not in parent:
        os.makedirs(parent, exist_ok=True)
        return
    with contextlib.suppress(OSError):  # exists already, or the filesystem has no folders (gs://)
        FileSystems.mkdirs(parent)


def list_table_files(output: str, table: str) -> list[str]:
    """Data files of one table (hidden and ``_`` files excluded), sorted."""
    base = join_path(output, table)
    try:
        found = FileSystems.match([base + "/**"])[0].metadata_list
    except Exception:  # noqa: BLE001 - no folder yet means no files
        return []
    out = []
    for m in found:
        rel = m.path[len(base) :].lstrip("/")
        if any(part.startswith((".", "_")) for part in rel.split("/")):
            continue
        if rel.endswith(".parquet"):
            out.append(m.path)
    return sorted(out)


def _file_rows(path: str) -> int:
    with FileSystems.open(path) as fh:
        return pq.ParquetFile(fh).metadata.num_rows


# ----------------------------------------------------------------------------- temporary folders


@dataclasses.dataclass(frozen=True)
class TmpFolder:
    """A run's temporary folder as listed: its files (path, bytes, mtime; 0 = unknown) and its writers."""

    path: str
    files: tuple[tuple[str, int, float], ...] = ()
    writers: tuple[tuple[str, int], ...] = ()  # (host, pid) of each process that wrote into it

    @property
    def newest(self) -> float:
        return max((f[2] for f in self.files), default=0.0)

    @property
    def size(self) -> int:
        return sum(f[1] for f in self.files)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"


def _writer_name(host: str, pid: int) -> str:
    return f"{WRITER_MARK}{host}-{pid}.json"


def _parse_writer(name: str) -> tuple[str, int] | None:
    if not (name.startswith(WRITER_MARK) and name.endswith(".json")):
        return None
    host, _, pid = name[len(WRITER_MARK) : -len(".json")].rpartition("-")
    return (host, int(pid)) if host and pid.isdigit() else None


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (a process we may not signal counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def stale_reason(
    folder: TmpFolder, now: float, max_age_s: float, host: str, alive: Callable[[int], bool] = pid_alive
) -> str | None:
    """Why ``folder`` is left over from a run that no longer writes, or None while a run may still use it.

    Stale when its newest file is older than ``max_age_s``, or when every process that wrote
    into it ran on this machine and none of them runs any more (a run killed here is cleaned
    up at once).  A folder written by another machine less than ``max_age_s`` ago is kept.
    """
    newest = folder.newest
    if newest and now - newest >= max_age_s:
        return f"last written {(now - newest) / 3600:.1f} h ago"
    here = folder.writers and all(h == host for h, _ in folder.writers)
    if here and not any(alive(pid) for _, pid in folder.writers):
        pids = ", ".join(str(p) for _, p in folder.writers)
        return f"its writer process(es) {pids} on this machine have exited"
    return None


def list_tmp_folders(output: str, only: str | None = None) -> list[TmpFolder]:
    """The ``.newsflow-tmp-*`` folders of ``output`` (any Beam filesystem; ``only``: that one), sorted by path.

    A local output is listed folder by folder (matching ``output/.newsflow-tmp-*/**`` would
    walk every table file); an object store lists the ``.newsflow-tmp-`` prefix only.
    """
    base = output.rstrip("/")
    local = "://" not in base
    if only is not None:
        patterns = [f"{only.rstrip('/')}/**"]
    elif local:
        names = os.listdir(base) if os.path.isdir(base) else []
        patterns = [f"{join_path(base, n)}/**" for n in sorted(names) if n.startswith(TMP_PREFIX)]
    else:
        patterns = [f"{base}/{TMP_PREFIX}*/**"]
    files: dict[str, list[tuple[str, int, float]]] = {}
    if local:  # local folders left empty have no file to list
        for pattern in patterns:
            files[posixpath.basename(pattern[: -len("/**")])] = []
    for pattern in patterns:
        try:
            found = FileSystems.match([pattern])[0].metadata_list
        except Exception:  # noqa: BLE001 - gone meanwhile, or no output yet
            found = []
        for m in found:
            rel = m.path[len(base) :].lstrip("/")
            top = rel.split("/", 1)[0]
            if top.startswith(TMP_PREFIX) and "/" in rel:
                files.setdefault(top, []).append((m.path, int(m.size_in_bytes), float(m.last_updated_in_seconds or 0)))
    out = []
    for top, entries in sorted(files.items()):
        writers = tuple(w for w in (_parse_writer(posixpath.basename(p)) for p, _, _ in entries) if w)
        path = join_path(base, top)
        if not entries and local:  # an empty local folder: its own mtime says when it was used
            if not os.path.isdir(path):
                continue
            with contextlib.suppress(OSError):
                entries = [(path, 0, os.path.getmtime(path))]
        out.append(TmpFolder(path, tuple(sorted(entries)), writers))
    return out


def _remove_folder(folder: TmpFolder) -> None:
    paths = [p for p, _, _ in folder.files if p != folder.path]
    for start in range(0, len(paths), 1000):
        FileSystems.delete(paths[start : start + 1000])
    if "://" not in folder.path:  # object stores have no folder left once its files are gone
        with contextlib.suppress(OSError):
            import shutil

            shutil.rmtree(folder.path)


def remove_stale_tmp(
    output: str, keep: str, max_age_s: float, now: float | None = None, alive: Callable[[int], bool] = pid_alive
) -> list[str]:
    """Remove the temporary folders earlier runs left in ``output`` (except ``keep``); returns their paths.

    Each removal and each folder kept because a run may still use it is logged.
    """
    now = time.time() if now is None else now
    host = _host()
    removed = []
    for folder in list_tmp_folders(output):
        if folder.path.rstrip("/") == keep.rstrip("/"):
            continue
        reason = stale_reason(folder, now, max_age_s, host, alive)
        if reason is None:
            _LOGGER.warning(
                "kept temporary folder %s (%d files, %.1f MB): a run may still be writing it; "
                "it is removed once %.0f h old",
                folder.path,
                len(folder.files),
                folder.size / 1e6,
                max_age_s / 3600,
            )
            continue
        try:
            _remove_folder(folder)
        except Exception as e:  # noqa: BLE001 - cleanup never fails the run; say so
            _LOGGER.warning("could not remove stale temporary folder %s: %s", folder.path, e)
            continue
        removed.append(folder.path)
        counter("stale_tmp_folders_removed").inc()
        _LOGGER.warning(
            "removed stale temporary folder %s (%d files, %.1f MB; %s)",
            folder.path,
            len(folder.files),
            folder.size / 1e6,
            reason,
        )
    return removed


class _CleanStaleTmpFn(beam.DoFn):
    """Removes earlier runs' stale temporary folders once per run (see :func:`stale_reason`)."""

    def __init__(self, output: str, keep: str, max_age_s: float):
        self._output = output
        self._keep = keep
        self._max_age_s = max_age_s

    def process(self, _start: Any) -> Iterator[str]:
        yield from remove_stale_tmp(self._output, self._keep, self._max_age_s)


_MARKED: set[str] = set()  # temporary folders this process has put its writer mark in


def _mark_writer(tmp: str) -> None:
    """Leave ``_writer-<host>-<pid>.json`` in ``tmp`` once per process, so a later run can tell if it is alive."""
    if tmp in _MARKED:
        return
    path = join_path(tmp, _writer_name(_host(), os.getpid()))
    with FileSystems.create(path) as fh:
        fh.write(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "at": time.time()}).encode())
    _MARKED.add(tmp)


# ----------------------------------------------------------------------------- DoFns

_STATS_TAG = "stats"
_DOC_TABLES = ("docs", "duplicates", "rejects")  # every document read ends in one of these


def _label(table: str, row: dict[str, Any]) -> str | None:
    """The manifest breakdown a row counts under: docs by language, rejects by reason, duplicates by method."""
    if table == "docs":
        return lang_partition(row.get("lang"))
    if table == "rejects":
        return row.get("reason")
    if table == "duplicates":
        return row.get("method")
    return None


class _PartitionFn(beam.DoFn):
    """Row -> (partition folder, (sort key, file values)); the bundle's row counts to the ``stats`` output.

    Only what the file holds travels on: the values in file-schema order (no dict keys, no
    partition columns), with the row key they are sorted and sharded by. The counts (rows and
    estimated bytes per partition, the manifest's breakdown) are a :class:`_RunStats` accumulator
    per bundle and window, sent at the bundle's end: one element per bundle, not one per row.
    """

    def __init__(self, spec: TableSpec):
        self._spec = spec
        self._names = tuple(spec.file_schema.names)

    def start_bundle(self) -> None:
        self._stats: dict[Any, dict[str, Any]] = {}

    def process(self, row: dict[str, Any], window: Any = beam.DoFn.WindowParam) -> Iterator[Any]:
        spec = self._spec
        part = spec.partition_dir(row)
        get = row.get
        values = tuple([get(n) for n in self._names])
        acc = self._stats.get(window)
        if acc is None:
            acc = self._stats[window] = _RunStats().create_accumulator()
        _count_row(acc, spec.name, part, _label(spec.name, row), row_bytes(values))
        yield part, (spec.row_key(row), values)

    def finish_bundle(self) -> Iterator[WindowedValue]:
        for window, acc in self._stats.items():
            yield beam.pvalue.TaggedOutput(_STATS_TAG, WindowedValue(acc, window.max_timestamp(), (window,)))
        self._stats = {}


def row_bytes(values: Iterable[Any]) -> int:
    """A cheap estimate of a row's uncompressed Parquet size: string and binary lengths, 8 bytes per other value."""
    n = 0
    for v in values:
        if isinstance(v, str | bytes):
            n += len(v) + 4
        elif isinstance(v, list | tuple):
            n += 8 + sum(len(x) + 4 if isinstance(x, str | bytes) else 8 for x in v)
        else:
            n += 8
    return n


def shard_count(rows: int, nbytes: int, cfg: OutputConfig) -> int:
    """Files for a partition: as few as keep each under ``max_rows_per_file`` rows and ``max_file_mb`` (estimated)."""
    return max(1, math.ceil(rows / cfg.max_rows_per_file), math.ceil(nbytes / (cfg.max_file_mb * 1e6)))


def row_group_size(rows: int, nbytes: int, cfg: OutputConfig) -> int:
    """Rows per row group: at most ``row_group_rows`` and about ``row_group_mb`` (estimated, uncompressed)."""
    avg = nbytes / rows if rows else 1.0
    return max(1, min(cfg.row_group_rows, int(cfg.row_group_mb * 1e6 / max(avg, 1.0))))


def _assign_shard(
    item: tuple[str, tuple[str, tuple[Any, ...]]], table: str, cfg: OutputConfig, stats: dict[str, Any]
) -> tuple[tuple[str, int, int, int], tuple[str, tuple[Any, ...]]]:
    """Key a row by (partition, shard, shards, rows per row group), all derived from the partition's totals."""
    part, keyed = item
    rows, nbytes = stats["tables"].get(table, {}).get("parts", {}).get(part, (1, 1))
    shards = shard_count(rows, nbytes, cfg)
    return (part, shard_of(keyed[0], shards), shards, row_group_size(rows, nbytes, cfg)), keyed


def _tmp_name(rel: str) -> str:
    """A flat name in the temporary folder (one folder to create and remove, whatever the partitions).

    The ``.tmp`` suffix keeps partial files out of readers' ``out/**/*.parquet`` globs
    (DuckDB, Spark and ``glob`` do not skip hidden folders).
    """
    return rel.replace("/", "+") + TMP_SUFFIX


class _WriteShardFn(beam.DoFn):
    """Writes one (partition, shard) group as a Parquet file in the run's temporary folder."""

    def __init__(self, spec: TableSpec, tmp: str, tag: str, cfg: OutputConfig, progress: tuple[str, float] | None):
        self._spec = spec
        self._tmp = tmp
        self._tag = tag
        self._cfg = cfg
        self._progress_args = progress if spec.name in _DOC_TABLES else None
        self._progress: StageProgress | None = None

    def setup(self) -> None:
        start_releasing()
        if self._progress_args:
            self._progress = acquire_progress(self._progress_args[0], "written", self._progress_args[1])

    def finish_bundle(self) -> None:
        if self._progress is not None:
            self._progress.flush()

    def teardown(self) -> None:
        if self._progress is not None:
            self._progress = None
            release_progress(self._progress_args[0], "written")

    def process(
        self, item: tuple[tuple[str, int, int, int], Iterable[tuple[str, tuple[Any, ...]]]]
    ) -> Iterator[dict[str, Any]]:
        (part, shard, shards, step), keyed = item
        _mark_writer(self._tmp)
        names = self._spec.file_schema.names
        rows = [dict(zip(names, values, strict=True)) for _, values in sorted(keyed, key=_sort_key)]
        name = f"part-{self._tag}{shard:05d}-of-{shards:05d}.parquet"
        rel = "/".join(x for x in (self._spec.name, part, name) if x)
        tmp_path = join_path(self._tmp, _tmp_name(rel))
        schema = self._spec.file_schema
        with FileSystems.create(tmp_path) as fh, pq.ParquetWriter(fh, schema, **_writer_options(self._cfg)) as writer:
            for start in range(0, len(rows), step):
                writer.write_table(rows_to_table(rows[start : start + step], schema))
        if self._progress is not None:
            self._progress.add(len(rows))
        yield {"table": self._spec.name, "rel": rel, "tmp": tmp_path, "rows": len(rows)}


def _writer_options(cfg: OutputConfig) -> dict[str, Any]:
    """ParquetWriter options: the codec and its level, statistics for readers' row-group skipping."""
    opts: dict[str, Any] = {
        "compression": None if cfg.compression == "none" else cfg.compression,
        "write_statistics": True,
    }
    level = cfg.compression_level if cfg.compression_level is not None else {"zstd": 3}.get(cfg.compression)
    if level is not None:
        opts["compression_level"] = level
    return opts


def _sort_key(keyed: tuple[str, tuple[Any, ...]]) -> str:
    return keyed[0]


def _empty_table_stats() -> dict[str, Any]:
    return {"rows": 0, "by": {}, "parts": {}}


def _count_row(acc: dict[str, Any], table: str, part: str, label: str | None, nbytes: int) -> None:
    """Add one row of ``table`` in partition ``part`` to a :class:`_RunStats` accumulator."""
    t = acc["tables"].get(table)
    if t is None:
        t = acc["tables"][table] = _empty_table_stats()
    t["rows"] += 1
    parts = t["parts"]
    got = parts.get(part)
    if got is None:
        parts[part] = [1, nbytes]
    else:
        got[0] += 1
        got[1] += nbytes
    if label is not None:
        by = t["by"]
        by[label] = by.get(label, 0) + 1


class _RunStats(beam.CombineFn):
    """Documents read and, per table, rows, ``[rows, estimated bytes]`` per partition and the manifest's breakdown.

    Inputs are plain ints (documents read), a bundle's accumulator (what :class:`_PartitionFn` counts) or
    ``(table, partition, label, estimated bytes)`` for one row. The accumulator is bounded by the number of
    partitions and labels, not by the rows.
    """

    def create_accumulator(self) -> dict[str, Any]:
        return {"read": 0, "tables": {}}

    def add_input(self, acc: dict[str, Any], item: Any) -> dict[str, Any]:
        if isinstance(item, int):
            acc["read"] += item
            return acc
        if isinstance(item, dict):  # a bundle's counts (see _PartitionFn)
            return self.merge_accumulators([acc, item])
        _count_row(acc, *item)
        return acc

    def merge_accumulators(self, accs: Iterable[dict[str, Any]]) -> dict[str, Any]:
        out = self.create_accumulator()
        for a in accs:
            out["read"] += a["read"]
            for name, t in a["tables"].items():
                o = out["tables"].get(name)
                if o is None:
                    o = out["tables"][name] = _empty_table_stats()
                o["rows"] += t["rows"]
                for k, v in t["by"].items():
                    o["by"][k] = o["by"].get(k, 0) + v
                for k, (rows, nbytes) in t["parts"].items():
                    got = o["parts"].setdefault(k, [0, 0])
                    got[0] += rows
                    got[1] += nbytes
        return out

    def extract_output(self, acc: dict[str, Any]) -> dict[str, Any]:
        tables = {
            name: {"rows": t["rows"], "by": dict(sorted(t["by"].items())), "parts": t["parts"]}
            for name, t in acc["tables"].items()
        }
        return {"read": acc["read"], "tables": tables}


_NO_STATS: dict[str, Any] = {"read": 0, "tables": {}}


class _FinalizeFn(beam.DoFn):
    """Checks counts, moves files into place, verifies them and writes the manifest."""

    def __init__(
        self, output: str, tmp: str, mode: str, tag: str, specs: dict[str, TableSpec], run_info: dict[str, Any]
    ):
        self._output = output
        self._tmp = tmp
        self._mode = mode
        self._tag = tag
        self._specs = specs
        self._run_info = run_info

    def process(
        self,
        _start: Any,
        files: list[dict[str, Any]],
        run_stats: dict[str, Any],
        warnings: list[dict[str, Any]] | None = None,
    ) -> Iterator[dict]:
        read_count = run_stats["read"]
        counted = run_stats["tables"]
        stats = {
            name: {"rows": counted[name]["rows"], "by": counted[name]["by"]}
            if name in counted
            else {"rows": 0, "by": {}}
            for name in self._specs
        }
        by_table: dict[str, list[dict[str, Any]]] = {name: [] for name in self._specs}
        for f in sorted(files, key=lambda x: x["rel"]):  # the manifest lists files in path order
            by_table[f["table"]].append(f)
        # 1. every counted row is in a written file, and every document read is in one table
        for name, spec_files in by_table.items():
            written = sum(f["rows"] for f in spec_files)
            if written != stats[name]["rows"]:
                raise OutputVerificationError(
                    f"table {name}: {stats[name]['rows']} rows counted but {written} written; output left unchanged"
                )
        placed = sum(stats[t]["rows"] for t in ("docs", "duplicates", "rejects") if t in stats)
        if read_count != placed:
            raise OutputVerificationError(
                f"{read_count} documents read but {placed} placed in docs+duplicates+rejects; output left unchanged"
            )
        # 2. flat tables always exist, even when empty
        for name, spec in self._specs.items():
            if not by_table[name] and not spec.partitions:
                rel = f"{name}/part-{self._tag}00000-of-00001.parquet"
                tmp_path = join_path(self._tmp, _tmp_name(rel))
                with FileSystems.create(tmp_path) as fh:
                    pq.write_table(spec.file_schema.empty_table(), fh, **_writer_options(OutputConfig()))
                by_table[name].append({"table": name, "rel": rel, "tmp": tmp_path, "rows": 0})
        # 3. move into place (new files first, then remove stale ones: readers never see a torn file)
        new_final = set()
        for spec_files in by_table.values():
            for f in sorted(spec_files, key=lambda x: x["rel"]):
                final = join_path(self._output, f["rel"])
                _ensure_parent(final)
                if FileSystems.exists(final):
                    FileSystems.delete([final])
                FileSystems.rename([f["tmp"]], [final])
                new_final.add(final)
        stale = []
        for name in self._specs:
            for path in list_table_files(self._output, name):
                if path in new_final:
                    continue
                base = posixpath.basename(path)
                if self._mode == "overwrite" or (self._mode == "append" and base.startswith(f"part-{self._tag}")):
                    stale.append(path)
        if stale:
            FileSystems.delete(stale)
        # 4. re-read what is there
        files_out = []
        for name, spec_files in by_table.items():
            got = 0
            for f in spec_files:
                final = join_path(self._output, f["rel"])
                rows = _file_rows(final)
                got += rows
                files_out.append({"path": f["rel"], "rows": rows})
            if got != stats[name]["rows"]:
                raise OutputVerificationError(f"table {name}: {stats[name]['rows']} rows counted, {got} found in files")
        # what is left in the temporary folder: writer marks, files of an earlier attempt with this run id
        for folder in list_tmp_folders(self._output, only=self._tmp):
            _remove_folder(folder)
        manifest = self._manifest(read_count, stats, files_out)
        manifest["warnings"] = manifest_warnings(warnings or [])
        self._write_json(MANIFEST, manifest)
        if self._mode == "append":
            self._write_json(f"_runs/{self._run_info.get('run_id', 'run')}.json", manifest)
        yield manifest

    def _manifest(self, read_count: int, stats: dict[str, Any], files: list[dict[str, Any]]) -> dict[str, Any]:
        started = self._run_info.get("started_at_unix")
        now = time.time()
        docs = stats.get("docs", {"rows": 0, "by": {}})
        dups = stats.get("duplicates", {"rows": 0, "by": {}})
        rejects = stats.get("rejects", {"rows": 0, "by": {}})
        return {
            **{k: v for k, v in self._run_info.items() if k != "started_at_unix"},
            "output": self._output,
            "output_mode": self._mode,
            "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "wall_seconds": round(now - started, 3) if started else None,
            "counts": {
                "read": read_count,
                "kept": docs["rows"],
                "duplicates": dups["rows"],
                "duplicates_by_method": dups["by"],
                "rejects": rejects["rows"],
                "rejects_by_reason": rejects["by"],
                "kept_by_lang": docs["by"],
                **{f"{t}_rows": s["rows"] for t, s in stats.items() if t not in ("docs", "duplicates", "rejects")},
            },
            "accounting_ok": read_count == docs["rows"] + dups["rows"] + rejects["rows"],
            "files": files,
        }

    def _write_json(self, rel: str, data: dict[str, Any]) -> None:
        final = join_path(self._output, rel)
        tmp = join_path(self._output, f".{posixpath.basename(rel)}.{self._tag or 'run'}.tmp")
        with FileSystems.create(tmp) as fh:
            fh.write(json.dumps(data, indent=1, sort_keys=True, default=str).encode("utf-8"))
        _ensure_parent(final)
        if FileSystems.exists(final):
            FileSystems.delete([final])
        FileSystems.rename([tmp], [final])


def manifest_warnings(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The manifest's ``warnings``: counts the pipeline reported as decisions that may be wrong.

    Each item is a dict with at least ``counter`` and ``count`` (e.g. ``DedupeResult.warnings``); the counts
    of one counter are added up (its other fields taken from its first item), zero counts are left out, the
    rest sorted by counter.
    """
    merged: dict[str, dict[str, Any]] = {}
    for w in items:
        name = str(w.get("counter"))
        if name in merged:
            merged[name]["count"] += w.get("count") or 0
        else:
            merged[name] = {**w, "count": w.get("count") or 0}
    return [merged[name] for name in sorted(merged) if merged[name]["count"]]


# ----------------------------------------------------------------------------- transform


class WriteTables(beam.PTransform):
    """Write ``{"docs", "duplicates", "rejects", ...}`` PCollections as Parquet tables.

    Args:
      output: the output folder (local path or URI).
      config: file sizing and compression.
      read_count: a PCollection of ints whose sum is the number of documents read (a
        singleton count, or one count per file), for the accounting check
        (read = docs + duplicates + rejects).
      mode: ``error``/``overwrite`` (one run owns the output) or ``append`` (files carry
        the run id, so scheduled runs add files and a rerun replaces only its own).
      run_id: names the temporary folder and, in append mode, the files.
      run_info: extra fields for ``_manifest.json`` (inputs, options, versions...).
      extra_tables: specs of further tables in the input dict (e.g. the dedupe index).
      warnings: a PCollection of warning dicts (``counter``, ``count``, ``meaning``) listed in
        the manifest's ``warnings`` (see :func:`manifest_warnings`).
      progress_interval: print a ``written`` progress line (rows of docs, duplicates and
        rejects written) at most this often, in seconds (None: never).
    """

    def __init__(
        self,
        output: str,
        config: OutputConfig | None = None,
        *,
        read_count: beam.PCollection,
        mode: str = "error",
        run_id: str = "run",
        run_info: dict[str, Any] | None = None,
        extra_tables: dict[str, TableSpec] | None = None,
        progress_interval: float | None = None,
        warnings: beam.PCollection | None = None,
    ):
        super().__init__()
        if mode not in OUTPUT_MODES:
            raise ValueError(f"output mode must be one of {', '.join(OUTPUT_MODES)}, not {mode!r}")
        self._output = output.rstrip("/") or "/"
        self._cfg = config or OutputConfig()
        self._read_count = read_count
        self._mode = mode
        self._run_id = run_id
        self._run_info = {"run_id": run_id, **(run_info or {})}
        self._extra = dict(extra_tables or {})
        self._warnings = warnings
        self._progress_interval = progress_interval

    def expand(self, tables: dict[str, beam.PCollection]) -> beam.PCollection:
        specs = {**TABLES, **self._extra}
        unknown = set(tables) - set(specs)
        if unknown:
            raise ValueError(f"WriteTables: no spec for tables {sorted(unknown)}")
        specs = {name: specs[name] for name in sorted(tables)}
        tmp = join_path(self._output, f"{TMP_PREFIX}{self._run_id}")
        tag = f"{self._run_id}-" if self._mode == "append" else ""
        keyed, counted = {}, [self._read_count]
        for name, spec in specs.items():
            parted = tables[name] | f"{name}/Partition" >> beam.ParDo(_PartitionFn(spec)).with_outputs(
                _STATS_TAG, main="rows"
            )
            keyed[name] = parted.rows
            counted.append(parted[_STATS_TAG])
        stats = beam.pvalue.AsSingleton(
            counted | "AllCounts" >> beam.Flatten() | "Stats" >> beam.CombineGlobally(_RunStats()).without_defaults(),
            default_value=_NO_STATS,
        )
        pipeline = self._read_count.pipeline
        progress = None if self._progress_interval is None else (run_token(pipeline), self._progress_interval)
        written = []
        for name, spec in specs.items():
            files = (
                keyed[name]
                | f"{name}/Shard" >> beam.Map(_assign_shard, name, self._cfg, stats)
                | f"{name}/GroupShards" >> beam.GroupByKey()
                | f"{name}/WriteFiles" >> beam.ParDo(_WriteShardFn(spec, tmp, tag, self._cfg, progress))
            )
            written.append(files)
        all_files = beam.pvalue.AsList(written | "AllFiles" >> beam.Flatten())
        notes = {} if self._warnings is None else {"warnings": beam.pvalue.AsList(self._warnings)}
        _ = (
            pipeline
            | "StartCleanup" >> beam.Impulse()
            | "RemoveStaleTmp" >> beam.ParDo(_CleanStaleTmpFn(self._output, tmp, self._cfg.stale_tmp_hours * 3600))
        )
        return (
            pipeline
            | "Start" >> beam.Impulse()
            | "Finalize"
            >> beam.ParDo(
                _FinalizeFn(self._output, tmp, self._mode, tag, specs, self._run_info), all_files, stats, **notes
            )
        )
