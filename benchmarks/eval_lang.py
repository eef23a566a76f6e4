"""Measure DetectLang's decision rule on labelled corpora (accuracy when answered, share abstained).

Corpora are read by path from the shared folder (``--shared``, default ``$NEWSFLOW_SHARED`` or
``../shared`` next to the repository):

* ``masakhanews``: MasakhaNEWS full articles (dev + test), 16 African-news languages;
* ``lingua``: Lingua test sentences grouped by ``--group`` (default 3) into short texts, 75 languages;
* ``babel``: Babel Briefings headlines + descriptions (short multilingual news), 30 languages.

Examples::

    python benchmarks/eval_lang.py                       # the configured defaults, all corpora
    python benchmarks/eval_lang.py --chunk-words 0 --prior-weight 0 --threshold 0 --min-chars 0
                                                         # plain fastText top-1, for comparison
    python benchmarks/eval_lang.py --grid                # a small grid of rule settings (summary lines)
    python benchmarks/eval_lang.py --second-model none   # lid.176 alone (the rule before the second model)

Accuracy counts an answer right when its code equals the corpus label after the code mapping
(Lingua ``nb`` is lid.176's ``no``); ``und`` answers count as abstained. A MasakhaNEWS language
that no loaded model can answer has ``und`` as its right answer; the table shows what was answered.
The Lingua summary (``lingua_acc``/``lingua_und``) covers the languages lid.176 can answer, with or
without the second model, so the two settings compare on the same texts; the languages only the
second model knows (``lingua2_*``) and those no model knows (``lingua0_wrong``: share given a code)
are summarised apart.
"""

from __future__ import annotations

import argparse
import collections
import csv
import dataclasses
import itertools
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from newsflow.config import LangConfig  # noqa: E402
from newsflow.core.lang import (  # noqa: E402
    UNDETERMINED,
    LangModel,
    LangResult,
    SecondModel,
    chunk_words,
    map_label,
    prepare_text,
    settle,
)
from newsflow.transforms.detect_lang import load_second, second_rule  # noqa: E402

KNOWN = {"eng": "en", "fra": "fr", "swa": "sw", "som": "so", "yor": "yo", "amh": "am"}
UNKNOWN = ["hau", "ibo", "lin", "lug", "orm", "pcm", "run", "sna", "tir", "xho"]
UNKNOWN_CODES = {lang3: map_label(lang3) for lang3 in UNKNOWN}
LINGUA_GOLD = {"nb": "no"}  # Lingua's Bokmal file vs lid.176's `no`
BABEL_GOLD: dict[str, str] = {}


FIELDS = (
    "threshold",
    "min_chars",
    "max_chars",
    "chunk_words",
    "prior_weight",
    "trust_score",
    "min_ratio",
    "second_min_score",
    "second_confirm_score",
    "second_focus_score",
    "second_below",
    "second_word_share",
)


def shared_dir(arg: str | None) -> Path:
    """The shared folder holding ``corpora/``."""
    return Path(arg or os.environ.get("NEWSFLOW_SHARED", REPO.parent / "shared")).resolve()


def read_masakhanews(root: Path, lang: str) -> list[str]:
    """Article texts of one MasakhaNEWS language (dev + test)."""
    csv.field_size_limit(sys.maxsize)
    texts = []
    for split in ("dev", "test"):
        with open(root / lang / f"{split}.tsv", encoding="utf-8", newline="") as fh:
            texts.extend(row["text"] for row in csv.DictReader(fh, delimiter="\t"))
    return texts


def read_lingua(root: Path, lang: str, group: int) -> list[str]:
    """Lingua sentences of one language joined ``group`` at a time (newline separated)."""
    lines = [x.strip() for x in (root / f"{lang}.txt").read_text(encoding="utf-8").splitlines() if x.strip()]
    return ["\n".join(lines[i : i + group]) for i in range(0, len(lines) - group + 1, group)]


def read_babel(root: Path) -> dict[str, list[str]]:
    """Babel Briefings title + description (+ content) per language, each record once."""
    seen: set[str] = set()
    out: dict[str, list[str]] = collections.defaultdict(list)
    for name in ("sample_articles.json", "sample_articles_locs.json"):
        for rec in json.loads((root / name).read_text(encoding="utf-8")):
            parts = [rec.get("title") or "", rec.get("description") or "", rec.get("content") or ""]
            text = "\n".join(p for p in parts if p).strip()
            if not text or text in seen:
                continue
            seen.add(text)
            out[rec["language"]].append(text)
    return out


