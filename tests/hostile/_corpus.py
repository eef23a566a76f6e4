"""Real documents for the hostile tests: the golden seed and a few MasakhaNEWS articles (read by path)."""

from __future__ import annotations

import csv
import pathlib

__all__ = ["masakhane_documents"]

csv.field_size_limit(1 << 24)


def masakhane_documents(
    shared_dir: pathlib.Path, langs: tuple[str, ...] = ("eng", "fra", "hau"), per_lang: int = 2
) -> list[bytes]:
    """A few articles of the shared MasakhaNEWS dev splits, written as dump documents."""
    docs = []
    for n, lang in enumerate(langs):
        path = shared_dir / "corpora" / "masakhanews" / lang / "dev.tsv"
        with path.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))[:per_lang]
        for i, row in enumerate(rows):
            body = "\n".join(line for line in row["text"].splitlines() if line.strip())
            header = f"2024-07-{4 + n:02d} {10 + i:02d}:00:00"
            docs.append(f"{header}\n{row['headline']}\n{body}\n#{lang} #{row['category']}\n{1720000000 + i}\n".encode())
    return docs
