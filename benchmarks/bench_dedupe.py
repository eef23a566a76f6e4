"""Benchmark of Dedupe: signature throughput, Beam vs an in-process reference, growth 1x -> 5x.

Builds Doc dicts straight from MasakhaNEWS (no dump parsing, so only dedupe is timed),
copies a share of them the way republished news is copied (exact copies, typography
edits, abridged copies, OCR-style noise), then reports:

1. signature throughput: normalize + shingle + MinHash, documents/s on one core;
2. end-to-end time of the ``Dedupe`` PTransform on the DirectRunner next to
   :func:`reference_dedupe`, a plain-Python/numpy run of the same algorithm in
   the same process (exact groups, signatures, LSH buckets, verification,
   union-find), with the ratio; the two must give the same clusters;
3. time and peak memory (RSS of this process, sampled) at 1x and ``--scale``x
   the corpus (the extra copies are new articles made of shuffled sentences).

Run (a few minutes on 2 cores)::

    python benchmarks/bench_dedupe.py --masakhane ../shared/corpora/masakhanews [--scale 5] [--langs eng,fra]
    python benchmarks/bench_dedupe.py --heldout   # quality on held-out style copies (about 1 minute)
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from newsflow.config import DedupeConfig  # noqa: E402
from newsflow.core.dedupe import (  # noqa: E402
    MinHasher,
    dedupe,
    normalize_text,
    shingle_hashes,
)

__all__ = ["heldout_report", "load_articles", "make_docs", "make_heldout", "ocr_noise", "reference_dedupe"]


# ---------------------------------------------------------------------------- corpus


def load_articles(masakhane: str, langs: Sequence[str]) -> list[tuple[str, str]]:
    """(lang, text) of the MasakhaNEWS articles of ``langs`` (dev + test)."""
    csv.field_size_limit(sys.maxsize)
    out = []
    for lang in langs:
        for split in ("dev", "test"):
            path = os.path.join(masakhane, lang, f"{split}.tsv")
            if not os.path.exists(path):
                continue
            with open(path, newline="", encoding="utf-8") as fh:
                for row in csv.DictReader(fh, delimiter="\t"):
                    text = (row.get("text") or "").strip()
                    if sum(c.isalpha() for c in text) >= 20:
                        out.append((lang, text))
    return out


_OCR_SWAPS = {
    "m": "rn",
    "l": "1",
    "o": "0",
    "e": "c",
    "i": "l",
    "a": "o",
    "s": "5",
    "b": "h",
    "n": "u",
    "t": "f",
    "h": "b",
    "c": "e",
    "u": "v",
    "g": "q",
}


def ocr_noise(text: str, rate: float, rng: random.Random) -> str:
    """Character noise like a bad scan: look-alike swaps, dropped and doubled letters at ``rate`` per letter."""
    out = []
    for ch in text:
        if ch.isalpha() and rng.random() < rate:
            u = rng.random()
            low = ch.lower()
            if u < 0.6 and low in _OCR_SWAPS:
                out.append(_OCR_SWAPS[low])
            elif u < 0.8:
                continue
            else:
                out.append(ch + ch)
        else:
            out.append(ch)
    return "".join(out)


def _sentences(text: str) -> list[str]:
    out, cur = [], []
    for tok in text.replace("\n", " \n ").split(" "):
        cur.append(tok)
        if tok.endswith((".", "!", "?")) or tok == "\n":
            out.append(" ".join(cur).strip())
            cur = []
    if cur:
        out.append(" ".join(cur).strip())
    return [s for s in out if s]


def make_docs(
    articles: Sequence[tuple[str, str]], scale: int = 1, seed: int = 1, copy_rate: float = 0.15
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Doc dicts plus the true cluster of each doc_id.

    ``copy_rate`` of the articles get one copy: exact, typography-edited,
    abridged (first half to two thirds) or OCR-noised (3% of letters).  With
    ``scale`` > 1, ``scale - 1`` further rounds of new articles are made by
    shuffling sentences across articles of the same language (each taking at
    most a third of its text from any one article), then copied the same way.
    """
    rng = random.Random(seed)
    docs: list[dict[str, Any]] = []
    truth: dict[str, str] = {}
    t0 = 1_717_200_000

    def add(text: str, lang: str, cluster: str) -> None:
        i = len(docs)
        doc_id = f"b{i:07d}"
        docs.append(
            {
                "doc_id": doc_id,
                "source_path": f"bench/{i // 100:05d}.txt",
                "doc_index": i % 100,
                "published_at": t0 + rng.randrange(60 * 86400),
                "published_at_utc": None,
                "collected_at": None if rng.random() < 0.05 else t0 + rng.randrange(60 * 86400),
                "text": text,
                "hashtags_raw": [],
                "hashtags": [],
                "lang": lang,
                "lang_score": 1.0,
                "lang_alt": None,
                "lang_alt_score": None,
                "invalid_bytes": 0,
            }
        )
        truth[doc_id] = cluster

    def with_copy(text: str, lang: str, cluster: str) -> None:
        add(text, lang, cluster)
        u = rng.random()
        if u >= copy_rate:
            return
        kind = rng.randrange(4)
        if kind == 0:
            add(text, lang, cluster)
        elif kind == 1:
            add("\u201c" + text.replace(" - ", " \u2013 ").replace("'", "\u2019").upper() + "\u201d", lang, cluster)
        elif kind == 2 and len(text) > 1500:
            sents = _sentences(text)
            add(" ".join(sents[: max(1, int(len(sents) * rng.uniform(0.5, 0.7)))]), lang, cluster)
        else:
            add(ocr_noise(text, 0.03, rng), lang, cluster)

    for k, (lang, text) in enumerate(articles):
        with_copy(text, lang, f"a{k}")
    by_lang: dict[str, list[str]] = defaultdict(list)
    for lang, text in articles:
        by_lang[lang].extend(s for s in _sentences(text) if 15 <= len(s) <= 600)
    for r in range(2, scale + 1):
        for k, (lang, text) in enumerate(articles):
            pool = by_lang[lang]
            n = max(3, len(_sentences(text)))
            picked = [pool[rng.randrange(len(pool))] for _ in range(n)]
            with_copy(" ".join(picked), lang, f"s{r}-{k}")
    return docs, truth


