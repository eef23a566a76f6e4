"""Throughput and memory of the full ingest: plain Python vs DirectRunner (1 and 2 workers), 1x vs 5x.

Corpora are made by ``make_dump_corpus.py`` (from the shared folder, seed 1) from MasakhaNEWS, the
WMT21 translations and the Babel Briefings sample (``--corpus dev``, the default; ``--corpus
masakhanews`` for MasakhaNEWS alone), at ``--scale 1`` and ``--scale 5``. Each variant runs on
each corpus in its own process:

* ``baseline``: one process, no Beam: the same library functions the transforms call
  (``read_source``, ``split_raw_doc``, ``detect``, ``explain_hashtags``, the dedupe maths) and
  Parquet written with pyarrow through ``rows_to_table`` and the same table specs;
* ``direct1``: ``pipelines.ingest.run`` on the DirectRunner, one worker (in-memory);
* ``direct2``: ``--direct_num_workers=2 --direct_running_mode=multi_processing``;
* ``prism``: ``--runner=PrismRunner``, Beam's Go runner (``python -m newsflow.engines install prism``),
  one Python SDK worker process beside the Prism process;
* ``floor``: the plain reference ingest ``tools/floor.py`` of the shared folder (``--workers 1``: one
  process), the speed anchor: throughput and CPU seconds per document of every other variant are
  also printed as ratios to the floor's, with documents per vCPU-hour (3600 / CPU seconds per document).

Printed: documents read per second and dump MB per second (time measured inside the process,
after imports), CPU seconds of the process and its children, the load average around each run
(other work on the machine slows the multi-process variant most), peak memory of the process
tree (the sum of the RSS of the process and its children, sampled every 50 ms from /proc) and
the largest single-process peak RSS (``getrusage``), ratios to the baseline, the 5x/1x ratios of time and memory,
and whether each run decided the same as the baseline (kept ids and the (doc_id, kept_id, method) of every
duplicate row).

At 1x (``--ceiling-scales``) two baselines also run at once: each runs slower than alone, so
``2 x alone / at once`` is the most any two processes reach on this machine, and direct2's
ratio is also printed as a share of it. For the DirectRunner variants, the seconds spent
outside the runner's stages (building and translating the graph, stopping workers, the
output checks) are printed too: fixed costs that do not shrink with a second worker. For the
in-process runner (``direct1``), each run also prints its slowest fused stages (wall seconds, the
rest summed) and the five stages with the highest RSS while they ran (where the peak forms).

Examples::

    python benchmarks/bench_ingest.py --quick          # 4 languages' dev.tsv only (a few minutes)
    python benchmarks/bench_ingest.py                  # the dev corpus (MasakhaNEWS, WMT21, Babel), 1x and 5x
    python benchmarks/bench_ingest.py --quick --profile  # plus a cProfile of the direct1 run at 1x
    python benchmarks/bench_ingest.py --quick --scales 1 --variants floor,baseline,direct1  # against the floor
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import json
import os
import pstats
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

__all__ = ["baseline_ingest", "main"]

VARIANTS = ("floor", "baseline", "direct1", "direct2", "prism")
QUICK_LANGS = ("eng", "fra", "hau", "swa")


# ---------------------------------------------------------------------------- the plain-Python baseline


def _iter_dump(root: str) -> Iterator[tuple[str, str]]:
    """(relative path, full path) of every file under ``root``, sorted."""
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(folder, name)
            yield os.path.relpath(full, root).replace(os.sep, "/"), full


def _dedupe(docs: list[dict[str, Any]], cfg: Any) -> tuple[list[dict], list[dict], list[dict]]:
    """Exact + near duplicates in memory with the reference (:func:`newsflow.core.dedupe.dedupe`):
    (kept, duplicates, index rows)."""
    from newsflow.core.dedupe import dedupe
    from newsflow.io.index_codec import index_row
    from newsflow.io.tables import date_partition

    out = dedupe(docs, cfg)
    index = []
    if cfg.write_index:
        for doc in out.kept:
            key, fp = out.kept_fingerprints[str(doc["doc_id"])]
            index.append(index_row(doc, date_partition(doc["published_at"]), key, fp))
    return out.kept, out.duplicates, index


def _write_table(out: str, spec: Any, rows: list[dict[str, Any]], cfg: Any) -> int:
    """One Parquet file per partition (sorted by the table's row key); returns files written."""
    import pyarrow.parquet as pq

    from newsflow.schema import rows_to_table

    parts: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for row in rows:
        parts[spec.partition_dir(row)].append(row)
    comp = None if cfg.compression == "none" else cfg.compression
    for part, prow in parts.items():
        prow.sort(key=spec.row_key)
        folder = os.path.join(out, spec.name, part)
        os.makedirs(folder, exist_ok=True)
        with pq.ParquetWriter(
            os.path.join(folder, "part-00000-of-00001.parquet"), spec.file_schema, compression=comp
        ) as writer:
            for start in range(0, len(prow), cfg.row_group_rows):
                writer.write_table(rows_to_table(prow[start : start + cfg.row_group_rows], spec.file_schema))
    return len(parts)


def baseline_ingest(dump: str, out: str, cfg: Any) -> dict[str, int]:
    """The whole ingest in one process without Beam; returns the counts (read, kept, duplicates, rejects)."""
    from newsflow.io.sources import ReadFailure, read_source
    from newsflow.io.tables import TABLES, register_table
    from newsflow.schema import make_reject
    from newsflow.transforms.normalize_hashtags import hashtag_decisions
    from newsflow.transforms.split_header import split_raw_doc

    steps: dict[str, float] = {}
    clock = time.process_time()

    def step(name: str) -> None:
        nonlocal clock
        now = time.process_time()
        steps[name] = steps.get(name, 0.0) + now - clock
        clock = now

    read = 0
    docs: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    for rel, full in _iter_dump(dump):
        for got in read_source(rel, lambda full=full: open(full, "rb"), cfg.read):  # noqa: SIM115
            read += 1
            if isinstance(got, ReadFailure):
                rejects.append(make_reject(got.source_path, got.doc_index, got.reason, got.detail, got.excerpt))
                continue
            chunk = got.chunk
            data = chunk.data if not chunk.truncated else chunk.data[:4096]
            kind, value = split_raw_doc(
                {"source_path": got.source_path, "doc_index": chunk.doc_index, "data": data, "size": chunk.size},
                cfg.parse,
            )
            (docs if kind == "doc" else rejects).append(value)
    step("read + parse")
    if cfg.lang.enabled:
        from newsflow.core.lang import LangModel, detect_batch
        from newsflow.transforms.detect_lang import DetectLangFn, detect_options, doc_text, load_second, with_lang

        model = LangModel(cfg.lang.model_path, cfg.lang.label_map)
        kwargs = {**detect_options(cfg.lang), "second": load_second(cfg.lang)}  # both models, as DetectLang
        tagged = []
        size = DetectLangFn.BATCH_DOCS  # the batches DetectLang detects
        for start in range(0, len(docs), size):
            batch = docs[start : start + size]
            found = detect_batch([doc_text(doc, cfg.lang.use_hashtags) for doc in batch], model, **kwargs)
            tagged.extend(with_lang(doc, r) for doc, r in zip(batch, found, strict=True))
        docs = tagged
        del tagged  # one name per list: dedupe frees the documents it has packed
    step("language")
    if cfg.hashtags.enabled:
        docs = [
            {**doc, "hashtags": [d.tag for d in hashtag_decisions(doc, cfg.hashtags) if d.rule is None]} for doc in docs
        ]
    step("hashtags")
    index: list[dict[str, Any]] = []
    dups: list[dict[str, Any]] = []
    if cfg.dedupe.enabled:
        docs, dups, index = _dedupe(docs, cfg.dedupe)
    step("dedupe")
    tables = {"docs": docs, "duplicates": dups, "rejects": rejects}
    specs = dict(TABLES)
    if index:
        from newsflow.schema import INDEX_SCHEMA

        specs["index"] = register_table("index", INDEX_SCHEMA)
        tables["index"] = index
    for name, rows in tables.items():
        _write_table(out, specs[name], rows, cfg.output)
    step("write Parquet")
    return {"read": read, "kept": len(docs), "duplicates": len(dups), "rejects": len(rejects), "steps": steps}


# ---------------------------------------------------------------------------- one measured run (child process)


_STEP_RE = re.compile(r"ref_AppliedPTransform_([A-Za-z]+-[A-Za-z]+)|\(([A-Za-z]+/[A-Za-z]+)/")


def stage_label(fused: str) -> str:
    """A short name for one of the runner's fused stages: its first three steps."""
    steps: list[str] = []
    for a, b in _STEP_RE.findall(fused):
        step = (a or b).replace("-", "/")
        if step not in steps:
            steps.append(step)
    return " + ".join(steps[:3]) or fused[:60]


def _rss_mb() -> float:
    """This process's resident memory now (MB, from /proc; 0 where there is none)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _time_stages() -> tuple[dict[str, float], list[float], dict[str, float]]:
    """Wall seconds and peak RSS (MB) per fused stage of the DirectRunner (FnApiRunner), filled while it runs.

    Also returns ``[first stage start, last stage end]`` (``time.perf_counter``): the run's time
    outside them is the runner's fixed cost (building and translating the graph, the Prism
    attempt, stopping workers) plus the output checks after the run. The peaks come from a thread
    reading this process's RSS every 50 ms while a stage runs (the in-process runner holds every
    shuffle in this process, so they show which stage sets the run's peak).
    """
    from apache_beam.runners.portability.fn_api_runner import fn_runner

    seconds: dict[str, float] = collections.defaultdict(float)
    peaks: dict[str, float] = collections.defaultdict(float)
    span: list[float] = []
    current: list[str] = []
    run_bundle = fn_runner.FnApiRunner._execute_bundle

    def sample() -> None:
        while True:
            if current:
                name = current[0]
                peaks[name] = max(peaks[name], _rss_mb())
            time.sleep(0.05)

    def timed(self: Any, context: Any, bundle_manager: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        if not span:
            span.append(started)
        name = bundle_manager.stage.name
        current[:] = [name]
        try:
            return run_bundle(self, context, bundle_manager, *args, **kwargs)
        finally:
            ended = time.perf_counter()
            seconds[name] += ended - started
            peaks[name] = max(peaks[name], _rss_mb())
            current.clear()
            span[1:] = [ended]

    threading.Thread(target=sample, daemon=True).start()
    fn_runner.FnApiRunner._execute_bundle = timed
    return seconds, span, peaks


def floor_ingest(dump: str, out: str, shared: str) -> dict[str, int]:
    """The shared folder's ``tools/floor.py`` in this process, one worker; returns its counts."""
    import importlib.util

    path = Path(shared) / "tools" / "floor.py"
    spec = importlib.util.spec_from_file_location("newsflow_bench_floor", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"no floor script at {path}")
    floor = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(floor)
    with tempfile.TemporaryDirectory(prefix="newsflow-floor-") as tmp:
        timings = os.path.join(tmp, "timings.json")
        status = floor.main(["--input", dump, "--output", out, "--workers", "1", "--timings", timings])
        if status:
            raise RuntimeError(f"floor.py exited with status {status}")
        with open(timings, encoding="utf-8") as fh:
            res = json.load(fh)
    sec = res["seconds"]
    steps = {
        "read + parse": sec["cpu_read_parse"],
        "language": sec["cpu_langid"],
        "dedupe": sec["cpu_normalize"] + sec["cpu_minhash"] + sec["dedup_lsh_cluster"],
        "write Parquet": sec["write"],
    }
    return {
        "read": res["docs_read"],
        "kept": res["kept"],
        "duplicates": res["duplicates"],
        "rejects": res["rejects"],
        "steps": steps,
    }


