"""Summaries of a finished run, read from its ``_manifest.json``.

::

    python -m newsflow.report OUT_DIR
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from apache_beam.io.filesystems import FileSystems

__all__ = ["format_summary", "load_manifest", "main"]


def load_manifest(output: str) -> dict[str, Any]:
    """The manifest of the run that wrote ``output``."""
    path = output.rstrip("/") + "/_manifest.json"
    if not FileSystems.exists(path):
        raise FileNotFoundError(f"no _manifest.json in {output}: not a newsflow output, or the run did not finish")
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
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m newsflow.report", description="Summarize a newsflow output folder.")
    ap.add_argument("output", help="an output folder written by pipelines.ingest")
    args = ap.parse_args(argv)
    try:
        manifest = load_manifest(args.output)
    except FileNotFoundError as e:
        print(f"newsflow: error: {e}", file=sys.stderr)
        return 2
    print(format_summary(manifest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