class Scorer:
    """Caches per-chunk model distributions so several thresholds/prior weights cost nothing extra."""

    def __init__(self, model: LangModel, second: SecondModel | None = None) -> None:
        self.model = model
        self.second = second
        self._cache: dict[tuple[str, int, int], tuple[np.ndarray, int]] = {}
        self._second: dict[tuple[str, int], LangResult] = {}
        self._prepared: dict[tuple[str, int], str] = {}

    def codes(self) -> set[str]:
        """Every code a loaded model can answer."""
        return set(self.model.codes) | set(self.second.codes if self.second else ())

    def prepared(self, text: str, max_chars: int) -> str:
        """``prepare_text(text, max_chars)``, computed once per text and budget."""
        key = (text, max_chars)
        if key not in self._prepared:
            self._prepared[key] = prepare_text(text, max_chars)
        return self._prepared[key]

    def second_answer(self, text: str, max_chars: int) -> LangResult:
        assert self.second is not None
        key = (text, max_chars)
        if key not in self._second:
            self._second[key] = self.second.predict(self.prepared(text, max_chars))
        return self._second[key]

    def probs(self, text: str, chunk: int, max_chars: int) -> tuple[np.ndarray, int]:
        key = (text, chunk, max_chars)
        if key not in self._cache:
            prepared = self.prepared(text, max_chars)
            self._cache[key] = (self.model.chunk_probs(chunk_words(prepared, chunk)), len(prepared))
        return self._cache[key]

    def top(self, text: str, max_chars: int) -> tuple[np.ndarray, int]:
        """The whole-text top-5 distribution, as DetectLang computes it for its confident-answer check."""
        key = (text, -1, max_chars)
        if key not in self._cache:
            prepared = self.prepared(text, max_chars)
            probs = self.model.top_probs(prepared) if prepared else np.zeros((0, len(self.model.labels)))
            self._cache[key] = (probs, len(prepared))
        return self._cache[key]

    def answer(self, text: str, cfg: LangConfig) -> str:
        """What :func:`~newsflow.core.lang.detect` answers for ``text`` under ``cfg`` (model calls cached)."""
        whole, n = self.top(text, cfg.max_chars)
        if n < max(cfg.min_chars, 1) or len(whole) == 0:
            return UNDETERMINED
        return settle(
            whole,
            lambda: self.probs(text, cfg.chunk_words, cfg.max_chars)[0],
            lambda: self.second_answer(text, cfg.max_chars),
            self.model,
            self.second,
            threshold=cfg.threshold,
            thresholds=cfg.thresholds,
            prior_weight=cfg.prior_weight,
            trust_score=cfg.trust_score,
            min_ratio=cfg.min_ratio,
            rule=second_rule(cfg),
            fits=None if self.second is None else lambda code: self.fits(text, code, cfg),
        ).lang

    def fits(self, text: str, code: str, cfg: LangConfig) -> bool:
        """Whether ``text``'s words fit ``code`` (:meth:`~newsflow.core.lang.SecondModel.fits`)."""
        assert self.second is not None
        return self.second.fits(code, self.prepared(text, cfg.max_chars), cfg.second_word_share)


def score(answers: Iterable[str], gold: str | None) -> tuple[int, float, float, collections.Counter]:
    """(n, accuracy when answered, abstained share, answer counts); gold None = every answer is wrong."""
    answers = list(answers)
    counts = collections.Counter(answers)
    answered = len(answers) - counts[UNDETERMINED]
    right = counts[gold] if gold else 0
    acc = right / answered if answered else float("nan")
    return len(answers), acc, counts[UNDETERMINED] / max(len(answers), 1), counts