def _child(variant: str, dump: str, out: str, config: str | None, profile: str | None, shared: str) -> None:
    """Run one variant and print one JSON line (counts, seconds, getrusage peaks, slowest stages)."""
    if variant == "floor":  # loads no newsflow code at all
        started = time.perf_counter()
        counts = floor_ingest(dump, out, shared)
        seconds = time.perf_counter() - started
        _print_result(variant, seconds, counts, [], None)
        return
    from newsflow.config import load_config

    cfg = load_config(config)
    stage_seconds, span, stage_peaks = _time_stages() if variant != "baseline" else ({}, [], {})
    prof = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if prof:
        prof.enable()
    if variant == "baseline":
        counts = baseline_ingest(dump, out, cfg)
    else:
        from pipelines.ingest import run

        runner = "PrismRunner" if variant == "prism" else "DirectRunner"
        argv = ["--input", dump, "--output", out, "--output_mode=overwrite", "--quiet", f"--runner={runner}"]
        if config:
            argv += ["--config", config]
        if variant == "direct2":
            argv += ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
        manifest = run(argv)
        counts = {k: _count(manifest, k) for k in ("read", "kept", "duplicates", "rejects")}
    ended = time.perf_counter()
    seconds = ended - started
    if prof:
        prof.disable()
        prof.dump_stats(profile)
    ranked = sorted(((stage_label(k), v) for k, v in stage_seconds.items()), key=lambda kv: -kv[1])
    stages = ranked[:8]
    if len(ranked) > 8:  # the many small stages (connected components' rounds, grouping parts) together
        stages.append((f"({len(ranked) - 8} other stages)", sum(v for _, v in ranked[8:])))
    peaks = sorted(((stage_label(k), v) for k, v in stage_peaks.items()), key=lambda kv: -kv[1])[:5]
    outside = (span[0] - started) + (ended - span[-1]) if span else None
    _print_result(variant, seconds, counts, stages, outside, peaks)


