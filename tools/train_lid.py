"""Train newsflow's second language-ID model (``newsflow/models/lid.africa16.ftz``) from MasakhaNEWS train data.

lid.176 does not know ten of the sixteen MasakhaNEWS languages (Hausa, Igbo, Luganda, Lingala, Oromo, Nigerian
Pidgin, Kirundi, Shona, Tigrinya, Xhosa) and calls them by a neighbour's code (Tigrinya ``am``, Pidgin ``en``,
Kirundi ``sw``). This script trains a compact fastText classifier over those ten plus the six lid.176 languages they
are confused with, so the two models can be combined (see ``docs/lang.md``).

Data (read by path from the shared folder, ``--shared`` or ``$NEWSFLOW_SHARED`` or ``../shared``):

* ``corpora/masakhanews-train/<lang3>/train.tsv`` (ibo lin lug orm pcm run sna som xho yor) and
  ``train-fewshot50.tsv`` (amh eng fra hau swa tir), read with ``csv`` (tab separated, quoted, embedded newlines);
* the train rows listed in ``overlaps.tsv`` are dropped, and so is every train row whose text equals a text of
  that language's dev or test split (``corpora/masakhanews/<lang3>/{dev,test}.tsv``). Dev and test are read only
  to exclude them from training and to print the evaluation.

Examples: every text goes through :func:`newsflow.core.lang.prepare_text`, as at prediction time. Each article
gives its headline, its whole prepared text (cut at ``--max-chars``) and its consecutive chunks of
``--chunk-words`` words (so short texts are in the training distribution too). Per language, ``--lines`` lines are
drawn from those (all of them, repeated in a seeded shuffle when there are fewer), so every label has the same
prior. Training is ``fasttext.train_supervised`` with a fixed seed and one thread (reproducible), then
``quantize`` to a small ``.ftz``.

Word lists (``<model>.words.json.gz`` beside the model, see :class:`newsflow.core.lang.LanguageWords`): per
language the ``--top-words`` most frequent prepared words of its training articles, and their typical share: the
median :func:`~newsflow.core.lang.word_share` of a training article (its prepared text within ``--max-chars``) in
the list built from the other half of the articles (two halves, seeded; each half scored against the other).

Run::

    python tools/train_lid.py --out newsflow/models/lid.africa16.ftz      # the shipped model
    python tools/train_lid.py --leave-out lin --out /tmp/no-lin.ftz        # without one language
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from newsflow.core.lang import (  # noqa: E402
    LABEL_PREFIX,
    WORDS_FORMAT,
    map_label,
    prepare_text,
    word_share,
    words_path,
)

# MasakhaNEWS folder name -> emitted code (ISO 639-1 where one exists, else 639-3; lid.176 uses the same codes).
LANGS = {
    lang3: map_label(lang3)
    for lang3 in (
        "amh",
        "eng",
        "fra",
        "hau",
        "ibo",
        "lin",
        "lug",
        "orm",
        "pcm",
        "run",
        "sna",
        "som",
        "swa",
        "tir",
        "xho",
        "yor",
    )
}
T = TypeVar("T")
FEWSHOT = {"amh", "eng", "fra", "hau", "swa", "tir"}  # full train split missing: the 50-sample few-shot file


def shared_dir(arg: str | None) -> Path:
    """The shared folder holding ``corpora/``."""
    return Path(arg or os.environ.get("NEWSFLOW_SHARED", REPO.parent / "shared")).resolve()


def read_tsv(path: Path) -> list[dict[str, str]]:
    """Rows of a MasakhaNEWS TSV file (quoted fields, newlines inside ``text``)."""
    csv.field_size_limit(sys.maxsize)
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def eval_texts(shared: Path, lang3: str) -> list[str]:
    """Dev + test article texts of one language (the evaluation set: never trained on)."""
    return [
        r["text"]
        for split in ("dev", "test")
        for r in read_tsv(shared / "corpora/masakhanews" / lang3 / f"{split}.tsv")
    ]


def train_rows(shared: Path, lang3: str) -> tuple[list[dict[str, str]], int]:
    """Train rows of one language without the rows that also occur in dev/test, and how many were dropped."""
    root = shared / "corpora/masakhanews-train"
    name = "train-fewshot50.tsv" if lang3 in FEWSHOT else "train.tsv"
    rows = read_tsv(root / lang3 / name)
    listed = {int(r["train_row"]) for r in read_tsv(root / "overlaps.tsv") if r["lang"] == lang3}
    held = set(eval_texts(shared, lang3))
    kept = [r for i, r in enumerate(rows, start=1) if i not in listed and r["text"] not in held]
    return kept, len(rows) - len(kept)


def examples(row: dict[str, str], max_chars: int, chunk: int) -> list[str]:
    """Prepared training lines of one article: headline, whole text (budget-cut) and word chunks."""
    out = [prepare_text(row.get("headline") or "", max_chars)]
    words = prepare_text(row["text"]).split()
    out.append(prepare_text(" ".join(words), max_chars))
    out.extend(" ".join(words[i : i + chunk]) for i in range(0, len(words), chunk))
    return [line for line in out if len(line) >= 10]


def build_lines(shared: Path, langs: list[str], lines: int, max_chars: int, chunk: int, seed: int) -> list[str]:
    """Labelled, shuffled training lines: ``lines`` per language."""
    rng = random.Random(seed)
    out: list[str] = []
    for lang3 in langs:
        rows, dropped = train_rows(shared, lang3)
        pool = [f"{LABEL_PREFIX}{LANGS[lang3]} {ex}" for row in rows for ex in examples(row, max_chars, chunk)]
        rng.shuffle(pool)
        picked = (pool * (lines // len(pool) + 1))[:lines]
        print(
            f"data {lang3}: {len(rows)} articles ({dropped} dropped as dev/test overlaps), "
            f"{len(pool)} lines, {lines} used",
            file=sys.stderr,
        )
        out.extend(picked)
    rng.shuffle(out)
    return out


def top_words(texts: list[list[str]], top: int) -> frozenset[str]:
    """The ``top`` most frequent words of tokenised texts (ties broken by the word, so the list is deterministic)."""
    counts = Counter(w for words in texts for w in words)
    return frozenset(w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top])


def word_lists(shared: Path, langs: list[str], top: int, max_chars: int, seed: int) -> dict[str, dict]:
    """Per code: ``{"share": typical held-out word share, "words": sorted list}`` (see the module docstring)."""
    rng = random.Random(seed)
    out = {}
    for lang3 in langs:
        rows, _ = train_rows(shared, lang3)
        full = [prepare_text((r.get("headline") or "") + "\n" + r["text"]).split() for r in rows]
        cut = [prepare_text(r["text"], max_chars) for r in rows]
        order = list(range(len(rows)))
        rng.shuffle(order)
        halves = order[: len(order) // 2], order[len(order) // 2 :]
        shares = []
        for build, held in (halves, halves[::-1]):
            words = top_words([full[i] for i in build], top)
            shares += [word_share(cut[i], words) for i in held if cut[i]]
        shares.sort()
        median = shares[len(shares) // 2]
        out[LANGS[lang3]] = {"share": round(median, 4), "words": sorted(top_words(full, top))}
        print(f"words {lang3}: {len(rows)} articles, held-out share median {median:.3f}", file=sys.stderr)
    return out


def write_words(shared: Path, langs: list[str], model_out: Path, top: int, max_chars: int, seed: int) -> Path:
    """Write the word lists beside ``model_out`` (gzip-compressed JSON, the same bytes on every run)."""
    doc = {"format": WORDS_FORMAT, "top_words": top, "languages": word_lists(shared, langs, top, max_chars, seed)}
    path = Path(words_path(str(model_out)))
    data = json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    path.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print(f"words {path}: {path.stat().st_size} bytes, sha256 {digest}")
    return path


def _retry(step: Callable[[], T], attempts: int = 20) -> T:
    """Run a fastText training step, again when it stops with "Encountered NaN".

    With one thread, fasttext-numpy2 sometimes raises that error within the first second, before any example was
    counted (its progress check divides by the example count); a run that completes gives the same model bytes
    every time, so retrying does not change the result.
    """
    for attempt in range(1, attempts + 1):
        try:
            return step()
        except RuntimeError as e:
            if "NaN" not in str(e) or attempt == attempts:
                raise
            print(f"fastText stopped early ({e}); attempt {attempt + 1} of {attempts}", file=sys.stderr)
    raise AssertionError("unreachable")


def train(args: argparse.Namespace) -> Path:
    """Train and quantise the model; returns the written path."""
    import fasttext

    shared = shared_dir(args.shared)
    langs = [lang for lang in LANGS if lang not in args.leave_out]
    lines = build_lines(shared, langs, args.lines, args.max_chars, args.chunk_words, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "train.txt"
        data.write_text("\n".join(lines) + "\n", encoding="utf-8")
        t0 = time.perf_counter()
        model = _retry(
            lambda: fasttext.train_supervised(
                input=str(data),
                dim=args.dim,
                epoch=args.epoch,
                lr=args.lr,
                minn=2,
                maxn=4,
                wordNgrams=1,
                bucket=args.bucket,
                minCount=2,
                loss="softmax",
                seed=args.seed,
                thread=1,
                verbose=0,
            )
        )
        _retry(
            lambda: model.quantize(
                input=str(data),
                qnorm=True,
                cutoff=args.cutoff,
                retrain=True,
                dsub=2,
                thread=1,
                verbose=0,
            )
        )
        print(f"trained in {time.perf_counter() - t0:.0f} s on {len(lines)} lines", file=sys.stderr)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save_model(str(out))
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"model {out}: {out.stat().st_size} bytes, sha256 {digest}, labels {len(model.get_labels())}")
    write_words(shared, langs, out, args.top_words, args.max_chars, args.seed)
    evaluate(model, shared, args.max_chars)
    return out


def evaluate(model, shared: Path, max_chars: int) -> None:  # noqa: ANN001 - a fastText model
    """Print the model's own top-1 accuracy per language on the dev + test articles."""
    print("lang  n     top1   p>=0.9")
    for lang3, code in LANGS.items():
        texts = [prepare_text(t, max_chars) for t in eval_texts(shared, lang3)]
        labels, probs = model.predict(texts, k=1)
        right = Counter(lab[0] == LABEL_PREFIX + code for lab in labels)[True]
        sure = sum(1 for lab, p in zip(labels, probs, strict=True) if lab[0] == LABEL_PREFIX + code and p[0] >= 0.9)
        print(f"{lang3}  {len(texts):4d}  {right / len(texts):.3f}  {sure / len(texts):.3f}")


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default=None, help="folder holding corpora/ (default $NEWSFLOW_SHARED or ../shared)")
    ap.add_argument("--out", default=str(REPO / "newsflow/models/lid.africa16.ftz"))
    ap.add_argument(
        "--leave-out",
        action="append",
        default=[],
        choices=sorted(LANGS),
        metavar="LANG",
        help="MasakhaNEWS language (lang3) to leave out of training; repeatable",
    )
    ap.add_argument("--lines", type=int, default=10000, help="training lines per language")
    ap.add_argument("--chunk-words", type=int, default=12, help="words per chunk line")
    ap.add_argument("--max-chars", type=int, default=2000, help="prepared-text budget, as DetectLang's max_chars")
    ap.add_argument("--dim", type=int, default=16)
    ap.add_argument("--epoch", type=int, default=5)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--bucket", type=int, default=200_000)
    ap.add_argument("--cutoff", type=int, default=20_000, help="input rows kept by quantize")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--top-words", type=int, default=5000, help="words per language in the word lists")
    ap.add_argument("--words-only", action="store_true", help="write the word lists beside --out, train nothing")
    args = ap.parse_args(argv)
    if args.words_only:
        langs = [lang for lang in LANGS if lang not in args.leave_out]
        write_words(shared_dir(args.shared), langs, Path(args.out), args.top_words, args.max_chars, args.seed)
        return
    train(args)


if __name__ == "__main__":
    main()
