"""Bad options and configs end with exit status 2 and one line ``newsflow: error: ...``, never a traceback."""

from __future__ import annotations

import os

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


@pytest.mark.parametrize(
    ("text", "needle"),
    [
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
    ],
)
def test_bad_config_values(dump, tmp_path, capsys, text: str, needle: str) -> None:
    line = _one_error_line(
        capsys, ["--input", str(dump), "--output", str(tmp_path / "o"), "--config", _config(tmp_path, text)]
    )
    assert needle in line and "cfg.yaml" in line


def test_config_file_that_does_not_exist(dump, tmp_path, capsys) -> None:
    line = _one_error_line(
        capsys, ["--input", str(dump), "--output", str(tmp_path / "o"), "--config", str(tmp_path / "missing.yaml")]
    )
    assert "config file not found" in line and "missing.yaml" in line


def test_config_that_is_not_text(dump, tmp_path, capsys) -> None:
    line = _one_error_line(
        capsys,
        ["--input", str(dump), "--output", str(tmp_path / "o"), "--config", _config(tmp_path, b"\xff\xfe\x00binary")],
    )
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


# ---------------------------------------------------------------------------- arguments Beam would discard


@pytest.fixture()
def in_tmp(tmp_path, monkeypatch):
    """Run from an empty folder: a command that wrongly runs writes its default ./out there, not in the repo."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--ouput", "x"], "unknown option --ouput (did you mean --output?)"),
        (["--ouput=x"], "unknown option --ouput=x (did you mean --output?)"),
        (["--run-id=7"], "unknown option --run-id=7 (did you mean --run_id?)"),
        (["--out", "x"], "unknown option --out"),  # no abbreviations: Beam allows none either
        (["--quiet", "stray.txt"], "unexpected argument 'stray.txt'"),
        (["-x"], "unknown option -x"),
    ],
)
def test_unknown_arguments_are_refused_before_any_work(dump, in_tmp, capsys, args, needle) -> None:
    line = _one_error_line(capsys, ["--input", str(dump), *args])
    assert needle in line, line
    assert not (in_tmp / "out").exists()  # nothing ran


@pytest.mark.parametrize(
    "flags",
    [
        ["--runner=DirectRunner", "--direct_num_workers=2", "--direct_running_mode=multi_processing"],
        ["--runner", "DirectRunner", "--direct_num_workers", "1"],
        ["--runner=PrismRunner", "--prism_location=/opt/prism", "--environment_type=LOOPBACK"],
        ["--runner=FlinkRunner", "--flink_master=localhost:8081", "--parallelism=2"],
        [
            "--runner=DataflowRunner",
            "--project=p",
            "--region=europe-west1",
            "--temp_location=gs://b/tmp",
            "--staging_location=gs://b/st",
            "--setup_file=./setup.py",
            "--machine_type=n2-standard-4",
            "--max_num_workers=3",
            "--no_use_public_ips",
            "--experiments=a",
            "--experiments=b",
            "--dry_run=True",
            "--save_main_session",
            "--job_name=newsflow-1",
            "--labels=team=news",
        ],
    ],
)
def test_real_beam_options_are_accepted(flags) -> None:
    from apache_beam.options.pipeline_options import DirectOptions, GoogleCloudOptions, StandardOptions

    from pipelines.ingest import parse_args

    ing, opts = parse_args(["--input", "gs://b/d1/", "gs://b/d2/", "--output", "o", *flags])
    assert ing.input == ["gs://b/d1/", "gs://b/d2/"] and ing.output == "o"
    runner = flags[1] if flags[0] == "--runner" else flags[0].split("=", 1)[1]
    assert opts.view_as(StandardOptions).runner == runner
    if "--direct_num_workers=2" in flags:
        assert opts.view_as(DirectOptions).direct_num_workers == 2
    if runner == "DataflowRunner":
        gco = opts.view_as(GoogleCloudOptions)
        assert (gco.project, gco.region, gco.temp_location) == ("p", "europe-west1", "gs://b/tmp")
        assert opts.get_all_options()["experiments"] == ["a", "b"]


def test_inputs_after_one_input_and_repeated_inputs_are_all_kept() -> None:
    from pipelines.ingest import parse_args, split_inputs

    ing, _ = parse_args(["--input", "a.txt", "b.txt", "--input", "c.txt,d.txt", "--input=e.txt", "--runner=Direct"])
    assert split_inputs(ing.input) == ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt"]
    ing, _ = parse_args(["--dedupe_against", "x", "y", "--dedupe_against=z"])
    assert ing.dedupe_against == ["x", "y", "z"]


def test_bad_beam_option_value_is_one_line(dump, in_tmp, capsys) -> None:
    line = _one_error_line(capsys, ["--input", str(dump), "--direct_num_workers=many"])
    assert "--direct_num_workers" in line and "many" in line


def test_help_lists_newsflow_options_with_defaults(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--input", "--output", "--config", "--output_mode", "--run_id", "--dedupe_against", "--quiet"):
        assert option in out, option
    assert "default: ./out" in out and "default: error" in out and "sample dump" in out
    assert "Beam pipeline options are accepted" in out


# ---------------------------------------------------------------------------- runners


def test_unknown_runner(dump, in_tmp, capsys) -> None:
    line = _one_error_line(capsys, ["--input", str(dump), "--runner=Foo"])
    assert "unknown runner 'Foo'" in line and "DataflowRunner" in line


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ([], "--project, --region, --temp_location"),
        (["--project=p"], "--region, --temp_location"),
        (["--project=p", "--region=r"], "--temp_location"),
    ],
)
def test_dataflow_without_its_settings_is_refused(in_tmp, capsys, given, missing) -> None:
    line = _one_error_line(
        capsys, ["--input", "gs://b/dumps/", "--output", "gs://b/news", "--runner=DataflowRunner", *given]
    )
    assert f"needs {missing} (" in line and "dataflow_flags.py" in line


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--input", "DUMP", "--output", "gs://b/news"], "DUMP is a path on this machine"),
        (["--input", "gs://b/d/", "--output", "out"], "out is a path on this machine"),
        (
            ["--input", "gs://b/d/", "--output", "gs://b/news", "--temp_location=/tmp/t"],
            "--temp_location must be a gs://",
        ),
    ],
)
def test_dataflow_with_local_paths_is_refused(dump, in_tmp, capsys, args, needle) -> None:
    settings = ["--runner=DataflowRunner", "--project=p", "--region=r", "--temp_location=gs://b/tmp"]
    argv = [str(dump) if a == "DUMP" else a for a in [*settings, *args]]
    line = _one_error_line(capsys, argv)
    assert needle.replace("DUMP", str(dump)) in line


def test_remote_paths_without_a_runner_are_refused(in_tmp, capsys) -> None:
    """What an unfilled ``$(python deploy/dataflow_flags.py ...)`` leaves: gs:// paths and no runner."""
    line = _one_error_line(capsys, ["--input", "gs://b/dumps/", "--output", "gs://b/news"])
    assert "no --runner was given" in line and "--runner=DirectRunner" in line


