"""Bytes and elements each grouping of an ingest run shuffles: the second part of a Dataflow bill.

Usage::

    python benchmarks/shuffle_bytes.py --input DUMP [--config FILE] [--top 20]

Runs ``pipelines.ingest``'s graph on Beam's in-process runner (one process) and reads the runner's
per-collection counters: elements, and the sampled encoded size of an element (Beam samples sizes, so bytes are
the sampled mean times the element count: an estimate). A grouping's input is what a distributed runner writes
to its shuffle (Dataflow Shuffle bills it per GB), so the script prints, per ``GroupByKey``, those elements and
bytes, largest first, and the total against the dump's size. Byte counts are the encoded elements as the Python
SDK writes them; a runner adds its own framing.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import apache_beam as beam  # noqa: E402
from apache_beam.metrics import monitoring_infos  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402
from apache_beam.portability import common_urns  # noqa: E402
from apache_beam.runners.portability.fn_api_runner import FnApiRunner  # noqa: E402

from newsflow.config import load_config  # noqa: E402
from pipelines.ingest import build_pipeline  # noqa: E402

_ELEMENTS = common_urns.monitoring_info_specs.ELEMENT_COUNT.spec.urn
_SIZES = common_urns.monitoring_info_specs.SAMPLED_BYTE_SIZE.spec.urn
_GBK = common_urns.primitives.GROUP_BY_KEY.urn


def grouping_inputs(result: beam.runners.runner.PipelineResult, proto: object) -> dict[str, tuple[int, float]]:
    """Per GroupByKey (its full label): (elements, estimated bytes) of its input, from a finished run's counters."""
    counts: collections.Counter[str] = collections.Counter()
    sampled: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    for infos in result._monitoring_infos_by_stage.values():  # the in-process runner's counters per stage
        for mi in infos:
            pcoll = mi.labels.get("PCOLLECTION")
            if pcoll is None:
                continue
            if mi.urn == _ELEMENTS:
                counts[pcoll] += monitoring_infos.extract_counter_value(mi)
            elif mi.urn == _SIZES:
                n, total = monitoring_infos.extract_distribution(mi)[:2]
                sampled[pcoll][0] += n
                sampled[pcoll][1] += total
    out = {}
    for t in proto.components.transforms.values():  # type: ignore[attr-defined]
        if t.spec.urn != _GBK:
            continue
        (pcoll,) = t.inputs.values()
        n, total = sampled.get(pcoll, (0, 0.0))
        out[t.unique_name] = (counts[pcoll], total / n * counts[pcoll] if n else 0.0)
    return out


def _dump_bytes(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", required=True, help="a dump (folder or file)")
    ap.add_argument("--config", default=None, help="settings file (default: the built-in settings)")
    ap.add_argument("--top", type=int, default=20, help="groupings listed (the rest are summed)")
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    with tempfile.TemporaryDirectory(prefix="newsflow-shuffle-") as tmp:
        p = beam.Pipeline(runner=FnApiRunner(), options=PipelineOptions([]))
        build_pipeline(p, [args.input], os.path.join(tmp, "out"), cfg, run_id="shuffle-bytes")
        result = p.run()
        result.wait_until_finish()
        groups = grouping_inputs(result, p.to_runner_api())
    ranked = sorted(groups.items(), key=lambda kv: -kv[1][1])
    dump_mb = _dump_bytes(args.input) / 1e6
    total_mb = sum(b for _, b in groups.values()) / 1e6
    print(f"{'MB':>9} {'elements':>10}  grouping (its input)")
    for name, (n, b) in ranked[: args.top]:
        print(f"{b / 1e6:>9.1f} {n:>10,}  {name}")
    rest = ranked[args.top :]
    if rest:
        print(f"{sum(b for _, (_, b) in rest) / 1e6:>9.1f} {sum(n for _, (n, _) in rest):>10,}  ({len(rest)} others)")
    print(
        f"shuffled {total_mb:,.0f} MB in {len(groups)} groupings, {sum(n for n, _ in groups.values()):,} elements; "
        f"the dump is {dump_mb:,.1f} MB ({total_mb / dump_mb:.1f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
