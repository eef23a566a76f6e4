"""The deployment files agree with the pipeline: Flex Template, worker package, DAG, Dataflow settings."""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
from types import ModuleType

import pytest
import yaml

from newsflow.io.write_tables import OUTPUT_MODES
from pipelines.ingest import IngestOptions, main

REPO = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
# Options a Flex Template cannot pass as `--name=value` parameters (store_true flags).
NOT_TEMPLATE_PARAMETERS = {"quiet", "verbose"}
DOC_MARKER = "<!-- newsflow-daily-command -->"
EXAMPLE_DS = "2024-07-05"


def _load(path: pathlib.Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dag_module() -> ModuleType:
    return _load(DEPLOY / "airflow" / "newsflow_daily.py", "newsflow_daily")


@pytest.fixture(scope="module")
def flags_module() -> ModuleType:
    return _load(DEPLOY / "dataflow_flags.py", "dataflow_flags")


def _ingest_option_names() -> set[str]:
    parser = argparse.ArgumentParser()
    IngestOptions._add_argparse_args(parser)
    return {a.dest for a in parser._actions if a.dest != "help"}


# ---------------------------------------------------------------------------- Flex Template


def test_metadata_parameters_are_the_pipeline_options() -> None:
    meta = json.loads((DEPLOY / "flex" / "metadata.json").read_text())
    names = [p["name"] for p in meta["parameters"]]
    assert len(names) == len(set(names)), names
    assert set(names) == _ingest_option_names() - NOT_TEMPLATE_PARAMETERS
    for p in meta["parameters"]:
        assert p["helpText"].strip() and p["label"].strip(), p["name"]
        for rx in p.get("regexes", []):
            re.compile(rx)
    by_name = {p["name"]: p for p in meta["parameters"]}
    assert by_name["input"]["isOptional"] is False and by_name["output"]["isOptional"] is False

    # The regexes accept what the pipeline accepts and refuse what cannot work on Dataflow.
    def ok(name: str, value: str) -> bool:
        return all(re.fullmatch(rx, value) for rx in by_name[name].get("regexes", []))

    assert ok("input", "gs://b/dumps/2024-07-05/") and ok("input", "gs://b/d1/,gs://b/d2/*.tar.gz")
    assert not ok("input", "/home/me/dumps") and not ok("output", "out/")
    assert [m for m in OUTPUT_MODES if ok("output_mode", m)] == list(OUTPUT_MODES)
    assert not ok("output_mode", "merge")
    assert ok("run_id", EXAMPLE_DS) and not ok("run_id", "a/b")
    assert ok("config", "/template/configs/default.yaml")


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "flex" / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def test_dockerfile_copies_existing_paths_and_points_at_them() -> None:
    steps = _dockerfile_instructions()
    assert steps[0] == ("FROM", "gcr.io/dataflow-templates-base/python311-template-launcher-base")
    args = {}
    for op, rest in steps:
        if op == "ARG" and "=" in rest:
            k, v = rest.split("=", 1)
            args[k] = v
    workdir = args.get("WORKDIR", "/template")
    copied: dict[str, str] = {}  # path in the image -> path in the repository
    for op, rest in steps:
        if op != "COPY":
            continue
        parts = shlex.split(rest.replace("${WORKDIR}", workdir))
        srcs, dest = parts[:-1], parts[-1]
        assert srcs, rest
        for src in srcs:
            assert (REPO / src).exists(), f"Dockerfile copies {src}, which is not in the repository"
            target = dest.rstrip("/") + "/" + pathlib.Path(src).name if dest.endswith("/") or len(srcs) > 1 else dest
            copied[target] = src
    env = {}
    for op, rest in steps:
        if op == "ENV":
            k, v = rest.split("=", 1)
            env[k] = v.strip('"').replace("${WORKDIR}", workdir)
    for key, expect in (
        ("FLEX_TEMPLATE_PYTHON_PY_FILE", "pipelines/ingest.py"),
        ("FLEX_TEMPLATE_PYTHON_SETUP_FILE", "setup.py"),
    ):
        path = env[key]
        assert path == f"{workdir}/{expect}", (key, path)
        # The file is in the image: copied itself or inside a copied folder.
        assert any(path == t or path.startswith(t.rstrip("/") + "/") for t in copied), (key, path, copied)
        assert (REPO / expect).is_file()
    # Everything setup.py needs to build the worker package is in the image.
    for needed in ("setup.py", "setup.cfg", "pyproject.toml", "newsflow", "pipelines"):
        assert needed in copied.values(), f"{needed} is not copied into the image"


# ---------------------------------------------------------------------------- worker package


def _sdist_command(tmp: pathlib.Path) -> list[str]:
    """The command Beam's stager runs for --setup_file (stager._build_setup_package)."""
    if importlib.util.find_spec("build") is not None:
        return [sys.executable, "-m", "build", "--no-isolation", "--sdist", "--outdir", str(tmp / "dist"), "."]
    return [sys.executable, "setup.py", "sdist", "--dist-dir", str(tmp / "dist")]


def test_setup_file_sdist_ships_the_model(tmp_path: pathlib.Path) -> None:
    """What --setup_file stages holds newsflow, pipelines and the bundled fastText model."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "README.md", "LICENSE", "NOTICE"):
        if (REPO / name).exists():
            shutil.copy2(REPO / name, src / name)
    for pkg in ("newsflow", "pipelines"):
        shutil.copytree(REPO / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    proc = subprocess.run(_sdist_command(tmp_path), cwd=src, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sdist,) = (tmp_path / "dist").glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
        model = next(m for m in tar.getmembers() if m.name.endswith("newsflow/models/lid.176.ftz"))
        assert model.size == (REPO / "newsflow" / "models" / "lid.176.ftz").stat().st_size
    for needed in (
        "setup.py",
        "newsflow/__init__.py",
        "newsflow/core/lang.py",
        "pipelines/ingest.py",
        "newsflow/models/NOTICE.md",
    ):
        assert needed in names, f"{needed} missing from the worker sdist"
    assert not any(n.startswith(("tests/", "benchmarks/", "deploy/")) for n in names)


# ---------------------------------------------------------------------------- Airflow DAG


def test_dag_parses_and_imports_without_airflow(dag_module: ModuleType) -> None:
    source = (DEPLOY / "airflow" / "newsflow_daily.py").read_text()
    tree = ast.parse(source)
    top_imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not any("airflow" in ast.unparse(n) for n in top_imports), "airflow must be imported lazily"
    assert dag_module.DAG_ID == "newsflow_daily"
    if importlib.util.find_spec("airflow") is None:
        assert dag_module.dag is None


def _documented_command() -> list[str]:
    text = (REPO / "docs" / "running.md").read_text()
    assert text.count(DOC_MARKER) == 1
    block = re.search(re.escape(DOC_MARKER) + r"\s*```bash\n(.*?)```", text, re.S)
    assert block, "no fenced bash block after the marker in docs/running.md"
    return shlex.split(block.group(1).replace("\\\n", " "))


def test_dag_command_is_the_documented_one(dag_module: ModuleType) -> None:
    s = dag_module.DailySettings(project="my-project", region="us-central1", bucket="gs://my-news-bucket")
    cmd = dag_module.ingest_command(EXAMPLE_DS, s)
    assert cmd == _documented_command()
    opts = dict(a[2:].split("=", 1) for a in cmd[3:])
    assert cmd[:3] == ["python", "-m", "pipelines.ingest"]
    assert opts["input"] == f"gs://my-news-bucket/dumps/{EXAMPLE_DS}/"
    assert opts["output_mode"] == "append" and opts["run_id"] == EXAMPLE_DS
    assert opts["dedupe_against"] == opts["output"]
    assert opts["runner"] == "DataflowRunner"
    # Every newsflow option the DAG passes exists in the pipeline.
    ours = _ingest_option_names()
    assert {"input", "output", "config", "output_mode", "run_id", "dedupe_against"} <= set(opts) & ours


def test_dag_templated_command_and_options_parse(dag_module: ModuleType) -> None:
    s = dag_module.DailySettings(
        project="my-project",
        region="us-central1",
        bucket="gs://my-news-bucket/",
        service_account_email="sa@my-project.iam.gserviceaccount.com",
    )
    cmd = dag_module.ingest_command("{{ ds }}", s)
    assert "--input=gs://my-news-bucket/dumps/{{ ds }}/" in cmd and "--run_id={{ ds }}" in cmd
    assert "--service_account_email=sa@my-project.iam.gserviceaccount.com" in cmd
    # Beam parses the command's options as the DAG meant them.
    from apache_beam.options.pipeline_options import PipelineOptions

    ing = PipelineOptions(dag_module.ingest_command(EXAMPLE_DS, s)[3:]).view_as(IngestOptions)
    assert ing.input == [f"gs://my-news-bucket/dumps/{EXAMPLE_DS}/"]
    assert ing.dedupe_against == ["gs://my-news-bucket/news"] and ing.output_mode == "append"


def test_flex_body_matches_template_metadata(dag_module: ModuleType) -> None:
    s = dag_module.DailySettings(
        project="my-project",
        region="us-central1",
        bucket="gs://my-news-bucket",
        template="gs://my-news-bucket/templates/newsflow-ingest.json",
    )
    body = dag_module.flex_body(EXAMPLE_DS, s)["launchParameter"]
    meta = {p["name"]: p for p in json.loads((DEPLOY / "flex" / "metadata.json").read_text())["parameters"]}
    assert set(body["parameters"]) <= set(meta)
    for name, value in body["parameters"].items():
        for rx in meta[name].get("regexes", []):
            assert re.fullmatch(rx, value), (name, value, rx)
    assert body["parameters"]["config"] == "/template/configs/default.yaml"
    assert body["containerSpecGcsPath"] == s.template and body["jobName"] == f"newsflow-{EXAMPLE_DS}"
    assert body["environment"]["tempLocation"] == "gs://my-news-bucket/tmp"
    with pytest.raises(ValueError):
        dag_module.flex_body(EXAMPLE_DS, dag_module.DailySettings(project="p", region="r", bucket="gs://b"))


def test_settings_from_env(dag_module: ModuleType) -> None:
    s = dag_module.settings_from_env(
        {
            "NEWSFLOW_GCP_PROJECT": "proj-1",
            "NEWSFLOW_BUCKET": "gs://bk",
            "NEWSFLOW_MAX_WORKERS": "3",
            "NEWSFLOW_SETUP_FILE": "/srv/newsflow/setup.py",
        }
    )
    cmd = dag_module.ingest_command(EXAMPLE_DS, s)
    assert "--project=proj-1" in cmd and "--max_num_workers=3" in cmd
    assert "--setup_file=/srv/newsflow/setup.py" in cmd and "--output=gs://bk/news" in cmd
    assert not any(a.startswith("--service_account_email") for a in cmd)


# ---------------------------------------------------------------------------- local runner guard


def test_multi_threading_with_several_workers_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    status = main(
        [
            "--output",
            str(tmp_path / "out"),
            "--direct_num_workers=2",
            "--direct_running_mode=multi_threading",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("newsflow: error:")
    assert "multi_threading" in err and "multi_processing" in err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------- configs/dataflow.yaml


def test_dataflow_yaml_has_the_required_settings(flags_module: ModuleType) -> None:
    data = yaml.safe_load((REPO / "configs" / "dataflow.yaml").read_text())
    assert set(data) == {"dataflow"}
    opts = data["dataflow"]
    required = {
        "runner",
        "project",
        "region",
        "temp_location",
        "staging_location",
        "setup_file",
        "machine_type",
        "max_num_workers",
        "service_account_email",
        "sdk_container_image",
    }
    assert required <= set(opts), required - set(opts)
    assert set(flags_module.REQUIRED_KEYS) <= set(opts)
    assert opts["runner"] == "DataflowRunner" and opts["setup_file"] == "./setup.py"
    # Every key is a real Beam/Dataflow pipeline option.
    from apache_beam.options.pipeline_options import PipelineOptions

    known = set(PipelineOptions([]).get_all_options(retain_unknown_options=False))
    assert set(opts) <= known, set(opts) - known
    # As shipped, the placeholders are refused, naming them.
    with pytest.raises(ValueError, match="project, region, temp_location, staging_location"):
        flags_module.to_flags(opts)


def test_dataflow_flags_print_parsable_beam_flags(flags_module: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(REPO / "configs" / "dataflow.yaml")
    sets = ["project=my-project", "region=us-central1", "temp_location=gs://b/tmp", "staging_location=gs://b/st"]
    assert flags_module.main([path, *[x for kv in sets for x in ("--set", kv)]]) == 0
    flags = shlex.split(capsys.readouterr().out)
    assert "--project=my-project" in flags and "--setup_file=./setup.py" in flags
    assert not any(f.startswith(("--service_account_email", "--sdk_container_image")) for f in flags)
    from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions, SetupOptions

    opts = PipelineOptions(flags)
    gco = opts.view_as(GoogleCloudOptions)
    assert (gco.project, gco.region, gco.temp_location) == ("my-project", "us-central1", "gs://b/tmp")
    assert opts.view_as(SetupOptions).setup_file == "./setup.py"
    assert flags_module.main([path]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "FILL_IN" in err
    assert flags_module.to_flags(
        {
            **{k: "x" for k in flags_module.REQUIRED_KEYS},
            "labels": ["a=b", "c=d"],
            "use_public_ips": False,
            "x": True,
            "y": None,
        }
    ) == [*[f"--{k}=x" for k in flags_module.REQUIRED_KEYS], "--labels=a=b", "--labels=c=d", "--x"]


def test_readme_and_docs_name_the_deploy_files() -> None:
    text = (REPO / "deploy" / "README.md").read_text() + (REPO / "docs" / "running.md").read_text()
    for path in (
        "deploy/flex/Dockerfile",
        "deploy/flex/metadata.json",
        "deploy/airflow/newsflow_daily.py",
        "configs/dataflow.yaml",
        "deploy/dataflow_flags.py",
    ):
        assert path in text, path
        assert (REPO / path).exists(), path
