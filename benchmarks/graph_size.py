"""Size of Dedupe's part of the ingest graph: GroupByKeys and leaf transforms, with and without an index.

Usage::

    python benchmarks/graph_size.py

Counts the leaf transforms under the ``Dedupe`` step of the graph ``pipelines.ingest`` builds with the
built-in settings (``to_runner_api``, what every runner receives), and how many are GroupByKeys: as
Dataflow, Flink and Spark get it (``dedupe.group_parts`` 1) and as Beam's local runners, in-process and
Prism, get it (``group_parts`` auto: the two largest groupings in 4 parts each).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import tempfile
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability import common_urns

from newsflow.config import load_config
from pipelines.ingest import build_pipeline


def dedupe_graph_size(against: bool, group_parts: int = 1) -> dict[str, int]:
    """``{"group_by_keys", "leaf_transforms"}`` under Dedupe for the built-in settings and ``group_parts``."""
    cfg = load_config(None)
    cfg = dataclasses.replace(cfg, dedupe=dataclasses.replace(cfg.dedupe, group_parts=group_parts))
    with tempfile.TemporaryDirectory() as tmp:
        p = beam.Pipeline(options=PipelineOptions([]))
        build_pipeline(p, [f"{tmp}/in"], f"{tmp}/out", cfg, dedupe_against=[f"{tmp}/old"] if against else None)
        proto = p.to_runner_api()
    counts: collections.Counter[str] = collections.Counter()
    for t in proto.components.transforms.values():
        if t.subtransforms or not t.unique_name.startswith("Dedupe/"):
            continue
        counts["leaf_transforms"] += 1
        counts["group_by_keys"] += t.spec.urn == common_urns.primitives.GROUP_BY_KEY.urn
    return dict(counts)


def main(argv: Sequence[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    print("Dedupe graph                               GroupByKeys  leaf transforms")
    for parts, runner in ((1, "Dataflow, Flink, Spark"), (4, "local runners")):
        for against in (False, True):
            size = dedupe_graph_size(against, parts)
            label = f"{runner}, {'with --dedupe_against' if against else 'one run'}"
            print(f"{label:<43}{size['group_by_keys']:>11}  {size['leaf_transforms']:>15}")


if __name__ == "__main__":
    main()
