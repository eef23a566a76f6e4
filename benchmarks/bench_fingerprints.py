"""CPU cost of the dedupe fingerprint functions per document, on MasakhaNEWS articles.

Times, per document and in CPU microseconds (``time.process_time``, best of ``--rounds``), the pure
functions the Dedupe transform calls for every text: :func:`exact_key` (exact groups),
:func:`line_keys` (boilerplate counting), :func:`text_fingerprint` (normalized lines, character
5-gram shingles, MinHash signature, bottom-k sketch, lede key) and, inside it,
:meth:`MinHasher.signature` alone; plus the sum of the first three (the fingerprint step).

Run: ``python benchmarks/bench_fingerprints.py [--docs 1200] [--rounds 3]`` (a few seconds).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_detect_lang import ALL_LANGS, load_texts  # noqa: E402
from newsflow.config import DedupeConfig  # noqa: E402
from newsflow.core.dedupe import (  # noqa: E402
    MinHasher,
    exact_key,
    line_keys,
    normalize_text,
    shingle_hashes,
    text_fingerprint,  # noqa: E402
)


def cpu_per_call(fn: Callable[[object], object], items: list, rounds: int) -> float:
    """Best-of-``rounds`` CPU seconds per item of ``fn`` over ``items``."""
    best = float("inf")
    for _ in range(rounds):
        c0 = time.process_time()
        for x in items:
            fn(x)
        best = min(best, (time.process_time() - c0) / len(items))
    return best


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default=os.environ.get("NEWSFLOW_SHARED", str(REPO.parent / "shared")))
    ap.add_argument("--docs", type=int, default=1200)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    texts = load_texts(Path(args.shared), args.docs, ALL_LANGS)
    cfg = DedupeConfig()
    hasher = MinHasher(cfg.num_perm, cfg.seed)
    normalize_text("warm up")  # the per-process punctuation tables
    print(f"{len(texts)} MasakhaNEWS texts (16 languages), mean {sum(map(len, texts)) / len(texts):.0f} chars")
    steps = {
        "exact_key": lambda t: exact_key(t),
        "line_keys": lambda t: line_keys(t),
        "text_fingerprint": lambda t: text_fingerprint(t, cfg, None, hasher),
    }
    total = 0.0
    for name, fn in steps.items():
        sec = cpu_per_call(fn, texts, args.rounds)
        total += sec
        print(f"{name:<18} {sec * 1e6:8.0f} CPU us/doc")
    shingles = [shingle_hashes(normalize_text(t), cfg.shingle, cfg.shingle_size) for t in texts]
    print(f"{'  signature':<18} {cpu_per_call(hasher.signature, shingles, args.rounds) * 1e6:8.0f} CPU us/doc")
    print(f"{'fingerprint step':<18} {total * 1e6:8.0f} CPU us/doc ({3600 / total:,.0f} docs per vCPU-hour)")


if __name__ == "__main__":
    main()
