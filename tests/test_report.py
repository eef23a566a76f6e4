"""The run report: the text summary and the PNG chart of ``python -m newsflow.report OUT``."""

from __future__ import annotations

import json
import pathlib

import matplotlib.image as mpimg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from newsflow.report import daily_counts, day_window, format_summary, main, top_languages

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DAY = 19_908 * 86_400  # 2024-07-04

MANIFEST = {
    "run_id": "r1",
    "output": "OUT",
    "wall_seconds": 2.0,
    "accounting_ok": True,
    "counts": {
        "read": 10,
        "kept": 6,
        "duplicates": 2,
        "duplicates_by_method": {"exact": 1, "near": 1},
        "rejects": 2,
        "rejects_by_reason": {"no_header": 1, "too_large": 1},
        "kept_by_lang": {"fr": 4, "hau": 2},
    },
}


@pytest.fixture()
def output(tmp_path):
    """A small output folder: manifest, docs partitions on two days, duplicates, rejects."""
    out = tmp_path / "out"
    for lang, day, n in (("fr", "2024-07-04", 3), ("fr", "2024-07-05", 1), ("hau", "2024-07-05", 2)):
        folder = out / "docs" / f"lang={lang}" / f"date={day}"
        folder.mkdir(parents=True)
        pq.write_table(pa.table({"doc_id": [f"{lang}{day}{i}" for i in range(n)]}), folder / "part-0.parquet")
    (out / "duplicates").mkdir()
    dups = pa.table(
        {
            "doc_id": ["d1", "d2"],
            "published_at": pa.array([DAY * 1000, (DAY + 86_400) * 1000], pa.timestamp("ms")),
            "lang": ["fr", "fr"],
        }
    )
    pq.write_table(dups, out / "duplicates" / "part-0.parquet")
    (out / "rejects").mkdir()
    pq.write_table(pa.table({"reason": ["no_header", "too_large"]}), out / "rejects" / "part-0.parquet")
    (out / ".newsflow-tmp-x").mkdir()  # an interrupted run's leftovers are not counted
    pq.write_table(pa.table({"doc_id": ["ghost"]}), out / ".newsflow-tmp-x" / "part-0.parquet")
    (out / "_manifest.json").write_text(json.dumps({**MANIFEST, "output": str(out)}))
    return out


def test_summary_names_counts_reasons_languages_throughput_and_place() -> None:
    text = format_summary(MANIFEST)
    lines = text.splitlines()
    assert lines[0] == "newsflow run r1 -> OUT"
    assert "read" in lines[1] and lines[1].endswith(" 10")
    assert any(ln.split() == ["near", "1"] for ln in lines)
    assert any(ln.split() == ["too_large", "1"] for ln in lines)
    assert any(ln.split() == ["hau", "2"] for ln in lines)
    assert "2.0 s (5 docs/s)" in text and "OUT/docs/" in text and "ok: read = kept" in text


def test_mismatched_accounting_is_shouted() -> None:
    assert "MISMATCH" in format_summary({**MANIFEST, "accounting_ok": False})


def test_daily_counts_come_from_the_tables(output) -> None:
    got = daily_counts(str(output))
    assert got["kept"] == {"2024-07-04": 3, "2024-07-05": 3}
    assert got["duplicates"] == {"2024-07-04": 1, "2024-07-05": 1}
    assert got["duplicates_by_lang"] == {"fr": 2}


def _check_png(path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    img = mpimg.imread(path)
    height, width = img.shape[:2]
    assert 600 <= height <= 2000 and 600 <= width <= 2000
    assert img.std() > 0.01  # something was drawn


def test_main_prints_the_summary_and_writes_no_chart_unasked(output, capsys) -> None:
    before = sorted(p.relative_to(output) for p in output.rglob("*"))
    assert main([str(output)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"newsflow run r1 -> {output}") and "chart:" not in out
    assert sorted(p.relative_to(output) for p in output.rglob("*")) == before  # the dataset folder is untouched


def test_chart_where_asked(output, tmp_path, capsys) -> None:
    target = tmp_path / "elsewhere.png"
    assert main([str(output), "--chart", str(target)]) == 0
    _check_png(target)
    assert f"chart: {target}" in capsys.readouterr().out


def test_chart_of_a_run_that_kept_nothing(tmp_path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    empty = {
        "run_id": "e",
        "output": str(out),
        "counts": {"read": 1, "rejects": 1, "rejects_by_reason": {"empty_file": 1}},
    }
    (out / "_manifest.json").write_text(json.dumps(empty))
    assert main([str(out), "--chart", str(tmp_path / "c.png")]) == 0
    _check_png(tmp_path / "c.png")


def test_many_languages_become_the_largest_plus_other() -> None:
    kept = {f"l{i:02d}": 100 - i for i in range(60)}
    rows = top_languages(kept, {"l59": 500}, top=15)
    assert len(rows) == 15
    assert rows[0] == ("l59", 41, 500)  # duplicates count towards the order
    assert rows[-1][0] == "other (46)"
    assert sum(r[1] for r in rows) == sum(kept.values()) and sum(r[2] for r in rows) == 500
    assert top_languages({"fr": 2, "en": 3}, {}) == [("en", 3, 0), ("fr", 2, 0)]


def test_day_window_leaves_sparse_outlier_years_out() -> None:
    counts = {f"2024-06-{d:02d}": 100 for d in range(1, 31)}
    counts.update({"2016-03-01": 1, "2019-01-05": 2, "2021-08-24": 1, "0000-00-00": 5})
    assert day_window(counts) == ("2024-06-01", "2024-06-30")
    assert day_window({"2024-07-04": 3}) == ("2024-07-04", "2024-07-04")
    assert day_window({}) == ("", "")


def test_chart_of_sixty_languages_and_sparse_dates(tmp_path) -> None:
    kept = {f"l{i:02d}": 2000 // (i + 1) for i in range(60)}
    manifest = {
        "run_id": "big",
        "counts": {
            "read": sum(kept.values()),
            "kept": sum(kept.values()),
            "kept_by_lang": kept,
            "rejects_by_reason": {"binary": 1},
        },
    }
    days = {
        "kept": {**{f"2024-06-{d:02d}": 300 for d in range(1, 31)}, "2016-05-02": 1, "2020-11-11": 2},
        "duplicates": {"2024-06-03": 40},
    }
    from newsflow.report import write_chart

    _check_png(pathlib.Path(write_chart(manifest, days, str(tmp_path / "big.png"))))


def test_not_an_output_folder_is_one_error_line(tmp_path, capsys) -> None:
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("newsflow: error: no _manifest.json")
