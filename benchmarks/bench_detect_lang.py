"""Throughput of DetectLang (docs/s) against calling fastText directly on the same texts, same run.

Texts are MasakhaNEWS articles read by path (``--shared``, default ``$NEWSFLOW_SHARED`` or ``../shared``),
a mix of the languages in the corpus. Three figures are printed:

* ``fasttext``: ``model.predict(text.replace("\\n", " "), k=2)`` per text, the floor any wrapper pays;
* ``detect``: :func:`newsflow.core.lang.detect` per text (text preparation + the decision rule), with the
  second model (the default) and without it (``second_model: none``), in microseconds per document, and the
  share of texts that needed the second model's prediction; CPU microseconds per document with the second
  model, on the first pass (each word's vector fetched from fastText once) and with the word cache filled;
* ``detect hard``: the same on the texts that go through the chunk rule (plain answer under ``trust_score``);
* ``DetectLang``: the Beam transform on the DirectRunner, end to end including pipeline start-up
  (``--no-beam`` skips it).

Run: ``python benchmarks/bench_detect_lang.py [--docs 800] [--langs all]`` (well under a minute by default).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import apache_beam as beam  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402

from newsflow.config import LangConfig  # noqa: E402
from newsflow.core.lang import LangModel, detect, needs_second, prepare_text  # noqa: E402
from newsflow.schema import make_doc  # noqa: E402
from newsflow.transforms.detect_lang import DetectLang, detect_options, load_second  # noqa: E402

LANGS = ["eng", "fra", "swa", "som", "yor", "amh", "hau", "pcm"]
ALL_LANGS = [*LANGS, "ibo", "lin", "lug", "orm", "run", "sna", "tir", "xho"]


def load_texts(shared: Path, n: int, langs: list[str] = LANGS) -> list[str]:
    """Up to ``n`` MasakhaNEWS article texts, taken round-robin over ``langs``."""
    csv.field_size_limit(sys.maxsize)
    per_lang = []
    for lang in langs:
        with open(shared / "corpora" / "masakhanews" / lang / "test.tsv", encoding="utf-8", newline="") as fh:
            per_lang.append([row["text"] for row in csv.DictReader(fh, delimiter="\t")])
    texts: list[str] = []
    i = 0
    while len(texts) < n and any(i < len(x) for x in per_lang):
        texts.extend(x[i] for x in per_lang if i < len(x))
        i += 1
    return texts[:n]


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default=os.environ.get("NEWSFLOW_SHARED", str(REPO.parent / "shared")))
    ap.add_argument("--docs", type=int, default=800)
    ap.add_argument("--langs", default="default", help="default (8 languages) or all (the 16 of MasakhaNEWS)")
    ap.add_argument("--no-beam", action="store_true", help="skip the DirectRunner measurement")
    ap.add_argument("--rounds", type=int, default=3, help="alternating timing rounds (the best of each is printed)")
    args = ap.parse_args(argv)
    texts = load_texts(Path(args.shared), args.docs, ALL_LANGS if args.langs == "all" else LANGS)
    cfg = LangConfig()
    model = LangModel(cfg.model_path, cfg.label_map)
    second = load_second(cfg)
    chars = sum(len(t) for t in texts)
    print(f"{len(texts)} MasakhaNEWS texts, mean {chars / len(texts):.0f} chars")

    t0 = time.perf_counter()
    for t in texts:
        model.model.predict(t.replace("\n", " "), k=2)
    raw = len(texts) / (time.perf_counter() - t0)

    options = detect_options(cfg)
    c0 = time.process_time()
    for t in texts:  # fill the word cache, so the two timings below see the same state
        detect(t, model, second=second, **options)
    cold_cpu = (time.process_time() - c0) / len(texts)  # a fresh model: every word vector fetched once
    alone = both = both_cpu = float("inf")
    for _ in range(args.rounds):  # alternate, keep each setting's best round: the machine may be shared
        t0 = time.perf_counter()
        for t in texts:
            detect(t, model, **options)
        alone = min(alone, (time.perf_counter() - t0) / len(texts))
        t0, c0 = time.perf_counter(), time.process_time()
        for t in texts:
            detect(t, model, second=second, **options)
        both = min(both, (time.perf_counter() - t0) / len(texts))
        both_cpu = min(both_cpu, (time.process_time() - c0) / len(texts))
    core = 1 / both
    asked = 0
    if second is not None:
        first_only = {k: v for k, v in options.items() if k != "second_rule"}
        for t in texts:
            if len(prepare_text(t, cfg.max_chars)) < max(cfg.min_chars, 1):
                continue  # too short: und before any model
            first = detect(t, model, **first_only)
            asked += needs_second(first, cfg.trust_score, options["second_rule"])

    hard = [t for t in texts if model.top_probs(prepare_text(t, cfg.max_chars)).max() < cfg.trust_score]
    t0 = time.perf_counter()
    for t in hard:
        detect(t, model, second=second, **options)
    core_hard = len(hard) / (time.perf_counter() - t0)
    print(f"detect     {alone * 1e6:9.0f} us/doc  lid.176 alone (second_model: none), best of {args.rounds}")
    print(f"detect     {both * 1e6:9.0f} us/doc  with the second model ({asked} of {len(texts)} texts asked it)")
    print(f"detect     {both_cpu * 1e6:9.0f} CPU us/doc  with the second model, word cache filled")
    print(f"detect     {cold_cpu * 1e6:9.0f} CPU us/doc  with the second model, first pass (word cache empty)")

    print(f"fasttext   {raw:9.0f} docs/s  (direct predict, k=2)")
    print(f"detect     {core:9.0f} docs/s  ratio to fasttext {core / raw:.2f}")
    print(f"  hard     {core_hard:9.0f} docs/s  ratio to fasttext {core_hard / raw:.2f}  ({len(hard)} chunk rule)")
    if args.no_beam:
        return
    docs = [make_doc(doc_id=str(i), text=t) for i, t in enumerate(texts)]
    t0 = time.perf_counter()
    with beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"])) as p:
        _ = p | beam.Create(docs) | DetectLang(cfg) | beam.combiners.Count.Globally()
    beam_rate = len(texts) / (time.perf_counter() - t0)
    print(f"DetectLang {beam_rate:9.0f} docs/s  ratio to fasttext {beam_rate / raw:.2f}  (DirectRunner, with start-up)")


if __name__ == "__main__":
    main()
