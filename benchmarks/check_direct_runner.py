"""Does this Beam version's local multi-process runner deliver every element of a large join?

A plain Beam pipeline (no newsflow code): ``--nodes`` keys, each with ``--partners`` partner
keys (grouped once, as LSH buckets are) and a payload of ``--payload`` bytes; each key's
payload is sent to its partners and must arrive next to the partner's own payload. Counters
report how many (partner, payload) elements were sent and how many arrived. Both numbers
must be equal; the script exits with status 1 when they are not. Two shapes:

- ``--join cogroup`` (default): two CoGroupByKeys, as Dedupe's sketch check was built before
  it was rewritten: each CoGroupByKey is a Flatten of two inputs and a GroupByKey.
- ``--join groupbykey``: plain GroupByKeys of one input each, as Dedupe's sketch check is now
  built: the payload rides the first grouping (under its own key here; in a shard there), then is sent on.

Run it once per Beam upgrade before trusting ``--direct_running_mode=multi_processing``
with real data::

    python benchmarks/check_direct_runner.py                       # 2 processes (about a minute)
    python benchmarks/check_direct_runner.py --join groupbykey
    python benchmarks/check_direct_runner.py --mode in_memory       # the one-process reference
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

_NS = "check_direct_runner"


def partners_of(key: int, nodes: int, partners: int) -> Iterator[tuple[int, int]]:
    """(key, partner) pairs: ``partners`` distinct partners per key, spread over all keys."""
    for j in range(1, partners + 1):
        yield key, (key * 7 + j * 13) % nodes


def _send(kv: tuple[int, dict[str, list[Any]]]) -> Iterator[tuple[int, tuple[int, bytes]]]:
    key, g = kv
    if not g["payload"]:
        Metrics.counter(_NS, "payload_missing").inc()
        return
    for partner in sorted(set(g["pairs"])):
        Metrics.counter(_NS, "sent").inc()
        yield partner, (key, g["payload"][0])


def _arrive(kv: tuple[int, dict[str, list[Any]]]) -> None:
    _, g = kv
    Metrics.counter(_NS, "arrived").inc(len(list(g["left"])))


def _self_and_pairs(key: int, nodes: int, partners: int, pad: bytes) -> Iterator[tuple[int, Any]]:
    """One input for the first grouping: the key's own payload (bytes) and its partners (ints)."""
    yield key, pad + str(key).encode()
    for _, partner in partners_of(key, nodes, partners):
        yield key, partner


def _send_own(kv: tuple[int, Any]) -> Iterator[tuple[int, tuple[int | None, bytes]]]:
    key, values = kv
    values = list(values)
    own = [v for v in values if isinstance(v, bytes)]
    if not own:
        Metrics.counter(_NS, "payload_missing").inc()
        return
    yield key, (None, own[0])
    for partner in sorted({v for v in values if not isinstance(v, bytes)}):
        Metrics.counter(_NS, "sent").inc()
        yield partner, (key, own[0])


def _arrive_own(kv: tuple[int, Any]) -> None:
    _, values = kv
    Metrics.counter(_NS, "arrived").inc(sum(1 for sender, _ in values if sender is not None))


def run(nodes: int, partners: int, payload: int, options: list[str], join: str = "cogroup") -> dict[str, int]:
    """Run the join; returns the counters ``sent`` and ``arrived`` (and ``payload_missing`` if any)."""
    pad = b"x" * payload
    p = beam.Pipeline(options=PipelineOptions(options))
    keys = (
        p
        | "Starts" >> beam.Create(list(range(0, nodes, 1000)))
        | "Keys" >> beam.FlatMap(lambda s: range(s, min(s + 1000, nodes)))
        | "Spread" >> beam.Reshuffle()
    )
    if join == "groupbykey":
        _ = (
            keys
            | "SelfAndPairs" >> beam.FlatMap(_self_and_pairs, nodes, partners, pad)
            | "GroupByNode" >> beam.GroupByKey()
            | "Send" >> beam.FlatMap(_send_own)
            | "GroupByPartner" >> beam.GroupByKey()
            | "Arrive" >> beam.Map(_arrive_own)
        )
        return _counters(p)
    payloads = keys | "Payload" >> beam.Map(lambda k: (k, pad + str(k).encode()))
    pairs = (  # as in Dedupe, the pairs come out of a GroupByKey (its LSH buckets)
        keys
        | "Pairs" >> beam.FlatMap(partners_of, nodes, partners)
        | "Group" >> beam.GroupByKey()
        | "Ungroup" >> beam.FlatMap(lambda kv: [(kv[0], b) for b in sorted(set(kv[1]))])
    )
    left = {"pairs": pairs, "payload": payloads} | "JoinLeft" >> beam.CoGroupByKey() | "Send" >> beam.FlatMap(_send)
    _ = {"left": left, "payload": payloads} | "JoinRight" >> beam.CoGroupByKey() | "Arrive" >> beam.Map(_arrive)
    return _counters(p)


def _counters(p: beam.Pipeline) -> dict[str, int]:
    result = p.run()
    result.wait_until_finish()
    return {c.key.metric.name: int(c.committed) for c in result.metrics().query()["counters"]}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=50_000)
    ap.add_argument("--partners", type=int, default=10)
    ap.add_argument("--payload", type=int, default=1000, help="payload bytes per key (a sketch is about 1 KB)")
    ap.add_argument("--mode", default="multi_processing", choices=["multi_processing", "in_memory"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--join",
        default="cogroup",
        choices=["cogroup", "groupbykey"],
        help="two CoGroupByKeys (Flatten + GroupByKey each) or plain one-input GroupByKeys",
    )
    args = ap.parse_args(argv)
    several = args.mode == "multi_processing"
    workers = args.workers if several else 1
    options = [f"--direct_running_mode={args.mode}", f"--direct_num_workers={workers}"] if several else []
    got = run(args.nodes, args.partners, args.payload, options, args.join)
    sent, arrived = got.get("sent", 0), got.get("arrived", 0)
    expected = args.nodes * args.partners
    print(
        f"{args.mode} x{workers}, {args.join}: expected {expected}, sent {sent}, arrived {arrived}"
        f" ({'all delivered' if arrived == sent == expected else f'{sent - arrived} lost'})"
    )
    return 0 if arrived == sent == expected else 1


if __name__ == "__main__":
    sys.exit(main())
