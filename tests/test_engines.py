"""newsflow.engines: where engines live, the flags a runner gets, and installing with fake clients."""

from __future__ import annotations

import os
import pathlib
import stat

import pytest

from newsflow import engines
from newsflow.engines import ENGINES, EngineError, engine_flags, find, install


@pytest.fixture()
def cache(tmp_path, monkeypatch) -> pathlib.Path:
    root = tmp_path / "engines"
    monkeypatch.setenv("NEWSFLOW_ENGINES", str(root))
    return root


def _fake_install(cache: pathlib.Path, name: str) -> pathlib.Path:
    path = ENGINES[name].path(engines.beam_version(), cache)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x")
    return path


def _fake_client(bin_dir: pathlib.Path, name: str, script: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    exe = bin_dir / name
    exe.write_text("#!/bin/sh\n" + script)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)


def test_versions_follow_the_installed_beam() -> None:
    v = engines.beam_version()
    assert ENGINES["prism"].artifact(v) == f"github.com/apache/beam/sdks/v2/go/cmd/prism@v{v}"
    assert ENGINES["flink"].artifact(v).endswith(f"-job-server:{v}")
    assert ENGINES["spark"].artifact(v) == f"org.apache.beam:beam-runners-spark-3-job-server:{v}"
    assert ENGINES["spark"].path(v, pathlib.Path("/c")) == pathlib.Path(
        f"/c/spark/{v}/beam-runners-spark-3-job-server-{v}.jar"
    )


def test_the_cache_folder_is_an_environment_setting(cache) -> None:
    assert engines.cache_dir() == cache
    assert find("prism") is None
    path = _fake_install(cache, "prism")
    assert find("prism") == path


def test_prism_runner_gets_the_installed_binary(cache) -> None:
    path = _fake_install(cache, "prism")
    assert f"--prism_location={path}" in engine_flags("PrismRunner", [])
    assert "--experiments=disable_prism_server_singleton" in engine_flags("PrismRunner", [])
    assert f"--prism_location={path}" in engine_flags("apache_beam.runners.portability.prism_runner.PrismRunner", [])


def test_long_jobs_are_not_cut_off_by_the_job_service_deadline(cache) -> None:
    """Beam's 300 s default deadline also ends the job's state stream: a longer job would fail."""
    _fake_install(cache, "prism")
    timeout = [f for f in engine_flags("PrismRunner", []) if f.startswith("--job_server_timeout=")]
    assert len(timeout) == 1 and int(timeout[0].split("=")[1]) >= 24 * 3600
    assert not any(
        f.startswith("--job_server_timeout") for f in engine_flags("PrismRunner", ["--job_server_timeout=9"])
    )


def test_flags_the_user_gave_are_kept(cache) -> None:
    assert not any(f.startswith("--prism_location") for f in engine_flags("PrismRunner", ["--prism_location=/p"]))
    _fake_install(cache, "flink")
    flink = engine_flags("FlinkRunner", ["--flink_master=host:8081"])
    assert f"--flink_job_server_jar={find('flink')}" in flink
    assert not any(f.startswith("--flink_master") for f in flink)
    assert engine_flags("FlinkRunner", ["--job_endpoint=localhost:8099"]) == []


def test_flink_and_spark_default_to_a_local_cluster(cache) -> None:
    _fake_install(cache, "flink")
    _fake_install(cache, "spark")
    assert "--flink_master=[local]" in engine_flags("FlinkRunner", [])
    assert "--spark_master_url=local[2]" in engine_flags("SparkRunner", [])


def test_other_runners_need_nothing(cache) -> None:
    for runner in (None, "DirectRunner", "DataflowRunner", "apache_beam.runners.portability.fn_api_runner.FnApiRunner"):
        assert engine_flags(runner, []) == []


def test_a_missing_engine_is_one_line_that_says_how_to_install_it(cache) -> None:
    with pytest.raises(EngineError) as err:
        engine_flags("PrismRunner", [])
    message = str(err.value)
    assert "\n" not in message
    assert "python -m newsflow.engines install prism" in message and str(cache) in message


def test_install_runs_go_install_into_the_cache(cache, tmp_path, monkeypatch) -> None:
    log = tmp_path / "go.log"
    _fake_client(tmp_path / "bin", "go", f'echo "$@" > {log}\nprintf bin > "$GOBIN/prism"\n')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    path = install("prism")
    assert path == find("prism") and path.read_bytes() == b"bin"
    assert log.read_text().split() == ["install", ENGINES["prism"].artifact(engines.beam_version())]
    log.unlink()
    assert install("prism") == path and not log.exists()  # present: reused, the client is not run again


def test_a_failed_client_names_the_artifact_and_leaves_nothing(cache, tmp_path, monkeypatch) -> None:
    msg = "[ERROR] Could not find artifact org.apache.beam:beam-runners-spark-3-job-server:jar:9.9 in central"
    _fake_client(tmp_path / "bin", "mvn", f'echo "[INFO] Scanning"\necho "{msg}"\nexit 1\n')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(EngineError, match="Could not find artifact org.apache.beam:beam-runners-spark-3"):
        install("spark")
    assert find("spark") is None
    assert not [p for p in (cache / "spark").rglob("*") if p.is_file()]


def test_a_missing_client_is_an_engine_error(cache, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(EngineError, match="go is not on PATH"):
        install("prism")


def test_the_command_reports_each_engine_and_fails_when_one_cannot_be_had(cache, tmp_path, monkeypatch, capsys) -> None:
    _fake_install(cache, "prism")
    _fake_client(tmp_path / "bin", "mvn", 'echo "[ERROR] Could not find artifact x"\nexit 1\n')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert engines.main(["install", "prism"]) == 0
    assert engines.main(["install", "prism", "flink"]) == 1
    out, err = capsys.readouterr()
    assert str(find("prism")) in out
    assert "flink: not installed" in err and "Could not find artifact x" in err
    assert engines.main(["status"]) == 0
    assert "not installed" in capsys.readouterr().out


def test_every_spelling_beam_accepts_finds_the_engine(cache) -> None:
    """``--runner=prism`` runs PrismRunner in Beam, so it must get the installed binary too."""
    from apache_beam.options.pipeline_options import PrismRunnerOptions

    from pipelines.cli import parse_args, with_engine

    path = _fake_install(cache, "prism")
    for name in ("PrismRunner", "prism", "prismrunner", "apache_beam.runners.portability.prism_runner.PrismRunner"):
        argv = [f"--runner={name}"]
        opts = with_engine(argv, parse_args(argv)[1])
        assert opts.view_as(PrismRunnerOptions).prism_location == str(path), name