def _print_result(
    variant: str,
    seconds: float,
    counts: dict[str, int],
    stages: list[tuple[str, float]],
    outside: float | None,
    stage_peaks: list[tuple[str, float]] | None = None,
) -> None:
    """The child's one JSON line: its counts and seconds, CPU seconds and peak RSS (getrusage)."""
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    print(
        json.dumps(
            {
                "variant": variant,
                "seconds": seconds,
                **counts,
                "cpu_seconds": sum(u.ru_utime + u.ru_stime for u in usage),
                "self_maxrss_mb": usage[0].ru_maxrss / 1024,
                "children_maxrss_mb": usage[1].ru_maxrss / 1024,
                "stages": stages,
                "outside_stages_seconds": outside,
                "stage_peak_rss_mb": stage_peaks or [],
            }
        )
    )


def _count(manifest: dict[str, Any], key: str) -> int:
    """A count from the manifest (``counts.<key>`` or top-level ``<key>``; an int or a {total} mapping)."""
    value = (manifest.get("counts") or {}).get(key, manifest.get(key, 0))
    if isinstance(value, dict):
        value = value.get("total", sum(v for v in value.values() if isinstance(v, int)))
    return int(value or 0)


def _tree_rss_mb(pid: int) -> float:
    """Sum of the RSS of ``pid`` and all its descendants (Linux /proc), in MB."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children[int(fields[1])].append(int(entry))
        rss[int(entry)] = int(fields[21])
    page = os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0) * page
        todo.extend(children.get(p, []))
    return total / 2**20


def measure(
    variant: str, dump: str, out: str, config: str | None, profile: str | None = None, shared: str | None = None
) -> dict[str, Any]:
    """Run ``variant`` in a child process; its JSON line plus the sampled peak tree RSS."""
    load_before = os.getloadavg()[0]
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "_child",
        variant,
        dump,
        out,
        config or "",
        profile or "",
        shared or str(_shared_dir()),
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            if os.path.isdir("/proc"):
                peak[0] = max(peak[0], _tree_rss_mb(proc.pid))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{variant} failed (status {proc.returncode}):\n{stderr[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["tree_peak_rss_mb"] = peak[0]
    result["load_before"] = load_before
    return result


def measure_ceiling(dump: str, outs: Sequence[str], config: str | None) -> dict[str, Any]:
    """Two baselines started at once: what two processes on this machine can reach at best.

    Each copy runs slower than one alone (shared caches, memory bandwidth, other tenants),
    so ``2 x one alone / two at once`` bounds any two-process speedup of the baseline's work,
    before any cost of the runner itself.
    """
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def one(out: str) -> None:
        try:
            results.append(measure("baseline", dump, out, config))
        except BaseException as e:  # noqa: BLE001 - re-raised in the calling thread below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(out,)) for out in outs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return {"seconds": [r["seconds"] for r in results], "load_before": min(r["load_before"] for r in results)}


def _at_once(ceiling: dict[str, Any]) -> str:
    """The two at-once baselines' seconds, as printed."""
    return " and ".join(f"{x:.1f}" for x in ceiling["seconds"])


