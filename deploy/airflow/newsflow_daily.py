"""Airflow DAG ``newsflow_daily``: ingest each day's dump folder on Dataflow.

Every day ``ds`` (the logical date; an ``@daily`` run for 2024-07-05 starts after that
day is over) it

1. waits for ``gs://BUCKET/dumps/<ds>/`` to hold files,
2. runs ``python -m pipelines.ingest`` on Dataflow with ``--output_mode=append
   --run_id=<ds>`` into the one partitioned output ``gs://BUCKET/news`` and
   ``--dedupe_against`` that same output, so documents already kept on an earlier day
   (its ``index/`` table) become duplicates instead of being admitted again.

Runs are serialised (``max_active_runs=1``, ``depends_on_past=True``): day N must see
day N-1's index. Two launch routes, chosen with ``NEWSFLOW_LAUNCH``:

- ``beam`` (default): ``BeamRunPythonPipelineOperator`` with ``py_file="pipelines.ingest"``
  and ``py_options=["-m"]``; the Airflow worker needs newsflow installed and the
  repository (for ``--setup_file``) at ``NEWSFLOW_SETUP_FILE``.
- ``flex``: ``DataflowStartFlexTemplateOperator`` on the template built from
  ``deploy/flex`` (nothing of newsflow needed on the Airflow side).

The command building below is plain Python (importable and tested without Airflow);
the Airflow part only runs when Airflow is installed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["DailySettings", "flex_body", "ingest_command", "ingest_options", "settings_from_env", "to_flags"]

DAG_ID = "newsflow_daily"


@dataclasses.dataclass(frozen=True)
class DailySettings:
    """Where the daily job reads and writes, and how Dataflow runs it.

    Args:
      project: GCP project id.
      region: Dataflow region.
      bucket: ``gs://BUCKET`` holding ``dumps/<date>/``, the output and temp/staging folders.
      dumps_prefix: folder of the daily dump folders inside the bucket.
      output_prefix: the partitioned output folder inside the bucket.
      config: newsflow settings file (a path where the job is launched).
      setup_file: the repository's setup.py (Beam builds the worker package from it).
      machine_type: Dataflow worker machine type.
      max_num_workers: autoscaling ceiling.
      service_account_email: worker service account (None: the project default).
      template: Flex Template spec file (``flex`` route).
    """

    project: str
    region: str
    bucket: str
    dumps_prefix: str = "dumps"
    output_prefix: str = "news"
    config: str = "configs/default.yaml"
    setup_file: str = "./setup.py"
    machine_type: str = "n2-standard-4"
    max_num_workers: int = 10
    service_account_email: str | None = None
    template: str | None = None

    @property
    def root(self) -> str:
        return self.bucket.rstrip("/")

    @property
    def output(self) -> str:
        return f"{self.root}/{self.output_prefix}"

    def dump_folder(self, ds: str) -> str:
        return f"{self.root}/{self.dumps_prefix}/{ds}/"


def ingest_options(ds: str, s: DailySettings) -> dict[str, Any]:
    """Pipeline options of the day ``ds`` (a date or the template ``{{ ds }}``), in command order."""
    return {
        "input": s.dump_folder(ds),
        "output": s.output,
        "config": s.config,
        "output_mode": "append",
        "run_id": ds,
        "dedupe_against": s.output,
        "runner": "DataflowRunner",
        "project": s.project,
        "region": s.region,
        "temp_location": f"{s.root}/tmp",
        "staging_location": f"{s.root}/staging",
        "setup_file": s.setup_file,
        "machine_type": s.machine_type,
        "max_num_workers": s.max_num_workers,
        "service_account_email": s.service_account_email,
    }


def to_flags(options: Mapping[str, Any]) -> list[str]:
    """Options as Beam flags the way Airflow's Beam hook passes them: None/False left out, True bare, lists repeated."""
    flags: list[str] = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        if value is True:
            flags.append(f"--{key}")
        elif isinstance(value, (list, tuple)):
            flags.extend(f"--{key}={v}" for v in value)
        else:
            flags.append(f"--{key}={value}")
    return flags


def ingest_command(ds: str, s: DailySettings, python: str = "python") -> list[str]:
    """The shell command the ``beam`` route runs for day ``ds`` (documented in docs/running.md)."""
    return [python, "-m", "pipelines.ingest", *to_flags(ingest_options(ds, s))]


_FLEX_ENVIRONMENT = {
    "machine_type": "machineType",
    "max_num_workers": "maxWorkers",
    "temp_location": "tempLocation",
    "staging_location": "stagingLocation",
    "service_account_email": "serviceAccountEmail",
}
_FLEX_PARAMETERS = ("input", "output", "config", "output_mode", "run_id", "dedupe_against")


