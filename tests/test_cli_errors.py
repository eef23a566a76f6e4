"""Bad options and configs end with exit status 2 and one line ``newsflow: error: ...``, never a traceback."""
from __future__ import annotations

import pytest

from pipelines.ingest import main


@pytest.fixture()
def dump(tmp_path):
    folder = tmp_path / "dump"
    folder.mkdir()
    (folder / "a.txt").write_bytes(b"2024-07-05 10:00:00\nA body line.\n")
    return folder


def _one_error_line(capsys, argv: list[str]) -> str:
    try:
        code = main(argv)
    except SystemExit as e:  # argparse exits on its own: a failure of this contract, reported below
        code = f"SystemExit({e.code})"
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(err) == 1 and err[0].startswith("newsflow: error: "), err
    return err[0]


def _config(tmp_path, text: str | bytes) -> str:
    path = tmp_path / "cfg.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


def test_missing_input(tmp_path, capsys) -> None:
    line = _one_error_line(capsys, ["--input", str(tmp_path / "nope"), "--output", str(tmp_path / "o")])
    assert "input not found" in line and "nope" in line


@pytest.mark.parametrize("sub", ["out", "deeper/out", "."])
def test_output_inside_input_is_refused(dump, capsys, sub: str) -> None:
    line = _one_error_line(capsys, ["--input", str(dump), "--output", str(dump / sub)])
    assert "inside input" in line
    assert sorted(p.name for p in dump.iterdir()) == ["a.txt"]  # nothing was written into the input


def test_output_inside_a_glob_input_is_refused(dump, capsys) -> None:
    line = _one_error_line(capsys, ["--input", f"{dump}/*.txt", "--output", str(dump / "out")])
    assert "inside input" in line


@pytest.mark.parametrize(("text", "needle"), [
    ("read:\n  max_doc_byte: 5000\n", "unknown key read.max_doc_byte"),
    ("raed:\n  max_doc_bytes: 5000\n", "unknown section 'raed'"),
    ("read:\n  max_doc_bytes: 5\n", "read.max_doc_bytes must be at least 1024"),
    ("parse:\n  min_year: 2300\n", "parse.min_year/max_year"),
    ("parse:\n  max_control_ratio: 0\n", "parse.max_control_ratio"),
    ("parse:\n  timezone: Mars/Olympus\n", "unknown time zone"),
    ("read:\n  max_members: many\n", "read.max_members: expected an integer"),
    ("output:\n  compression: rar\n", "output.compression"),
    ("- just\n- a list\n", "top level must be a mapping"),
    ("read: [\n  x: {\n", "is not valid YAML"),
])
def test_bad_config_values(dump, tmp_path, capsys, text: str, needle: str) -> None:
    line = _one_error_line(capsys, ["--input", str(dump), "--output", str(tmp_path / "o"),
                                    "--config", _config(tmp_path, text)])
    assert needle in line and "cfg.yaml" in line


def test_config_file_that_does_not_exist(dump, tmp_path, capsys) -> None:
    line = _one_error_line(capsys, ["--input", str(dump), "--output", str(tmp_path / "o"),
                                    "--config", str(tmp_path / "missing.yaml")])
    assert "config file not found" in line and "missing.yaml" in line


def test_config_that_is_not_text(dump, tmp_path, capsys) -> None:
    line = _one_error_line(capsys, ["--input", str(dump), "--output", str(tmp_path / "o"),
                                    "--config", _config(tmp_path, b"\xff\xfe\x00binary")])
    assert "cfg.yaml" in line


def test_config_that_is_a_folder(dump, tmp_path, capsys) -> None:
    line = _one_error_line(capsys, ["--input", str(dump), "--output", str(tmp_path / "o"), "--config", str(tmp_path)])
    assert str(tmp_path) in line


def test_unknown_output_mode(dump, tmp_path, capsys) -> None:
    line = _one_error_line(capsys, ["--input", str(dump), "--output", str(tmp_path / "o"), "--output_mode=replace"])
    assert "output_mode" in line and "replace" in line


def test_existing_output_is_refused_by_default(dump, tmp_path, capsys) -> None:
    out = tmp_path / "o"
    (out / "docs").mkdir(parents=True)
    (out / "docs" / "part-0.parquet").write_bytes(b"PAR1")
    line = _one_error_line(capsys, ["--input", str(dump), "--output", str(out)])
    assert "already holds tables" in line and "--output_mode=overwrite" in line
    assert (out / "docs" / "part-0.parquet").read_bytes() == b"PAR1"
