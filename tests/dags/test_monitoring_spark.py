"""The monitoring DAG routes a window to the Spark drift job on EMR on EKS from the model's
``sparkDriftMinBytes``, and the report it publishes has the in-process engine's per-feature verdicts.

``dag.test()`` against the emulator with the EMR on EKS extension (the job runs in Spark local mode as
the job execution role's process, reading the capture and writing its state through S3). The window is
monitored with a 1-byte threshold (Spark: ``prepare_spark_drift`` -> ``spark_drift`` ->
``wait_for_spark_drift`` -> ``spark_drift_report``, then metrics and the retrain decision as usual), and
its report is compared with the in-process engine's on the same window (``monitor_step``, what the
``drift_report`` task runs). With a threshold above the window's size the DAG's branch keeps it in
process; ``test_monitoring_dag.py`` runs whole windows that way (the default threshold).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rehearsal.emr_containers import EmrContainersExtension
from rehearsal.emulator import Emulator
from tests.dags.conftest import DAGS_FOLDER
from tests.dags.test_monitoring_dag import END, ENDPOINT, EVALUATION, GROUP, START, _drifted, _write_window
from tests.unit.serving.model_fixture import write_artifact

pytestmark = pytest.mark.slow

_CLUSTER: dict[str, str] = {}
"""The test's virtual cluster id (set by the emulator fixture)."""
REPORT_KEY = f"monitoring/{ENDPOINT}/20261124T160000Z_20261124T170000Z/report.json"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_artifact(tmp_path_factory.mktemp("model"), rows=3000)


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch, model_dir: Path) -> Iterator[Emulator]:
    for key, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with Emulator(extensions=[EmrContainersExtension(cores=2)]) as emu:
        # the EMR on EKS operator and sensor run in Airflow's process with the default boto3 session
        monkeypatch.setenv("AWS_ENDPOINT_URL", emu.endpoint_url)
        s3 = emu.client("s3")
        for bucket in ("capture-bucket-test", "artifacts-bucket-test"):
            s3.create_bucket(Bucket=bucket)
        for name in ("baseline.json", "baseline_sample.parquet"):
            s3.put_object(
                Bucket="artifacts-bucket-test", Key=EVALUATION + name, Body=(model_dir / name).read_bytes()
            )
        sm = emu.client("sagemaker")
        sm.create_model_package_group(ModelPackageGroupName=GROUP)
        sm.create_model_package(
            ModelPackageGroupName=GROUP,
            ModelApprovalStatus="Approved",
            InferenceSpecification={
                "Containers": [{"Image": "123.dkr.ecr.us-east-1.amazonaws.com/sklearn:1.9-0", "ModelDataUrl": "s3://artifacts-bucket-test/models/churn/run-test-1/output/model.tar.gz"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            ModelMetrics={
                "ModelDataQuality": {
                    "Statistics": {"ContentType": "application/json", "S3Uri": f"s3://artifacts-bucket-test/{EVALUATION}baseline.json"}
                }
            },
        )  # fmt: skip
        emu.client("iam").create_role(
            RoleName="emr-job",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )
        cluster = emu.client("emr-containers").create_virtual_cluster(
            name="vc",
            containerProvider={"id": "eks", "type": "EKS", "info": {"eksInfo": {"namespace": "spark"}}},
        )["id"]
        _CLUSTER["id"] = cluster
        yield emu


def _outputs(write: Callable[..., Path], emu: Emulator, min_bytes: int) -> None:
    cluster = _CLUSTER["id"]
    write(
        endpointUrl=emu.endpoint_url,
        emrVirtualClusterId=cluster,
        emrJobExecutionRoleArn=f"arn:aws:iam::{emu.account_id}:role/emr-job",
        emrLogsS3Uri="s3://artifacts-bucket-test/logs/emr/",
        models={
            "churn": {
                "contract": "churn",
                "modelPackageGroupName": GROUP,
                "endpointName": ENDPOINT,
                "capturePrefix": "datacapture/churn",
                "sparkDriftMinBytes": min_bytes,
            }
        },
    )


def _monitor() -> dict[str, str]:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(DAGS_FOLDER)).dags["churn_monitoring"]
    run = dag.test(run_conf={"window_start": START.isoformat(), "window_end": END.isoformat()})
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def _in_process(emu: Emulator, tmp: Path) -> dict[str, Any]:
    from pipelines.orchestration import model_clients, monitor_step
    from tests.dags.conftest import OUTPUTS_FILE

    clients = model_clients(OUTPUTS_FILE, GROUP, ENDPOINT)
    evaluation = f"s3://artifacts-bucket-test/{EVALUATION}"
    return monitor_step(clients, ENDPOINT, "datacapture/churn", evaluation, START, END, tmp)["report"]


def _branch(min_bytes: int) -> str:
    from dags.mlops_monitoring import drift_engine
    from tests.dags.conftest import OUTPUTS_FILE

    window = {"start": START.isoformat(), "end": END.isoformat()}
    return drift_engine(str(OUTPUTS_FILE), GROUP, ENDPOINT, "datacapture/churn", window, min_bytes)


def _report(emu: Emulator) -> dict[str, Any]:
    body = emu.client("s3").get_object(Bucket="artifacts-bucket-test", Key=REPORT_KEY)["Body"].read()
    return json.loads(body)


@pytest.mark.timeout(1800)  # a monitoring DAG run with a Spark session, on a shared machine
def test_a_big_window_goes_to_spark_with_the_in_process_verdicts(
    airflow_db: Path, emulator: Emulator, model_dir: Path, outputs: Callable[..., Path], tmp_path: Path
) -> None:
    from pipelines.monitoring.capture_window import window_capture

    _write_window(emulator, model_dir, _drifted(600))
    size, folders = window_capture(
        emulator.client("s3"), "capture-bucket-test", "datacapture/churn", ENDPOINT, START, END
    )
    assert size > 0
    assert len(folders) == 1

    _outputs(outputs, emulator, 1)  # every non-empty window goes to Spark
    states = _monitor()
    assert states["drift_engine"] == "success"
    assert states["drift_report"] == "skipped"
    for task_id in ("prepare_spark_drift", "spark_drift", "wait_for_spark_drift", "spark_drift_report"):
        assert states[task_id] == "success", (task_id, states)
    assert states["drift_result"] == "success"
    assert states["publish_metrics"] == "success"
    assert states["trigger_training"] == "success"  # the drifted window triggers retraining, as in process
    on_spark = _report(emulator)
    assert on_spark["context"]["engine"] == "spark"
    runs = emulator.client("emr-containers").list_job_runs(virtualClusterId=_CLUSTER["id"])
    assert [r["state"] for r in runs["jobRuns"]] == ["COMPLETED"]

    # the in-process engine on the same window: the function the DAG's drift_report task runs
    in_process = _in_process(emulator, tmp_path)
    assert in_process["context"].get("engine") is None
    # and a threshold above the window's size keeps it in process (the DAG's own branch)
    assert _branch(size) == "prepare_spark_drift"  # from the threshold on: Spark
    assert _branch(size + 1) == "drift_report"

    assert on_spark["current_rows"] == in_process["current_rows"] == 600
    assert on_spark["drifted_features"] == in_process["drifted_features"]
    assert on_spark["dataset_drift"] == in_process["dataset_drift"]
    verdicts = {f["name"]: (f["method"], f["status"], f["drifted"]) for f in in_process["features"]}
    assert {f["name"]: (f["method"], f["status"], f["drifted"]) for f in on_spark["features"]} == verdicts
    for have, want in zip(on_spark["features"], in_process["features"], strict=True):
        assert have["statistic"] == pytest.approx(want["statistic"], rel=1e-9, abs=1e-12), want["name"]
    assert {"monthly_charges", "tenure_months", "plan"} <= set(on_spark["drifted_features"])