# ---------------------------------------------------------------------------- corpora, report, profile


def _shared_dir() -> Path:
    return Path(os.environ.get("NEWSFLOW_SHARED", REPO.parent / "shared")).resolve()


def make_corpus(work: Path, scale: int, quick: bool, shared: Path, corpus: str = "dev") -> Path:
    """A dump corpus made by make_dump_corpus.py (seed 1); returns its dump folder.

    ``corpus``: ``dev`` (all of MasakhaNEWS, the WMT21 translations and the Babel Briefings sample: the
    development corpus the cost figures are quoted on) or ``masakhanews`` (MasakhaNEWS alone). ``quick``
    takes the dev.tsv of four MasakhaNEWS languages only.
    """
    source = shared / "corpora" / "masakhanews"
    extra: list[str] = []
    if quick:
        subset = work / "masakhanews-quick"
        for lang in QUICK_LANGS:
            (subset / lang).mkdir(parents=True, exist_ok=True)
            link = subset / lang / "dev.tsv"
            if not link.exists():
                link.symlink_to(source / lang / "dev.tsv")
        source = subset
    elif corpus == "dev":
        extra = [
            "--wmt",
            str(shared / "corpora" / "wmt-news-xml" / "wmt21"),
            "--babel",
            str(shared / "corpora" / "babel-briefings-sample" / "sample_articles.json"),
        ]
    out = work / f"corpus-{'quick' if quick else corpus}-{scale}x"
    if not (out / "dump").is_dir():
        subprocess.run(
            [
                sys.executable,
                str(shared / "tools" / "make_dump_corpus.py"),
                "--out",
                str(out),
                "--seed",
                "1",
                "--masakhane",
                str(source),
                *extra,
                "--scale",
                str(scale),
            ],
            check=True,
            capture_output=True,
        )
    return out / "dump"