def make_heldout(
    articles: Sequence[tuple[str, str]], seed: int = 7, limit: int = 3000, ocr_rate: float = 0.10
) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, str]]:
    """A check built like real republished news that the dump generator does not make.

    Articles are grouped 12 to a "site"; half of the sites wrap every article in
    their own boilerplate (0-2 header lines, 2-6 footer lines taken from other
    articles), which makes hard negatives. 30% of the articles get one copy:
    abridged (first 30-70% of the sentences), OCR-noised (``ocr_rate`` of the
    letters: copies then share about a third of their word 3-grams), re-led (first
    sentence replaced) or copy-edited (one word in 25 changed). Returns the docs,
    the true cluster of each doc_id and the kind of each doc ("orig" or the edit).
    """
    rng = random.Random(seed)
    arts = list(articles)
    rng.shuffle(arts)
    arts = arts[:limit]
    docs: list[dict[str, Any]] = []
    truth: dict[str, str] = {}
    kinds: dict[str, str] = {}
    pool = [s for _, t in arts for s in _sentences(t) if 60 <= len(s) <= 160]

    def add(text: str, lang: str, cluster: str, kind: str) -> None:
        i = len(docs)
        doc_id = f"h{i:06d}"
        docs.append(
            {
                "doc_id": doc_id,
                "source_path": "heldout",
                "doc_index": i,
                "text": text,
                "lang": lang,
                "published_at": 1_717_000_000 + rng.randrange(10**6),
                "collected_at": None,
            }
        )
        truth[doc_id] = cluster
        kinds[doc_id] = kind

    sites: dict[int, tuple[list[str], list[str]]] = {}
    for k, (lang, text) in enumerate(arts):
        site = k // 12
        if site not in sites:
            if rng.random() < 0.5:
                sites[site] = (
                    [pool[rng.randrange(len(pool))] for _ in range(rng.randint(0, 2))],
                    [pool[rng.randrange(len(pool))] for _ in range(rng.randint(2, 6))],
                )
            else:
                sites[site] = ([], [])
        head, foot = sites[site]

        def wrap(body: str, head: list[str] = head, foot: list[str] = foot) -> str:
            return "\n".join([*head, body, *foot])

        add(wrap(text), lang, f"a{k}", "orig")
        if rng.random() >= 0.3:
            continue
        kind = rng.choice(["abridged", "ocr", "relead", "copyedit"])
        sents = _sentences(text)
        if kind == "abridged" and len(sents) >= 3:
            add(wrap(" ".join(sents[: max(1, int(len(sents) * rng.uniform(0.3, 0.7)))])), lang, f"a{k}", kind)
        elif kind == "ocr":
            add(wrap(ocr_noise(text, ocr_rate, rng)), lang, f"a{k}", kind)
        elif kind == "relead" and len(sents) >= 3:
            add(wrap(" ".join([pool[rng.randrange(len(pool))], *sents[1:]])), lang, f"a{k}", kind)
        elif kind == "copyedit" and len(sents) >= 3:
            words = " ".join(sents).split(" ")
            for _ in range(max(1, len(words) // 25)):
                j = rng.randrange(len(words))
                words[j] = rng.choice(["the", "a", "said", "new", words[j].upper()])
            add(wrap(" ".join(words)), lang, f"a{k}", kind)
    return docs, truth, kinds


def heldout_report(masakhane: str, cfg: DedupeConfig, label: str = "defaults") -> None:
    """Print P/R/ARI and per-edit recall of :func:`reference_dedupe` on :func:`make_heldout`."""
    arts = load_articles(masakhane, ["eng", "fra", "swa", "hau", "som", "pcm", "yor"])
    docs, truth, kinds = make_heldout(arts)
    removed = reference_dedupe(docs, cfg)
    sc = pair_scores(truth, removed)
    members: dict[str, list[str]] = defaultdict(list)
    for d in docs:
        members[truth[d["doc_id"]]].append(d["doc_id"])
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for ids in members.values():
        if len(ids) == 2:
            kind = kinds[ids[1]]
            found[kind][1] += 1
            found[kind][0] += removed.get(ids[0], (ids[0],))[0] == removed.get(ids[1], (ids[1],))[0]
    per = ", ".join(f"{k} {a}/{n}" for k, (a, n) in sorted(found.items()))
    print(
        f"held-out style ({label}): {len(docs)} docs | P {sc['precision']:.4f} R {sc['recall']:.4f} "
        f"ARI {sc['ari']:.4f} | copies found: {per}"
    )


# ---------------------------------------------------------------------------- reference


def reference_dedupe(docs: Iterable[dict[str, Any]], cfg: DedupeConfig) -> dict[str, tuple[str, str]]:
    """doc_id -> (kept_id, method) for every document the reference (:func:`newsflow.core.dedupe.dedupe`) removes."""
    return {r["doc_id"]: (r["kept_id"], r["method"]) for r in dedupe(docs, cfg).duplicates}


def pair_scores(truth: dict[str, str], removed: dict[str, tuple[str, str]]) -> dict[str, float]:
    """Pairwise precision/recall and ARI of predicted clusters (kept_id) against true clusters."""
    from collections import Counter
    from math import comb

    pred = {d: removed.get(d, (d, ""))[0] for d in truth}
    cont = Counter((truth[d], pred[d]) for d in truth)
    g = Counter(truth.values())
    p = Counter(pred.values())
    s = sum(comb(v, 2) for v in cont.values())
    a = sum(comb(v, 2) for v in g.values())
    b = sum(comb(v, 2) for v in p.values())
    total = comb(len(truth), 2)
    exp = a * b / total if total else 0.0
    ari = (s - exp) / ((a + b) / 2 - exp) if (a + b) / 2 != exp else 1.0
    return {"precision": s / b if b else 1.0, "recall": s / a if a else 1.0, "ari": ari}


# ---------------------------------------------------------------------------- measuring


class _PeakRss:
    """Samples this process's resident memory every 50 ms (ru_maxrss never goes down)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> int:
        try:
            with open("/proc/self/statm") as fh:
                return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.05)

    def __enter__(self) -> _PeakRss:
        self.base = self._rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_beam(docs: list[dict[str, Any]], cfg: DedupeConfig) -> dict[str, tuple[str, str]]:
    """Dedupe on the DirectRunner (in-process); returns doc_id -> (kept_id, method).

    The documents are handed over as pickle files read by the pipeline (as a dump
    would be), not through ``beam.Create``, which would pickle and bz2-compress
    the whole corpus into the pipeline graph (13 of 53 s at 2x).
    """
    import pickle
    import tempfile

    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from newsflow.transforms.dedupe import Dedupe

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "dups")
        parts = []
        for start in range(0, len(docs), 500):
            parts.append(os.path.join(tmp, f"docs-{start:08d}.pkl"))
            with open(parts[-1], "wb") as fh:
                pickle.dump(docs[start : start + 500], fh)
        with beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"])) as p:
            res = (
                p
                | beam.Create(parts, reshuffle=False)
                | beam.FlatMap(lambda path: pickle.load(open(path, "rb")))  # noqa: SIM115
                | Dedupe(cfg)
            )
            (
                res.duplicates
                | beam.Map(lambda r: f"{r['doc_id']}\t{r['kept_id']}\t{r['method']}")
                | beam.io.WriteToText(out)
            )
        found = {}
        for name in os.listdir(tmp):
            if name.startswith("dups"):
                with open(os.path.join(tmp, name), encoding="utf-8") as fh:
                    for line in fh:
                        d, k, m = line.rstrip("\n").split("\t")
                        found[d] = (k, m)
    return found


def signature_throughput(docs: list[dict[str, Any]], cfg: DedupeConfig) -> float:
    """Documents per second (one core) for normalize + shingle + MinHash."""
    mh = MinHasher(cfg.num_perm, cfg.seed)
    t = time.perf_counter()
    for d in docs:
        mh.signature(shingle_hashes(normalize_text(d["text"]), cfg.shingle, cfg.shingle_size))
    return len(docs) / (time.perf_counter() - t)


def main(argv: Sequence[str] | None = None) -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--masakhane", default=os.path.join(here, "..", "..", "shared", "corpora", "masakhanews"))
    ap.add_argument("--langs", default="eng,som", help="MasakhaNEWS language folders (comma-separated)")
    ap.add_argument("--scale", type=int, default=5, help="largest corpus size, as a multiple of the base")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--heldout",
        action="store_true",
        help="only the held-out style quality check (abridged/OCR/re-lead/copy-edit copies, boilerplate)",
    )
    args = ap.parse_args(argv)
    cfg = DedupeConfig()
    if args.heldout:
        heldout_report(args.masakhane, cfg)
        heldout_report(
            args.masakhane,
            DedupeConfig(shingle="word", verification="none", lede_chars=0, boilerplate_min_docs=0),
            "plain MinHash LSH, word 5-grams",
        )
        return
    articles = load_articles(args.masakhane, args.langs.split(","))
    docs, truth = make_docs(articles, 1, args.seed)
    chars = sum(len(d["text"]) for d in docs) / len(docs)
    print(f"corpus 1x: {len(docs)} docs, {chars:.0f} chars/doc ({args.langs})")
    normalize_text("warm-up")  # builds the punctuation table once
    rate = signature_throughput(docs, cfg)
    print(
        f"signatures: {rate:,.0f} docs/s on one core (num_perm={cfg.num_perm}, {cfg.shingle} {cfg.shingle_size}-grams)"
    )
    rows = []
    for scale in sorted({1, args.scale}):
        sdocs, struth = make_docs(articles, scale, args.seed) if scale > 1 else (docs, truth)
        with _PeakRss() as mem_ref:
            t = time.perf_counter()
            ref = reference_dedupe(sdocs, cfg)
            t_ref = time.perf_counter() - t
        with _PeakRss() as mem_beam:
            t = time.perf_counter()
            got = run_beam(sdocs, cfg)
            t_beam = time.perf_counter() - t
        same = got == ref
        sc = pair_scores(struth, got)
        rows.append((scale, len(sdocs), t_ref, t_beam, mem_ref.peak - mem_ref.base, mem_beam.peak - mem_beam.base))
        print(
            f"{scale}x: {len(sdocs)} docs | reference {t_ref:.1f} s | Beam DirectRunner {t_beam:.1f} s "
            f"(ratio {t_beam / t_ref:.1f}x) | same clusters: {same} | removed {len(got)} | "
            f"P {sc['precision']:.4f} R {sc['recall']:.4f} ARI {sc['ari']:.4f}"
        )
    if len(rows) == 2:
        (s1, n1, r1, b1, m1r, m1b), (s5, n5, r5, b5, m5r, m5b) = rows
        print(
            f"growth {s1}x -> {s5}x ({n5 / n1:.1f}x docs): reference time {r5 / r1:.2f}x, Beam time {b5 / b1:.2f}x, "
            f"peak extra RSS reference {m1r / 2**20:.0f} -> {m5r / 2**20:.0f} MiB, "
            f"Beam {m1b / 2**20:.0f} -> {m5b / 2**20:.0f} MiB"
        )


if __name__ == "__main__":
    main()