def test_dataflow_flags_refuse_an_unfilled_setting(tmp_path, capsys) -> None:
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "deploy" / "dataflow_flags.py"
    spec = importlib.util.spec_from_file_location("dataflow_flags_cli", path)
    flags = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(flags)
    cfg = tmp_path / "df.yaml"
    cfg.write_text(
        "dataflow:\n  runner: DataflowRunner\n  project: p\n  region: r\n"
        "  temp_location: gs://FILL_IN/tmp\n  staging_location: gs://b/st\n  labels: [team=FILL_IN]\n"
    )
    assert flags.main([str(cfg)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # $(...) expands to nothing, and the ingest refuses gs:// with no runner
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "temp_location" in err[0] and "labels" in err[0], err


# ---------------------------------------------------------------------------- inputs and outputs


def test_empty_input_folder(tmp_path, capsys) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    line = _one_error_line(capsys, ["--input", str(tmp_path / "empty"), "--output", str(tmp_path / "o")])
    assert "holds no file" in line and "empty" in line
    assert not (tmp_path / "o").exists()


def test_glob_matching_nothing(dump, tmp_path, capsys) -> None:
    line = _one_error_line(capsys, ["--input", str(dump), f"{dump}/*.zip", "--output", str(tmp_path / "o")])
    assert "matches no file" in line and "*.zip" in line


def test_output_that_is_a_file(dump, tmp_path, capsys) -> None:
    (tmp_path / "o").write_bytes(b"keep me")
    line = _one_error_line(capsys, ["--input", str(dump), "--output", str(tmp_path / "o")])
    assert "is a file, not a folder" in line
    assert (tmp_path / "o").read_bytes() == b"keep me"
    line = _one_error_line(capsys, ["--input", str(dump), "--output", str(tmp_path / "o" / "deeper")])
    assert "cannot be created" in line


def test_output_not_writable(dump, tmp_path, capsys, monkeypatch) -> None:
    real_access = os.access
    locked = str(tmp_path / "locked")
    (tmp_path / "locked").mkdir()
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == locked else real_access(p, mode))
    line = _one_error_line(capsys, ["--input", str(dump), "--output", str(tmp_path / "locked" / "o")])
    assert "is not writable" in line and "locked" in line


def test_dedupe_against_a_missing_folder(dump, tmp_path, capsys) -> None:
    line = _one_error_line(
        capsys, ["--input", str(dump), "--output", str(tmp_path / "o"), "--dedupe_against", str(tmp_path / "yesterdy")]
    )
    assert "--dedupe_against" in line and "yesterdy" in line and "not found" in line
    assert not (tmp_path / "o").exists()


def test_dedupe_against_a_file(dump, tmp_path, capsys) -> None:
    line = _one_error_line(
        capsys, ["--input", str(dump), "--output", str(tmp_path / "o"), "--dedupe_against", str(dump / "a.txt")]
    )
    assert "is a file" in line


# ---------------------------------------------------------------------------- interrupted and failed runs


def test_ctrl_c_is_one_line_and_status_130(dump, tmp_path, capsys, monkeypatch) -> None:
    import pipelines.ingest as ingest

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ingest, "build_pipeline", interrupted)
    assert main(["--input", str(dump), "--output", str(tmp_path / "o"), "--quiet"]) == 130
    assert capsys.readouterr().err.strip().splitlines() == ["newsflow: interrupted"]