def decisions(out: Path) -> tuple[frozenset[str], frozenset[tuple[str, str, str]]]:
    """What a run decided: the ids of its kept docs and (doc_id, kept_id, method) of its duplicates."""
    import pyarrow.parquet as pq

    def rows(table: str, columns: list[str]) -> list[tuple[Any, ...]]:
        got: list[tuple[Any, ...]] = []
        for path in sorted((out / table).rglob("*.parquet")):
            t = pq.read_table(path, columns=columns)
            got.extend(zip(*(t.column(c).to_pylist() for c in columns), strict=True))
        return got

    kept = frozenset(r[0] for r in rows("docs", ["doc_id"]))
    dups = frozenset(rows("duplicates", ["doc_id", "kept_id", "method"]))
    return kept, dups


def _differences(a: tuple[frozenset, frozenset], b: tuple[frozenset, frozenset]) -> int:
    """How many kept ids and duplicate rows are in one run's output and not in the other's."""
    return len(a[0] ^ b[0]) + len(a[1] ^ b[1])


def _dump_mb(dump: Path) -> float:
    return sum(p.stat().st_size for p in dump.rglob("*") if p.is_file()) / 1e6


_STAGES = (
    (
        "read (sources, decompression)",
        (
            "newsflow/io/sources.py",
            "newsflow/io/read_dump.py",
            "gzip.py",
            "tarfile.py",
            "zipfile.py",
            "_compression.py",
            "bz2.py",
            "lzma.py",
        ),
    ),
    ("parse (SplitHeader)", ("newsflow/core/parse.py", "newsflow/transforms/split_header.py")),
    ("lang (DetectLang, fastText)", ("newsflow/core/lang.py", "newsflow/transforms/detect_lang.py", "fasttext")),
    ("hashtags", ("newsflow/core/hashtags.py", "newsflow/transforms/normalize_hashtags.py")),
    (
        "dedupe",
        (
            "newsflow/core/dedupe/",
            "newsflow/transforms/dedupe.py",
            "newsflow/io/dedupe_index.py",
            "newsflow/io/index_codec.py",
        ),
    ),
    (
        "write (WriteTables, Parquet)",
        ("newsflow/io/write_tables.py", "newsflow/io/tables.py", "newsflow/schema.py", "pyarrow"),
    ),
    ("Beam coders/pickling", ("apache_beam/coders", "pickle", "cloudpickle", "dill")),
    ("Beam runner/worker overhead", ("apache_beam/",)),
)


