"""Cross-run dedupe through the ingest command: ``--dedupe_against`` an earlier output.

A small dump written here in the dump format spans 88 days (longer than twice the
30-day window) and holds copies of its own articles published far from their
originals. Delivered a second time under another folder, every document of it must be
found again as a duplicate of what the first run kept.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import random
import shutil

import pandas as pd
import pyarrow.parquet as pq
import pytest

from newsflow.report import format_summary, load_manifest
from pipelines.ingest import main, run
from tests.conftest import read_sorted

pytestmark = pytest.mark.integration

T0 = dt.datetime(2024, 3, 1, 8, 30, 0)
FAST = "lang: {enabled: false}\nhashtags: {enabled: false}\n"


def _article(rng: random.Random, words: int = 260) -> list[str]:
    """Paragraphs of made-up words (about 1,800 characters): no two articles look alike."""
    vocab = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9))) for _ in range(3000)]
    text = [rng.choice(vocab) for _ in range(words)]
    return [" ".join(text[i : i + 50]) for i in range(0, words, 50)]


def _edit(lines: list[str]) -> list[str]:
    """A copy edit: one word changed and a line added at the end."""
    first = lines[0].split()
    first[3] = "changed"
    return [" ".join(first), *lines[1:], "Read more on our site tomorrow morning."]


def _write_doc(path: pathlib.Path, day: int, lines: list[str], minute: int = 0) -> None:
    when = T0 + dt.timedelta(days=day, minutes=minute)
    trailer = int((when + dt.timedelta(hours=1)).replace(tzinfo=dt.timezone.utc).timestamp())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"{when:%Y-%m-%d %H:%M:%S}\n" + "\n".join(lines) + f"\n#news #day{day}\n{trailer}\n", encoding="utf-8"
    )


def _write_dump(root: pathlib.Path) -> None:
    """12 articles from day 0 to day 88, and copies of three of them far from their originals."""
    rng = random.Random(7)
    articles = [_article(rng) for _ in range(12)]
    for i, lines in enumerate(articles):
        _write_doc(root / "feeds" / f"site-{i % 3}" / f"{i:03d}_article.txt", 8 * i, lines)
    _write_doc(root / "feeds" / "site-9" / "000_exact-late.txt", 45, articles[0], minute=5)  # 45 days later
    _write_doc(root / "feeds" / "site-9" / "001_near-late.txt", 70, _edit(articles[1]), minute=5)  # 62 days
    _write_doc(root / "feeds" / "site-9" / "002_near-early.txt", 10, _edit(articles[11]), minute=5)  # 78 earlier


def _ingest(dump: pathlib.Path, out: pathlib.Path, cfg: pathlib.Path, *extra: str) -> dict:
    return run(["--input", str(dump), "--output", str(out), "--config", str(cfg), "--quiet", *extra])


def _keepers(out: pathlib.Path) -> dict[str, str]:
    """source_path -> doc_id of the document kept for it (itself, or the keeper of its copy)."""
    docs = read_sorted(out, "docs")
    dups = read_sorted(out, "duplicates")
    found = dict(zip(docs["source_path"], docs["doc_id"], strict=True))
    found.update(zip(dups["source_path"], dups["kept_id"], strict=True))
    return found


@pytest.fixture(scope="module")
def first(tmp_path_factory) -> tuple[pathlib.Path, pathlib.Path, pathlib.Path]:
    base = tmp_path_factory.mktemp("against")
    dump = base / "delivery1"
    _write_dump(dump)
    cfg = base / "fast.yaml"
    cfg.write_text(FAST)
    out = base / "out1"
    manifest = _ingest(dump, out, cfg)
    assert manifest["counts"]["read"] == 15
    assert manifest["counts"]["kept"] == 12 and manifest["counts"]["duplicates"] == 3  # copies found within the run
    return dump, out, cfg


def test_a_redelivered_dump_spanning_88_days_keeps_nothing(first, tmp_path) -> None:
    dump, out1, cfg = first
    again = tmp_path / "delivery2"
    shutil.copytree(dump, again / "redelivered")  # the same files under another folder: other source paths
    out2 = tmp_path / "out2"
    manifest = _ingest(again, out2, cfg, "--dedupe_against", str(out1))
    assert manifest["counts"]["read"] == 15
    assert manifest["counts"]["kept"] == 0, read_sorted(out2, "docs")[["source_path", "date"]]
    dups = read_sorted(out2, "duplicates")
    assert len(dups) == 15
    first_keepers = _keepers(out1)
    expected = {f"redelivered/{path}": keeper for path, keeper in first_keepers.items()}
    assert dict(zip(dups["source_path"], dups["kept_id"], strict=True)) == expected
    assert set(dups["kept_id"]) == set(read_sorted(out1, "docs")["doc_id"])  # every kept_id names a first-run doc
    assert not set(dups["doc_id"]) & set(first_keepers.values())  # other paths: other ids


def test_a_rerun_against_its_own_output_is_not_a_copy_of_itself(first, tmp_path) -> None:
    dump, out1, cfg = first
    out3 = tmp_path / "out3"
    _ingest(dump, out3, cfg, "--dedupe_against", str(out1))
    for name in ("docs", "duplicates"):
        pd.testing.assert_frame_equal(read_sorted(out3, name), read_sorted(out1, name), check_like=True, obj=name)


def _one_error_line(capsys, argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(err) == 1 and err[0].startswith("newsflow: error: "), err
    return err[0]


def test_the_index_records_the_settings_of_its_fingerprints(first) -> None:
    _, out1, _ = first
    files = sorted((out1 / "index").rglob("*.parquet"))
    assert files
    for path in files:
        meta = pq.read_schema(path).metadata
        settings = json.loads(meta[b"newsflow.dedupe_settings"])
        assert settings["seed"] == 1 and settings["num_perm"] == 128 and settings["shingle"] == "char"
        assert settings["shingle_size"] == 5 and settings["lede_chars"] == 250 and "format" in settings


@pytest.mark.parametrize(
    ("setting", "named"),
    [("seed: 2", "seed"), ("num_perm: 64\n  bands: 16", "num_perm"), ("shingle_size: 4", "shingle_size")],
)
def test_an_index_with_other_fingerprint_settings_is_refused_before_the_run(
    first, tmp_path, capsys, setting: str, named: str
) -> None:
    dump, out1, _ = first
    cfg = tmp_path / "other.yaml"
    cfg.write_text(FAST + f"dedupe:\n  {setting}\n")
    out = tmp_path / "out"
    line = _one_error_line(
        capsys,
        ["--input", str(dump), "--output", str(out), "--config", str(cfg), "--quiet", "--dedupe_against", str(out1)],
    )
    assert named in line and str(out1) in line
    assert not out.exists()  # refused before the pipeline started


def test_an_index_without_recorded_settings_is_refused(first, tmp_path, capsys) -> None:
    dump, out1, cfg = first
    old = tmp_path / "old"
    for path in sorted((out1 / "index").rglob("*.parquet")):  # the same index as an older newsflow wrote it
        table = pq.read_table(path)
        meta = {k: v for k, v in table.schema.metadata.items() if k != b"newsflow.dedupe_settings"}
        target = old / path.relative_to(out1)
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.replace_schema_metadata(meta), target)
    line = _one_error_line(
        capsys,
        [
            "--input",
            str(dump),
            "--output",
            str(tmp_path / "out"),
            "--config",
            str(cfg),
            "--quiet",
            "--dedupe_against",
            str(old),
        ],
    )
    assert "no dedupe settings" in line


def test_decisions_that_may_be_wrong_reach_the_manifest_and_the_summary(first, tmp_path) -> None:
    _, out1, _ = first
    assert load_manifest(str(out1))["warnings"] == []  # nothing to report for the first run
    dump = tmp_path / "copies"
    article = _article(random.Random(11))
    for i in range(4):  # four copy-edited versions of one article fill the same LSH buckets
        lines = [*article[:-1], article[-1] + f" edition {i}"] if i else article
        _write_doc(dump / f"{i:03d}_copy.txt", i, lines)
    cfg = tmp_path / "small.yaml"
    cfg.write_text(FAST + "dedupe:\n  max_bucket: 2\n")
    out = tmp_path / "out"
    manifest = _ingest(dump, out, cfg)
    assert manifest["counts"]["duplicates"] == 3  # tail members still meet the bucket's head
    warnings = {w["counter"]: w for w in manifest["warnings"]}
    assert set(warnings) == {"dedupe_oversized_buckets"}
    oversized = warnings["dedupe_oversized_buckets"]
    assert oversized["count"] >= 1 and "max_bucket" in oversized["meaning"]
    summary = format_summary(manifest).splitlines()
    at = summary.index("warnings (decisions that may be wrong):")
    assert summary[at + 1].startswith(f"  dedupe_oversized_buckets: {oversized['count']:,} - LSH buckets")
    assert "warnings" not in format_summary(load_manifest(str(out1)))
