"""The same rows on every engine, run after run: each engine N times against one in-process run.

Every table is compared whole: each row of ``docs`` (with its ``lang``/``date`` partition),
``duplicates`` (with ``kept_id``) and ``rejects``, as a sorted multiset. A run that differs
prints how many rows of each table are on one side only. Each run also prints its wall
seconds, CPU seconds (process and children, Prism included) and the peak RSS of its whole
process tree, as ``bench_ingest.py`` measures them.

Engines: ``prism`` (``--runner=PrismRunner``), ``direct2`` (the in-process runner's
``multi_processing`` mode with two workers) and ``direct1`` (one worker, the reference).

Examples::

    python benchmarks/check_engines.py --runs 5                       # MasakhaNEWS corpus, 1x
    python benchmarks/check_engines.py --runs 3 --scale 5 --engines prism
    python benchmarks/check_engines.py --dump /data/dev/dump --runs 5   # any dump folder
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bench_ingest import _shared_dir, make_corpus, measure  # noqa: E402

__all__ = ["main", "table_rows"]

TABLES = ("docs", "duplicates", "rejects")


def table_rows(out: Path) -> dict[str, collections.Counter]:
    """Every row of each table as a multiset of tuples (partition columns included, as strings)."""
    import pyarrow.dataset as ds

    rows: dict[str, collections.Counter] = {}
    for name in TABLES:
        folder = out / name
        if not folder.is_dir():
            rows[name] = collections.Counter()
            continue
        files = sorted(str(p) for p in folder.rglob("*.parquet") if not any(s.startswith(".") for s in p.parts))
        table = ds.dataset(files, format="parquet", partitioning="hive", partition_base_dir=str(folder)).to_table()
        cols = sorted(table.column_names)
        rows[name] = collections.Counter(tuple(repr(r[c]) for c in cols) for r in table.select(cols).to_pylist())
    return rows


def _diff(a: dict[str, collections.Counter], b: dict[str, collections.Counter]) -> dict[str, int]:
    return {name: sum(((a[name] - b[name]) + (b[name] - a[name])).values()) for name in TABLES}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the reference once and each engine ``--runs`` times; exit 1 if any run differs."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engines", default="prism", help="comma-separated: prism, direct2, direct1 (default prism)")
    ap.add_argument("--runs", type=int, default=5, help="runs per engine (default 5)")
    ap.add_argument("--scale", type=int, default=1, help="corpus scale when --dump is not given (default 1)")
    ap.add_argument("--dump", default=None, help="a dump folder to use instead of the generated corpus")
    ap.add_argument("--config", default=None, help="newsflow settings (default: built-in)")
    ap.add_argument("--work", default=None, help="folder for corpora and outputs (default: a temporary one)")
    ap.add_argument("--shared", default=str(_shared_dir()), help="the shared folder (corpora, tools)")
    args = ap.parse_args(argv)
    engines = [e for e in args.engines.split(",") if e]
    bad = set(engines) - {"prism", "direct1", "direct2"}
    if bad:
        ap.error(f"unknown engines: {sorted(bad)}")
    work = Path(args.work or tempfile.mkdtemp(prefix="newsflow-engines-"))
    work.mkdir(parents=True, exist_ok=True)
    dump = Path(args.dump) if args.dump else make_corpus(work, args.scale, False, Path(args.shared))
    ref_out = work / "out-reference"
    shutil.rmtree(ref_out, ignore_errors=True)
    results: list[tuple[str, int, dict[str, Any], dict[str, int] | None]] = []
    ref = measure("direct1", str(dump), str(ref_out), args.config)
    reference = table_rows(ref_out)
    results.append(("direct1 (reference)", 0, ref, None))
    print(
        f"reference: {ref['seconds']:.1f} s, " + ", ".join(f"{n} {sum(reference[n].values())}" for n in TABLES),
        flush=True,
    )
    for engine in engines:
        for i in range(1, args.runs + 1):
            out = work / f"out-{engine}-{i}"
            shutil.rmtree(out, ignore_errors=True)
            r = measure(engine, str(dump), str(out), args.config)
            diff = _diff(reference, table_rows(out))
            results.append((engine, i, r, diff))
            print(
                f"{engine} run {i}: {r['seconds']:.1f} s, load before {r['load_before']:.1f}, rows "
                f"{'equal' if not any(diff.values()) else diff}",
                flush=True,
            )
            shutil.rmtree(out, ignore_errors=True)
    print(f"\ncorpus {dump}: {ref['read']} documents, {os.cpu_count()} cores")
    print(f"{'engine':<20} {'run':>3} {'sec':>8} {'CPU s':>7} {'treeRSS MB':>10} {'load':>5}  rows vs reference")
    differing = 0
    for engine, i, r, diff in results:
        label = (
            "-"
            if diff is None
            else (
                "equal" if not any(diff.values()) else "DIFFER " + ", ".join(f"{k} {v}" for k, v in diff.items() if v)
            )
        )
        differing += bool(diff and any(diff.values()))
        print(
            f"{engine:<20} {i:>3} {r['seconds']:>8.1f} {r['cpu_seconds']:>7.1f} {r['tree_peak_rss_mb']:>10.0f} "
            f"{r['load_before']:>5.1f}  {label}"
        )
    print(f"{differing} of {len(results) - 1} runs differ from the reference")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