def profile_report(path: str, top: int = 25) -> str:
    """Own time per stage (by source file) and the top functions of a cProfile dump."""
    stats = pstats.Stats(path)
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    by_stage: dict[str, float] = collections.Counter()
    for (filename, _line, func), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{filename}:{func}"
        stage = next((name for name, marks in _STAGES if any(m in where for m in marks)), "other (stdlib, numpy...)")
        by_stage[stage] += tt
    lines = [
        f"profile: {total:.1f} s of own time in this process (worker processes are not included)",
        "own time by stage:",
    ]
    for stage, tt in sorted(by_stage.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {stage:<34} {tt:8.2f} s  {100 * tt / max(total, 1e-9):5.1f}%")
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:top]  # type: ignore[attr-defined]
    lines.append(f"top {top} functions by own time (calls, own s, cumulative s):")
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in rows:
        short = filename.split("site-packages/")[-1].replace(str(REPO) + "/", "")
        lines.append(f"  {nc:>9} {tt:8.2f} {ct:8.2f}  {short}:{line}({func})")
    return "\n".join(lines)


def _rows_label(r: dict[str, Any]) -> str:
    diff = r.get("rows_differing")
    return "" if diff is None else "= base" if diff == 0 else f"{diff} differ"


def _ceiling_lines(results: dict[int, dict[str, dict[str, Any]]], ceilings: dict[int, dict[str, Any]]) -> list[str]:
    """The two-baselines-at-once measurement, and direct2's ratio as a share of it."""
    lines = []
    for scale, c in ceilings.items():
        base = results.get(scale, {}).get("baseline")
        if not base:
            continue
        slowest = max(c["seconds"])
        ceiling = 2 * base["seconds"] / slowest
        lines.append(
            f"  {scale}x two baselines at once: {_at_once(c)} s "
            f"(one alone {base['seconds']:.1f} s): two processes here reach at most {ceiling:.2f}x "
            f"one baseline's throughput"
        )
        d2 = results[scale].get("direct2")
        if d2:
            got = base["seconds"] / d2["seconds"]
            lines.append(f"  {scale}x direct2: {got:.2f}x baseline = {100 * got / ceiling:.0f}% of that ceiling")
    return lines


def _floor_lines(results: dict[int, dict[str, dict[str, Any]]]) -> list[str]:
    """Per run: CPU seconds per document, documents per vCPU-hour, and both ratios to the floor's run."""
    lines = [
        "against the floor (floor.py, one process): throughput ratio = docs/s / floor docs/s, "
        "CPU ratio = CPU s per doc / floor's; docs per vCPU-hour = 3600 / CPU s per doc"
    ]
    for scale, by_variant in results.items():
        floor = by_variant.get("floor")
        for variant, r in by_variant.items():
            cpu_doc = r["cpu_seconds"] / max(r["read"], 1)
            line = (
                f"  {scale}x {variant:<9} {1000 * cpu_doc:7.2f} CPU ms/doc, "
                f"{3600 / max(cpu_doc, 1e-12):>10,.0f} docs per vCPU-hour"
            )
            if floor and variant != "floor":
                speed, cpu = _to_floor(r, floor)
                line += f", throughput {speed:.3f}x the floor's, CPU per doc {cpu:.2f}x the floor's"
            lines.append(line)
    lines.extend(_floor_goal_lines(results))
    return lines


# Throughput against the one-process floor that each variant should reach, and the one-worker run's peak memory.
FLOOR_GOALS = {"direct1": 1.0, "direct2": 1.6, "prism": 1.0}
PEAK_GOAL_MB = 1500


def _to_floor(r: dict[str, Any], floor: dict[str, Any]) -> tuple[float, float]:
    """A run's throughput and CPU seconds per document, each as a ratio to the floor's run."""
    speed = (r["read"] / r["seconds"]) / (floor["read"] / floor["seconds"])
    cpu = (r["cpu_seconds"] / max(r["read"], 1)) / (floor["cpu_seconds"] / max(floor["read"], 1))
    return speed, cpu


def _floor_goal_lines(results: dict[int, dict[str, dict[str, Any]]]) -> list[str]:
    """The cost goals, each marked met or NOT met: throughput and CPU per document against the floor, peak memory."""
    lines = []
    for scale, by_variant in results.items():
        floor = by_variant.get("floor")
        if not floor:
            continue
        for variant, goal in FLOOR_GOALS.items():
            r = by_variant.get(variant)
            if not r:
                continue
            speed, cpu = _to_floor(r, floor)
            lines.append(
                f"  goal {scale}x {variant}: throughput {speed:.2f}x the floor's (goal {goal}x): "
                f"{'met' if speed >= goal else 'NOT met'}"
                + (
                    f"; CPU per doc {cpu:.2f}x the floor's (goal <= 1x): {'met' if cpu <= 1 else 'NOT met'}"
                    if variant == "direct1"
                    else ""
                )
            )
        d1 = by_variant.get("direct1")
        if d1 and scale > 1:
            lines.append(
                f"  goal {scale}x direct1 peak tree RSS {d1['tree_peak_rss_mb']:,.0f} MB "
                f"(goal <= {PEAK_GOAL_MB:,} MB): {'met' if d1['tree_peak_rss_mb'] <= PEAK_GOAL_MB else 'NOT met'}"
            )
    return lines


