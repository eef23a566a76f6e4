"""Summaries of a finished run, read from its ``_manifest.json``, and a chart of it.

::

    python -m newsflow.report OUT_DIR                 # summary + OUT_DIR/_report.png
    python -m newsflow.report OUT_DIR --png run.png   # chart elsewhere
    python -m newsflow.report OUT_DIR --no-png        # summary only

The chart has three panels: documents per language (kept and duplicates stacked),
documents per publication day (kept and duplicates) and rejects by reason.  Counts per
language and reason come from the manifest; per-day counts from the ``date`` partitions
of ``docs/`` and the ``published_at`` column of ``duplicates/`` (rejects have no date).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from apache_beam.io.filesystems import FileSystems

from newsflow.io.write_tables import MANIFEST, join_path

__all__ = ["daily_counts", "format_summary", "load_manifest", "main", "warning_lines", "write_chart"]

REPORT_PNG = "_report.png"


def load_manifest(output: str) -> dict[str, Any]:
    """The manifest of the run that wrote ``output``."""
    path = join_path(output, MANIFEST)
    if not FileSystems.exists(path):
        raise FileNotFoundError(f"no {MANIFEST} in {output}: not a newsflow output, or the run did not finish")
    with FileSystems.open(path) as fh:
        return json.loads(fh.read().decode("utf-8"))


def _rows(pairs: list[tuple[str, Any]], indent: str = "  ") -> list[str]:
    width = max((len(k) for k, _ in pairs), default=0)
    return [f"{indent}{k:<{width}}  {v:>9,}" if isinstance(v, int) else f"{indent}{k:<{width}}  {v}" for k, v in pairs]


def format_summary(manifest: dict[str, Any]) -> str:
    """A short, aligned text summary of one run."""
    c = manifest.get("counts", {})
    read = c.get("read", 0)
    lines = [f"newsflow run {manifest.get('run_id', '?')} -> {manifest.get('output', '?')}"]
    wall = manifest.get("wall_seconds")
    rate = f"{read / wall:,.0f} docs/s" if wall else "n/a"
    lines += _rows([
        ("read", read),
        ("kept", c.get("kept", 0)),
        ("duplicates", c.get("duplicates", 0)),
        ("rejects", c.get("rejects", 0)),
        ("wall time", f"{wall:.1f} s ({rate})" if wall else "n/a"),
        ("tables", ", ".join(f"{manifest.get('output', '?')}/{t}/" for t in ("docs", "duplicates", "rejects"))),
        ("accounting", "ok: read = kept + duplicates + rejects" if manifest.get("accounting_ok") else "MISMATCH"),
    ])
    if c.get("duplicates_by_method"):
        lines.append("duplicates by method:")
        lines += _rows(sorted(c["duplicates_by_method"].items()))
    if c.get("rejects_by_reason"):
        lines.append("rejects by reason:")
        lines += _rows(sorted(c["rejects_by_reason"].items(), key=lambda kv: (-kv[1], kv[0])))
    if c.get("kept_by_lang"):
        lines.append("kept by language:")
        lines += _rows(sorted(c["kept_by_lang"].items(), key=lambda kv: (-kv[1], kv[0])))
    lines += warning_lines(manifest)
    return "\n".join(lines)


def warning_lines(manifest: dict[str, Any]) -> list[str]:
    """The summary's lines for the manifest's ``warnings`` (decisions that may be wrong); none when it has none."""
    warnings = manifest.get("warnings") or []
    if not warnings:
        return []
    lines = ["warnings (decisions that may be wrong):"]
    for w in warnings:
        lines.append(f"  {w.get('counter', '?')}: {int(w.get('count', 0)):,} - {w.get('meaning', '')}".rstrip(" -"))
    return lines


def _day_counts(dataset_path: str, column: str, partitioned: bool) -> dict[str, int]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    try:
        data = ds.dataset(dataset_path, format="parquet", partitioning="hive" if partitioned else None)
        table = data.to_table(columns=[column])
    except (FileNotFoundError, pa.ArrowInvalid, OSError):
        return {}
    col = table.column(column)
    if pa.types.is_timestamp(col.type):
        col = pc.strftime(col, format="%Y-%m-%d")
    col = pc.cast(col, pa.string())
    counts = pc.value_counts(col).to_pylist()
    return {str(x["values"]): int(x["counts"]) for x in counts if x["values"] is not None}


def daily_counts(output: str) -> dict[str, dict[str, int]]:
    """Counts read from the tables: ``kept`` and ``duplicates`` per publication day, ``duplicates_by_lang``."""
    base = output.rstrip("/")
    return {"kept": _day_counts(f"{base}/docs", "date", partitioned=True),
            "duplicates": _day_counts(f"{base}/duplicates", "published_at", partitioned=False),
            "duplicates_by_lang": _day_counts(f"{base}/duplicates", "lang", partitioned=False)}


def write_chart(manifest: dict[str, Any], days: dict[str, dict[str, int]], path: str) -> str:
    """Draw documents per language, per day and rejects by reason into a PNG at ``path``; returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    c = manifest.get("counts", {})
    kept_lang: dict[str, int] = c.get("kept_by_lang", {})
    dup_lang: dict[str, int] = c.get("duplicates_by_lang") or days.get("duplicates_by_lang", {})
    langs = sorted(set(kept_lang) | set(dup_lang), key=lambda k: (-(kept_lang.get(k, 0) + dup_lang.get(k, 0)), k))
    fig, (ax_lang, ax_day, ax_rej) = plt.subplots(3, 1, figsize=(10, 11), gridspec_kw={"height_ratios": [3, 3, 2]})
    fig.suptitle(f"newsflow run {manifest.get('run_id', '?')}: read {c.get('read', 0):,}, kept {c.get('kept', 0):,}, "
                 f"duplicates {c.get('duplicates', 0):,}, rejects {c.get('rejects', 0):,}")
    kept = [kept_lang.get(k, 0) for k in langs]
    ax_lang.bar(langs, kept, label="kept", color="#4C72B0")
    if dup_lang:
        ax_lang.bar(langs, [dup_lang.get(k, 0) for k in langs], bottom=kept, label="duplicates", color="#DD8452")
    ax_lang.set_title("documents per language: kept" + (" and duplicates" if dup_lang else ""))
    ax_lang.set_ylabel("documents")
    ax_lang.tick_params(axis="x", labelrotation=45)
    all_days = sorted(set(days.get("kept", {})) | set(days.get("duplicates", {})))
    if all_days:
        xs = range(len(all_days))
        k_day = [days.get("kept", {}).get(d, 0) for d in all_days]
        d_day = [days.get("duplicates", {}).get(d, 0) for d in all_days]
        ax_day.bar(xs, k_day, label="kept", color="#4C72B0")
        ax_day.bar(xs, d_day, bottom=k_day, label="duplicates", color="#DD8452")
        step = max(1, len(all_days) // 20)
        ax_day.set_xticks(list(xs)[::step], all_days[::step], rotation=45, ha="right")
    else:
        ax_day.text(0.5, 0.5, "no dated documents", ha="center", va="center", transform=ax_day.transAxes)
    ax_day.set_title("documents per publication day")
    ax_day.set_ylabel("documents")
    reasons = sorted(c.get("rejects_by_reason", {}).items(), key=lambda kv: (kv[1], kv[0]))
    if reasons:
        ax_rej.barh([r for r, _ in reasons], [n for _, n in reasons], color="#C44E52")
        for i, (_, n) in enumerate(reasons):
            ax_rej.text(n, i, f" {n:,}", va="center")
    else:
        ax_rej.text(0.5, 0.5, "no rejects", ha="center", va="center", transform=ax_rej.transAxes)
    ax_rej.set_title(f"rejects by reason ({c.get('rejects', 0):,}; no publication day)")
    ax_rej.set_xlabel("documents or files")
    for ax in (ax_lang, ax_day):
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.has_data():
            ax.set_ylim(0, ax.get_ylim()[1] * 1.18)  # headroom so the legend covers no bar
            ax.legend(loc="upper right", ncols=2, fontsize=9)
    ax_rej.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    with FileSystems.create(path) as fh:
        fig.savefig(fh, format="png", dpi=100)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Print the summary of an output folder and write its chart; 2 with one error line if it is not one."""
    ap = argparse.ArgumentParser(prog="python -m newsflow.report", description="Summarize a newsflow output folder.")
    ap.add_argument("output", help="an output folder written by pipelines.ingest")
    ap.add_argument("--png", default=None, help=f"where to write the chart (default: OUTPUT/{REPORT_PNG})")
    ap.add_argument("--no-png", action="store_true", help="print the summary only")
    args = ap.parse_args(argv)
    try:
        manifest = load_manifest(args.output)
    except FileNotFoundError as e:
        print(f"newsflow: error: {e}", file=sys.stderr)
        return 2
    print(format_summary(manifest))
    if not args.no_png:
        path = args.png or args.output.rstrip("/") + "/" + REPORT_PNG
        write_chart(manifest, daily_counts(args.output), path)
        print(f"chart: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
