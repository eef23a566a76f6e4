"""Summaries of a finished run, read from its ``_manifest.json``, and a chart of it.

::

    python -m newsflow.report OUT_DIR                     # summary
    python -m newsflow.report OUT_DIR --chart run.png     # summary and a chart, never inside OUT_DIR unasked

The chart has three panels: documents per language (the largest languages, the rest as
"other"; kept and duplicates stacked), documents per publication day, week or month on a
time axis (the days holding 98% of the documents; outliers are counted in the title) and
rejects by reason.  Counts per
language and reason come from the manifest; per-day counts from the ``date`` partitions
of ``docs/`` and the ``published_at`` column of ``duplicates/`` (rejects have no date).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence
from typing import Any

from apache_beam.io.filesystems import FileSystems

from newsflow.io.write_tables import MANIFEST, join_path

__all__ = [
    "daily_counts",
    "day_window",
    "format_summary",
    "load_manifest",
    "main",
    "top_languages",
    "warning_lines",
    "write_chart",
]

TOP_LANGS = 15  # bars in the language panel, "other" included


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
    lines += _rows(
        [
            ("read", read),
            ("kept", c.get("kept", 0)),
            ("duplicates", c.get("duplicates", 0)),
            ("rejects", c.get("rejects", 0)),
            ("wall time", f"{wall:.1f} s ({rate})" if wall else "n/a"),
            ("tables", ", ".join(f"{manifest.get('output', '?')}/{t}/" for t in ("docs", "duplicates", "rejects"))),
            ("accounting", "ok: read = kept + duplicates + rejects" if manifest.get("accounting_ok") else "MISMATCH"),
        ]
    )
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
    return {
        "kept": _day_counts(f"{base}/docs", "date", partitioned=True),
        "duplicates": _day_counts(f"{base}/duplicates", "published_at", partitioned=False),
        "duplicates_by_lang": _day_counts(f"{base}/duplicates", "lang", partitioned=False),
    }


def top_languages(kept: dict[str, int], dups: dict[str, int], top: int = TOP_LANGS) -> list[tuple[str, int, int]]:
    """``(label, kept, duplicates)`` of the ``top`` largest languages, the rest summed as ``other (N)``."""
    langs = sorted(set(kept) | set(dups), key=lambda k: (-(kept.get(k, 0) + dups.get(k, 0)), k))
    rows = [(k, kept.get(k, 0), dups.get(k, 0)) for k in langs]
    if len(rows) <= top:
        return rows
    rest = rows[top - 1 :]
    other = (f"other ({len(rest)})", sum(r[1] for r in rest), sum(r[2] for r in rest))
    return rows[: top - 1] + [other]


def day_window(counts: dict[str, int], share: float = 0.98) -> tuple[str, str]:
    """The shortest run of days holding ``share`` of the dated documents (sparse outlier years left out)."""
    days = sorted(d for d, n in counts.items() if n > 0 and _as_date(d) is not None)
    if not days:
        return ("", "")
    total = sum(counts[d] for d in days)
    need = share * total
    best = (days[0], days[-1])
    best_span = _span(best)
    lo, acc = 0, 0
    for day in days:
        acc += counts[day]
        while acc - counts[days[lo]] >= need:
            acc -= counts[days[lo]]
            lo += 1
        if acc >= need and _span((days[lo], day)) < best_span:
            best, best_span = (days[lo], day), _span((days[lo], day))
    return best


def _as_date(day: str) -> dt.date | None:
    try:
        d = dt.date.fromisoformat(day)
    except ValueError:
        return None
    return d if d.year > 1 else None  # 0000-00-00 / 0001-01-01 mark unknown dates


def _span(window: tuple[str, str]) -> int:
    return (dt.date.fromisoformat(window[1]) - dt.date.fromisoformat(window[0])).days


def _bins(span_days: int) -> tuple[str, Any]:
    """Bin width for a time axis of ``span_days``: day up to 4 months, week up to 2 years, else month."""
    if span_days <= 120:
        return "day", lambda d: d
    if span_days <= 730:
        return "week", lambda d: d - dt.timedelta(days=d.weekday())
    return "month", lambda d: d.replace(day=1)


def write_chart(manifest: dict[str, Any], days: dict[str, dict[str, int]], path: str) -> str:
    """Draw documents per language, per publication day and rejects by reason into a PNG at ``path``.

    Readable on large runs: the ``TOP_LANGS`` largest languages and the rest as "other";
    a true time axis over the days holding 98% of the documents (binned by day, week or
    month for the span), with what falls outside named in the panel title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    c = manifest.get("counts", {})
    kept_lang: dict[str, int] = c.get("kept_by_lang", {})
    dup_lang: dict[str, int] = c.get("duplicates_by_lang") or days.get("duplicates_by_lang", {})
    fig, (ax_lang, ax_day, ax_rej) = plt.subplots(3, 1, figsize=(11, 12), gridspec_kw={"height_ratios": [4, 3, 2]})
    fig.suptitle(
        f"newsflow run {manifest.get('run_id', '?')}: read {c.get('read', 0):,}, kept {c.get('kept', 0):,}, "
        f"duplicates {c.get('duplicates', 0):,}, rejects {c.get('rejects', 0):,}"
    )
    # languages: horizontal bars, largest on top
    rows = top_languages(kept_lang, dup_lang)
    n_langs = len(set(kept_lang) | set(dup_lang))
    if rows:
        ys = list(range(len(rows)))[::-1]
        kept = [r[1] for r in rows]
        ax_lang.barh(ys, kept, label="kept", color="#4C72B0")
        if dup_lang:
            ax_lang.barh(ys, [r[2] for r in rows], left=kept, label="duplicates", color="#DD8452")
        ax_lang.set_yticks(ys, [r[0] for r in rows])
        for y, r in zip(ys, rows, strict=True):
            ax_lang.text(r[1] + r[2], y, f" {r[1] + r[2]:,}", va="center", fontsize=8)
        ax_lang.set_xlim(0, max(r[1] + r[2] for r in rows) * 1.12)
        ax_lang.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, fontsize=9, frameon=False)
    else:
        ax_lang.text(0.5, 0.5, "no documents kept", ha="center", va="center", transform=ax_lang.transAxes)
    shown = f" (largest {len(rows) - 1} of {n_langs}, the rest as other)" if len(rows) < n_langs else ""
    ax_lang.set_title(f"documents per language{shown}", loc="left")
    ax_lang.set_xlabel("documents")
    ax_lang.xaxis.set_major_locator(MaxNLocator(integer=True))
    # publication days: a time axis over the dense window
    k_all, d_all = days.get("kept", {}), days.get("duplicates", {})
    total = {d: k_all.get(d, 0) + d_all.get(d, 0) for d in set(k_all) | set(d_all)}
    first, last = day_window(total)
    if first:
        d0, d1 = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
        unit, bin_of = _bins((d1 - d0).days)
        k_bin: dict[dt.date, int] = {}
        d_bin: dict[dt.date, int] = {}
        outside = undated = 0
        for day, n in total.items():
            d = _as_date(day)
            if d is None:
                undated += n
                continue
            if not d0 <= d <= d1:
                outside += n
                continue
            b = bin_of(d)
            k_bin[b] = k_bin.get(b, 0) + k_all.get(day, 0)
            d_bin[b] = d_bin.get(b, 0) + d_all.get(day, 0)
        xs = sorted(set(k_bin) | set(d_bin))
        width = {"day": 0.9, "week": 6.0, "month": 27.0}[unit]
        kv = [k_bin.get(x, 0) for x in xs]
        ax_day.bar(xs, kv, width=width, align="edge" if unit != "day" else "center", label="kept", color="#4C72B0")
        if any(d_bin.values()):
            ax_day.bar(
                xs,
                [d_bin.get(x, 0) for x in xs],
                width=width,
                bottom=kv,
                align="edge" if unit != "day" else "center",
                label="duplicates",
                color="#DD8452",
            )
        locator = mdates.AutoDateLocator(minticks=4, maxticks=12)
        ax_day.xaxis.set_major_locator(locator)
        ax_day.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        pad = dt.timedelta(days=1 if unit == "day" else 7 if unit == "week" else 31)
        ax_day.set_xlim(bin_of(d0) - pad, d1 + pad)
        notes = []
        if outside:
            notes.append(f"{outside:,} outside {first}..{last} not shown")
        if undated:
            notes.append(f"{undated:,} with no valid date")
        ax_day.set_title(f"documents per publication {unit}" + (f" ({'; '.join(notes)})" if notes else ""), loc="left")
        ax_day.set_ylim(0, max(a + b for a, b in zip(kv, [d_bin.get(x, 0) for x in xs], strict=True)) * 1.18)
        ax_day.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, fontsize=9, frameon=False)
    else:
        ax_day.text(0.5, 0.5, "no dated documents", ha="center", va="center", transform=ax_day.transAxes)
        ax_day.set_title("documents per publication day", loc="left")
    ax_day.set_ylabel("documents")
    ax_day.yaxis.set_major_locator(MaxNLocator(integer=True))
    reasons = sorted(c.get("rejects_by_reason", {}).items(), key=lambda kv: (kv[1], kv[0]))
    if reasons:
        ax_rej.barh([r for r, _ in reasons], [n for _, n in reasons], color="#C44E52")
        for i, (_, n) in enumerate(reasons):
            ax_rej.text(n, i, f" {n:,}", va="center", fontsize=8)
        ax_rej.set_xlim(0, max(n for _, n in reasons) * 1.12)
    else:
        ax_rej.text(0.5, 0.5, "no rejects", ha="center", va="center", transform=ax_rej.transAxes)
    ax_rej.set_title(f"rejects by reason ({c.get('rejects', 0):,}; no publication day)", loc="left")
    ax_rej.set_xlabel("documents or files")
    ax_rej.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    with FileSystems.create(path) as fh:
        fig.savefig(fh, format="png", dpi=100)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Print the summary of an output folder, and its chart with ``--chart``; 2 with one error line if not one."""
    ap = argparse.ArgumentParser(prog="python -m newsflow.report", description="Summarize a newsflow output folder.")
    ap.add_argument("output", help="an output folder written by pipelines.ingest")
    ap.add_argument(
        "--chart",
        "--png",
        dest="chart",
        default=None,
        metavar="PATH",
        help="also draw the run as a PNG chart at PATH (local or gs://...); default: no chart",
    )
    args = ap.parse_args(argv)
    try:
        manifest = load_manifest(args.output)
    except FileNotFoundError as e:
        print(f"newsflow: error: {e}", file=sys.stderr)
        return 2
    print(format_summary(manifest))
    if args.chart:
        write_chart(manifest, daily_counts(args.output), args.chart)
        print(f"chart: {args.chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