def _step_lines(results: dict[int, dict[str, dict[str, Any]]]) -> list[str]:
    """CPU milliseconds per document read of each step of the runs that time their steps (baseline, floor)."""
    lines = []
    for scale, by_variant in results.items():
        timed = {v: r for v, r in by_variant.items() if r.get("steps")}
        if not timed:
            continue
        names = list(dict.fromkeys(name for r in timed.values() for name in r["steps"]))
        lines.append(f"  {scale}x CPU ms/doc per step: " + ", ".join(timed))
        for name in names:
            cells = [
                f"{1000 * r['steps'][name] / max(r['read'], 1):8.3f}" if name in r["steps"] else f"{'-':>8}"
                for r in timed.values()
            ]
            lines.append(f"    {name:<14} " + " ".join(cells))
    return lines


def _outside_stage_lines(results: dict[int, dict[str, dict[str, Any]]]) -> list[str]:
    """Per DirectRunner run, its seconds outside the runner's stages (fixed costs a second worker keeps)."""
    return [
        f"  {scale}x {variant}: {r['outside_stages_seconds']:.1f} s of {r['seconds']:.1f} s "
        f"outside the runner's stages (graph, translation, worker shutdown, output checks)"
        for scale, by_variant in results.items()
        for variant, r in by_variant.items()
        if r.get("outside_stages_seconds") is not None
    ]