def evaluate(scorer: Scorer, corpora: dict, cfg: LangConfig, verbose: bool) -> dict[str, float]:
    """Print per-language lines (verbose) and return summary figures."""
    summary: dict[str, float] = {}
    if "masakhanews" in corpora:
        accs, abst = [], []
        right_all = total_all = 0
        for lang, texts in corpora["masakhanews"].items():
            gold = KNOWN.get(lang) or (UNKNOWN_CODES[lang] if UNKNOWN_CODES[lang] in scorer.codes() else None)
            n, acc, und, counts = score((scorer.answer(t, cfg) for t in texts), gold)
            right_all += counts[gold] if gold else counts[UNDETERMINED]
            total_all += n
            if gold:
                accs.append(acc)
                abst.append(und)
            else:
                summary.setdefault("mn_unknown_und", 0.0)
                summary["mn_unknown_und"] += und / len(UNKNOWN)
            if verbose:
                top = ", ".join(f"{k} {v}" for k, v in counts.most_common(4))
                kind = f"known ({gold})" if gold else "unknown"
                print(f"masakhanews {lang:4s} {kind:12s} n={n:5d} acc={acc:.3f} und={und:.3f}  [{top}]")
        summary["mn_known_min_acc"] = min(accs)
        summary["mn_known_max_und"] = max(abst)
        summary["mn_right_share"] = right_all / max(total_all, 1)
    for name in ("lingua", "babel"):
        if name not in corpora:
            continue
        right = answered = total = 0
        right2 = answered2 = total2 = wrong0 = total0 = 0
        for lang, texts in corpora[name].items():
            gold = (LINGUA_GOLD if name == "lingua" else BABEL_GOLD).get(lang, lang)
            if gold not in scorer.codes():  # no loaded model can answer it: every code is wrong
                n, acc, und, counts = score((scorer.answer(t, cfg) for t in texts), None)
                total0 += n
                wrong0 += n - counts[UNDETERMINED]
                if verbose:
                    top = ", ".join(f"{k} {v}" for k, v in counts.most_common(3))
                    print(f"{name} {lang:4s} n={n:4d} unknown     und={und:.3f}  [{top}]")
                continue
            n, acc, und, counts = score((scorer.answer(t, cfg) for t in texts), gold)
            if gold in scorer.model.codes:
                total += n
                answered += n - counts[UNDETERMINED]
                right += counts[gold]
            else:
                total2 += n
                answered2 += n - counts[UNDETERMINED]
                right2 += counts[gold]
            if verbose:
                top = ", ".join(f"{k} {v}" for k, v in counts.most_common(3))
                print(f"{name} {lang:4s} n={n:4d} acc={acc:.3f} und={und:.3f}  [{top}]")
        summary[f"{name}_acc"] = right / max(answered, 1)
        summary[f"{name}_und"] = 1 - answered / max(total, 1)
        if total2:
            summary[f"{name}2_acc"] = right2 / max(answered2, 1)
            summary[f"{name}2_und"] = 1 - answered2 / max(total2, 1)
        if total0:
            summary[f"{name}0_wrong"] = wrong0 / total0
    return summary


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default=None)
    ap.add_argument("--corpora", default="masakhanews,lingua,babel")
    ap.add_argument("--group", type=int, default=3, help="Lingua sentences per text")
    ap.add_argument("--every", type=int, default=1, help="use every n-th text (faster)")
    ap.add_argument("--grid", action="store_true")
    ap.add_argument("--second-model", default=None, help="bundled (default), none, or a model path")
    defaults = LangConfig()
    for field in FIELDS:
        ap.add_argument("--" + field.replace("_", "-"), type=type(getattr(defaults, field)), default=None)
    args = ap.parse_args(argv)
    root = shared_dir(args.shared) / "corpora"
    wanted = args.corpora.split(",")
    corpora: dict[str, dict[str, list[str]]] = {}
    if "masakhanews" in wanted:
        corpora["masakhanews"] = {
            lang: read_masakhanews(root / "masakhanews", lang)[:: args.every] for lang in [*KNOWN, *UNKNOWN]
        }
    if "lingua" in wanted:
        folder = root / "lingua-langid-testdata" / "sentences"
        corpora["lingua"] = {
            p.stem: read_lingua(folder, p.stem, args.group)[:: args.every] for p in sorted(folder.glob("*.txt"))
        }
    if "babel" in wanted:
        corpora["babel"] = {k: v[:: args.every] for k, v in read_babel(root / "babel-briefings-sample").items()}
    overrides = {k: getattr(args, k) for k in FIELDS if getattr(args, k) is not None}
    if args.second_model is not None:
        overrides["second_model"] = None if args.second_model.lower() == "none" else args.second_model
    base = dataclasses.replace(defaults, **overrides)
    scorer = Scorer(LangModel(base.model_path, base.label_map), load_second(base))
    if not args.grid:
        print(f"settings: {overrides or 'defaults'} -> {base}")
        summary = evaluate(scorer, corpora, base, verbose=True)
        print("summary: " + " ".join(f"{k}={v:.3f}" for k, v in summary.items()))
        return
    grid = itertools.product((5, 10), (0.3, 0.5, 0.7, 2.0), (0.1, 0.15, 0.2))
    for chunk, trust, thr in grid:
        cfg = dataclasses.replace(base, chunk_words=chunk, trust_score=trust, threshold=thr)
        summary = evaluate(scorer, corpora, cfg, verbose=False)
        figures = " ".join(f"{k}={v:.3f}" for k, v in summary.items())
        print(f"chunk={chunk:2d} trust={trust:.1f} thr={thr:.2f}: {figures}")


if __name__ == "__main__":
    main()
