"""Leave-one-out check of the two-model rule: how often a language neither bundled model knows gets a wrong code.

For each of the ten MasakhaNEWS languages lid.176 does not know, a second model is trained without it
(``tools/train_lid.py --leave-out LANG``, same seed and settings as the shipped model) and DetectLang's rule with the
default settings runs on that language's dev + test articles. The right answer for them is now ``und``; the table
prints the share abstained, the share given a wrong code, and the most frequent wrong codes.

Run::

    python tools/leave_one_out.py [--models DIR] [--langs hau,ibo]   # about a minute of training per language

Models are written to ``--models`` (default a temporary folder) and reused when already there.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

import train_lid  # noqa: E402

from newsflow.config import LangConfig  # noqa: E402
from newsflow.core.lang import UNDETERMINED, LangModel, SecondModel, detect, words_path  # noqa: E402
from newsflow.transforms.detect_lang import detect_options  # noqa: E402

UNKNOWN_TO_LID176 = ["hau", "ibo", "lin", "lug", "orm", "pcm", "run", "sna", "tir", "xho"]


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default=None, help="folder holding corpora/ (default $NEWSFLOW_SHARED or ../shared)")
    ap.add_argument("--models", default=None, help="folder for the leave-one-out models (reused when present)")
    ap.add_argument("--langs", default=",".join(UNKNOWN_TO_LID176))
    ap.add_argument("--focus-score", type=float, default=None, help="lang.second_focus_score (default: the config's)")
    ap.add_argument("--word-share", type=float, default=None, help="lang.second_word_share (default: the config's)")
    args = ap.parse_args(argv)
    shared = train_lid.shared_dir(args.shared)
    models = Path(args.models or tempfile.mkdtemp(prefix="newsflow-loo-"))
    models.mkdir(parents=True, exist_ok=True)
    overrides = {"second_focus_score": args.focus_score, "second_word_share": args.word_share}
    cfg = LangConfig(**{k: v for k, v in overrides.items() if v is not None})
    first = LangModel(cfg.model_path, cfg.label_map)
    options = detect_options(cfg)
    print("| left out | n | und | wrong code | most frequent wrong codes |")
    print("|---|---|---|---|---|")
    for lang3 in args.langs.split(","):
        path = models / f"without-{lang3}.ftz"
        if not path.is_file():
            train_lid.main(["--shared", str(shared), "--leave-out", lang3, "--out", str(path)])
        elif not Path(words_path(str(path))).is_file():  # a model trained before word lists existed
            train_lid.main(["--shared", str(shared), "--leave-out", lang3, "--out", str(path), "--words-only"])
        second = SecondModel(str(path))
        answers = [detect(t, first, second=second, **options).lang for t in train_lid.eval_texts(shared, lang3)]
        counts = collections.Counter(answers)
        right = train_lid.LANGS[lang3]
        wrong = {k: v for k, v in counts.items() if k not in (UNDETERMINED, right)}
        n = len(answers)
        top = ", ".join(f"{k} {v}" for k, v in sorted(wrong.items(), key=lambda kv: -kv[1])[:3]) or "-"
        print(f"| {lang3} | {n} | {counts[UNDETERMINED] / n:.3f} | {sum(wrong.values()) / n:.3f} | {top} |", flush=True)


if __name__ == "__main__":
    main()