def _report(
    results: dict[int, dict[str, dict[str, Any]]],
    mb: dict[int, float],
    ceilings: dict[int, dict[str, Any]] | None = None,
) -> str:
    lines = []
    head = (
        f"{'scale':>5} {'variant':<9} {'docs':>7} {'kept':>7} {'dups':>6} {'rej':>4} {'sec':>8} {'docs/s':>8} "
        f"{'MB/s':>6} {'x base':>7} {'CPU s':>7} {'treeRSS MB':>10} {'maxRSS MB':>9} {'rows':>10}"
    )
    lines.append(head)
    for scale, by_variant in results.items():
        base = by_variant.get("baseline")
        for variant, r in by_variant.items():
            ratio = base["seconds"] / r["seconds"] if base else float("nan")
            maxrss = max(r["self_maxrss_mb"], r["children_maxrss_mb"])
            lines.append(
                f"{scale:>4}x {variant:<9} {r['read']:>7} {r['kept']:>7} {r['duplicates']:>6} "
                f"{r['rejects']:>4} {r['seconds']:>8.1f} {r['read'] / r['seconds']:>8.1f} "
                f"{mb[scale] / r['seconds']:>6.2f} {ratio:>6.2f}x {r['cpu_seconds']:>7.1f} "
                f"{r['tree_peak_rss_mb']:>10.0f} "
                f"{maxrss:>9.0f} {_rows_label(r):>10}"
            )
    lines.append("rows: kept ids and (doc_id, kept_id, method) of duplicates compared with the baseline's output")
    lines.append("growth goals: 5x time <= 5 x 1x time; peak memory 5x <= 3 x 1x")
    scales = sorted(results)
    if len(scales) >= 2:
        lo, hi = scales[0], scales[-1]
        for variant in results[lo]:
            if variant not in results[hi]:
                continue
            a, b = results[lo][variant], results[hi][variant]
            t_ratio = b["seconds"] / a["seconds"]
            m_ratio = b["tree_peak_rss_mb"] / max(a["tree_peak_rss_mb"], 1e-9)
            docs_ratio = b["read"] / max(a["read"], 1)
            lines.append(
                f"  {variant}: time {hi}x/{lo}x = {t_ratio:.2f} for {docs_ratio:.2f}x the documents "
                f"({'no worse than linear' if t_ratio <= docs_ratio * 1.05 else 'WORSE than linear'}); "
                f"peak tree RSS {hi}x/{lo}x = {m_ratio:.2f} "
                f"({'within' if m_ratio <= 3 else 'OVER'} the 3x goal)"
            )
    lines.extend(_floor_lines(results))
    lines.extend(_step_lines(results))
    lines.extend(_ceiling_lines(results, ceilings or {}))
    lines.extend(_outside_stage_lines(results))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Make the corpora, run every variant on each, print the table (and the profile)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "_child":
        _child(argv[1], argv[2], argv[3], argv[4] or None, argv[5] or None, argv[6])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK_LANGS)} dev.tsv")
    ap.add_argument(
        "--corpus",
        choices=("dev", "masakhanews"),
        default="dev",
        help="dev: MasakhaNEWS + WMT21 + Babel Briefings (default); masakhanews: MasakhaNEWS alone",
    )
    ap.add_argument("--scales", default="1,5", help="comma-separated corpus scales (default 1,5)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ",".join(VARIANTS))
    ap.add_argument("--config", default=None, help="newsflow settings for every variant (default: built-in)")
    ap.add_argument("--work", default=None, help="folder for corpora and outputs (default: a temporary one)")
    ap.add_argument("--profile", action="store_true", help="also profile direct1 at the smallest scale")
    ap.add_argument("--shared", default=str(_shared_dir()), help="the shared folder (corpora, tools)")
    ap.add_argument(
        "--ceiling-scales",
        default="1",
        help="scales at which two baselines also run at once, to measure what two processes "
        "can reach on this machine (default 1; empty: none)",
    )
    args = ap.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="newsflow-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    scales = [int(s) for s in args.scales.split(",")]
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        ap.error(f"unknown variants: {sorted(unknown)}")
    ceiling_scales = {int(x) for x in args.ceiling_scales.split(",") if x}
    results: dict[int, dict[str, dict[str, Any]]] = {}
    ceilings: dict[int, dict[str, Any]] = {}
    mb: dict[int, float] = {}
    try:
        for scale in scales:
            dump = make_corpus(work, scale, args.quick, Path(args.shared), args.corpus)
            mb[scale] = _dump_mb(dump)
            print(f"corpus {scale}x: {dump} ({mb[scale]:.1f} MB)", flush=True)
            results[scale] = {}
            for variant in variants:
                out = work / f"out-{scale}x-{variant}"
                shutil.rmtree(out, ignore_errors=True)
                results[scale][variant] = r = measure(variant, str(dump), str(out), args.config, shared=args.shared)
                print(
                    f"  {variant}: {r['seconds']:.1f} s, {r['read']} docs read, load average before/after "
                    f"{r['load_before']:.1f}/{os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)",
                    flush=True,
                )
                for label, sec in r.get("stages", []):
                    print(f"      {sec:7.1f} s  {label}", flush=True)
                for label, rss in r.get("stage_peak_rss_mb", []):
                    print(f"      {rss:7,.0f} MB peak RSS during  {label}", flush=True)
            if scale in ceiling_scales and "baseline" in results[scale]:
                outs = [work / f"out-{scale}x-ceiling{i}" for i in (1, 2)]
                for out in outs:
                    shutil.rmtree(out, ignore_errors=True)
                ceilings[scale] = c = measure_ceiling(str(dump), [str(o) for o in outs], args.config)
                print(
                    f"  two baselines at once: {_at_once(c)} s, load average before {c['load_before']:.1f}", flush=True
                )
                for out in outs:
                    shutil.rmtree(out, ignore_errors=True)
            if "baseline" in results[scale]:
                base_rows = decisions(work / f"out-{scale}x-baseline")
                for variant, r in results[scale].items():
                    if variant == "floor":  # another job's rules: its decisions are not comparable
                        continue
                    r["rows_differing"] = _differences(decisions(work / f"out-{scale}x-{variant}"), base_rows)
    finally:  # what was measured is printed even when a later run fails
        print(_report({k: v for k, v in results.items() if v}, mb, ceilings), flush=True)
    if args.profile:
        scale = min(scales)
        prof = work / "direct1.prof"
        out = work / "out-profile"
        shutil.rmtree(out, ignore_errors=True)
        r = measure(
            "direct1",
            str(make_corpus(work, scale, args.quick, Path(args.shared), args.corpus)),
            str(out),
            args.config,
            profile=str(prof),
        )
        print(f"profiled direct1 at {scale}x: {r['seconds']:.1f} s under cProfile; stats in {prof}")
        print(profile_report(str(prof)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