def test_ctrl_c_in_a_running_pipeline(tmp_path) -> None:
    """SIGINT to ``python -m pipelines.ingest`` once it started the pipeline: one line, status 130."""
    import pathlib
    import signal
    import subprocess
    import sys
    import time

    repo = pathlib.Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.ingest", "--output", str(tmp_path / "o")],
        cwd=repo,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    first = proc.stderr.readline()  # printed after the imports and checks, just before the pipeline starts
    assert first.startswith("newsflow: run id"), first
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1] == "newsflow: interrupted"
    assert "Traceback" not in err


def test_pipeline_failure_is_one_line_and_its_cause(dump, tmp_path, capsys, monkeypatch) -> None:
    import newsflow.io.read_dump as read_dump

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")
        yield  # a generator, like read_source

    monkeypatch.setattr(read_dump, "read_source", broken)
    assert main(["--input", str(dump), "--output", str(tmp_path / "o"), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2, err
    assert err[0].startswith("newsflow: error: the pipeline failed in step 'ReadDump/ReadFiles")
    assert err[1] == "newsflow: cause: RuntimeError: disk on fire"
    assert main(["--input", str(dump), "--output", str(tmp_path / "o2"), "--quiet", "--verbose"]) == 1
    assert "Traceback" in capsys.readouterr().err