def flex_body(ds: str, s: DailySettings, job_name: str | None = None) -> dict[str, Any]:
    """The ``projects.locations.flexTemplates.launch`` request body of the ``flex`` route for day ``ds``.

    ``config`` is a path inside the template image (``/template/configs/...``) on this route.
    """
    if not s.template:
        raise ValueError("the flex route needs DailySettings.template (gs://.../newsflow-ingest.json)")
    opts = ingest_options(ds, s)
    params = {k: str(opts[k]) for k in _FLEX_PARAMETERS if opts.get(k) is not None}
    if not os.path.isabs(s.config):
        params["config"] = f"/template/{s.config}"
    env = {camel: opts[key] for key, camel in _FLEX_ENVIRONMENT.items() if opts.get(key) is not None}
    name = job_name or f"newsflow-{ds}".replace("_", "-").lower()
    return {
        "launchParameter": {
            "jobName": name,
            "containerSpecGcsPath": s.template,
            "parameters": params,
            "environment": env,
        }
    }


def settings_from_env(environ: Mapping[str, str] | None = None) -> DailySettings:
    """Settings from ``NEWSFLOW_*`` environment variables of the Airflow deployment."""
    env = os.environ if environ is None else environ
    return DailySettings(
        project=env.get("NEWSFLOW_GCP_PROJECT", "my-project"),
        region=env.get("NEWSFLOW_GCP_REGION", "us-central1"),
        bucket=env.get("NEWSFLOW_BUCKET", "gs://my-news-bucket"),
        config=env.get("NEWSFLOW_CONFIG", "configs/default.yaml"),
        setup_file=env.get("NEWSFLOW_SETUP_FILE", "./setup.py"),
        machine_type=env.get("NEWSFLOW_MACHINE_TYPE", "n2-standard-4"),
        max_num_workers=int(env.get("NEWSFLOW_MAX_WORKERS", "10")),
        service_account_email=env.get("NEWSFLOW_SERVICE_ACCOUNT") or None,
        template=env.get("NEWSFLOW_FLEX_TEMPLATE") or None,
    )


def _build_dag() -> Any:
    """The DAG object (only called when Airflow is importable)."""
    from airflow import DAG
    from airflow.providers.google.cloud.sensors.gcs import GCSObjectsWithPrefixExistenceSensor

    s = settings_from_env()
    bucket_name = s.root.removeprefix("gs://")
    # A retry re-runs the day with the same run id, which replaces that day's files and keeps the
    # same documents (docs/running.md, "Re-running a day").
    default_args = {"depends_on_past": True, "retries": 1}
    with DAG(
        dag_id=DAG_ID,
        schedule="@daily",
        start_date=dt.datetime(2024, 7, 1),
        catchup=False,
        max_active_runs=1,
        default_args=default_args,
        tags=["newsflow"],
    ) as dag:
        wait = GCSObjectsWithPrefixExistenceSensor(
            task_id="wait_for_dump",
            bucket=bucket_name,
            prefix=f"{s.dumps_prefix}/{{{{ ds }}}}/",
            mode="reschedule",
            poke_interval=600,
            timeout=12 * 3600,
        )
        if os.environ.get("NEWSFLOW_LAUNCH", "beam") == "flex":
            from airflow.providers.google.cloud.operators.dataflow import DataflowStartFlexTemplateOperator

            ingest = DataflowStartFlexTemplateOperator(
                task_id="ingest",
                project_id=s.project,
                location=s.region,
                body=flex_body("{{ ds }}", s, job_name="newsflow-{{ ds_nodash }}"),
                wait_until_finished=True,
            )
        else:
            from airflow.providers.apache.beam.operators.beam import BeamRunPythonPipelineOperator
            from airflow.providers.google.cloud.operators.dataflow import DataflowConfiguration

            options = ingest_options("{{ ds }}", s)
            runner = options.pop("runner")
            ingest = BeamRunPythonPipelineOperator(
                task_id="ingest",
                runner=runner,
                py_file="pipelines.ingest",
                py_options=["-m"],
                pipeline_options=options,
                dataflow_config=DataflowConfiguration(
                    job_name="newsflow-{{ ds_nodash }}",
                    project_id=s.project,
                    location=s.region,
                    wait_until_finished=True,
                ),
            )
        wait >> ingest
    return dag


try:
    import airflow  # noqa: F401
except ImportError:  # the command building above stays importable without Airflow
    dag = None
else:
    dag = _build_dag()
