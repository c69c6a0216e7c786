"""Spark scoring runs on EMR on EKS as on AWS and agrees with batch transform row by row.

One emulator with the dev stack deployed (the lifecycle's ``emulator`` and ``deploy`` stages, IAM
enforced). A churn model trained by the pipeline's own training code is packaged the way the training
job packages it (``code/`` with the serving closure) and registered Approved. The batch DAG's
``spark`` engine (:func:`pipelines.batch.run_spark_scoring`) is called with the MWAA execution role's
session: ``StartJobRun`` on the platform's virtual cluster as the Airflow role, the job run as the
``features`` job execution role (IRSA through the cluster's OIDC provider), Spark in local mode; the
job reads the package's ``model.tar.gz`` from S3 and answers each row with the package's inference
handler. Its output must be the Glue partition ``run=<id>`` and must equal, row by row, the answers of
a SageMaker batch transform job over the same package and rows (the container the endpoint runs).

The same deployment runs the monitoring DAG's Spark drift branch (``spark_drift_request``, StartJobRun,
``spark_drift_monitor``) over a captured window: the job reads the capture bucket and writes its state
as the job role, and its verdicts are the in-process engine's.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from rehearsal import lifecycle
from rehearsal.iam import Authorizer
from rehearsal.iam.stages import IAM_ENV
from rehearsal.run import RehearsalOptions, RunContext, Stage
from tests.rehearsal.endpoint_fixtures import IMAGE

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
ROWS = 120
RUN_ID = "spark-test-1"


def _stage(name: str) -> Stage:
    return {s.name: s for s in lifecycle.lifecycle_stages(RehearsalOptions(quick=True))}[name]


def _churn_package(ctx: RunContext, tmp: Path) -> tuple[str, pd.DataFrame]:
    """A churn model trained by ``pipelines.train`` and packaged with its serving code, registered
    Approved in the model's group; returns the package and the held-out feature rows (``__split__=test``)."""
    from pipelines.contract import load_contract
    from pipelines.features.spec import build_features_pandas, feature_spec
    from pipelines.synthetic import generate
    from pipelines.train import package_model, train, write_serving_code

    assert ctx.emulator is not None
    assert ctx.deployment is not None
    outputs = ctx.deployment.outputs
    contract = load_contract(REPO / "contracts" / "churn.yaml")
    features = build_features_pandas(generate("churn", 1200, 3), feature_spec(contract))
    features["__split__"] = ["test" if i % 10 == 0 else "train" for i in range(len(features))]
    (tmp / "train").mkdir()
    features[features["__split__"] == "train"].drop(columns="__split__").to_parquet(
        tmp / "train" / "part-0.parquet"
    )
    train(REPO / "contracts" / "churn.yaml", tmp / "train", tmp / "model")
    write_serving_code(tmp / "model")
    s3, sm = ctx.emulator.client("s3"), ctx.emulator.client("sagemaker")
    bucket, key = str(outputs["artifactsBucket"]), "models/churn/spark-test/output/model.tar.gz"
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=package_model(tmp / "model"),
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=str(outputs["mlKeyArn"]),
    )
    # the feature job's table: Parquet under features/<dataset>/, the lake key
    buffer = io.BytesIO()
    features.to_parquet(buffer, index=False)
    s3.put_object(
        Bucket=str(outputs["featuresBucket"]),
        Key="features/churn/part-00000.parquet",
        Body=buffer.getvalue(),
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=str(outputs["dataLakeKeyArn"]),
    )
    container = {
        "Image": IMAGE,
        "ModelDataUrl": f"s3://{bucket}/{key}",
        "Environment": {
            "SAGEMAKER_PROGRAM": "inference.py",
            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        },
    }
    package = sm.create_model_package(
        ModelPackageGroupName=lifecycle._group(ctx),  # pyright: ignore[reportPrivateUsage]
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [container],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )["ModelPackageArn"]
    held_out = pd.DataFrame(features[features["__split__"] == "test"]).reset_index(drop=True)
    return str(package), held_out


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunContext]:
    out = tmp_path_factory.mktemp("spark-scoring")
    mp = pytest.MonkeyPatch()
    mp.delenv(IAM_ENV, raising=False)  # the default: enforced
    context = RunContext(options=RehearsalOptions(out=out, quick=True), out=out)
    try:
        for name in ("emulator", "deploy"):
            stage = _stage(name)
            assert stage.check(stage.run(context), context) is None, name
        package, held_out = _churn_package(context, out)
        context.values.update(spark_package=package, held_out=held_out)
        yield context
    finally:
        problems = context.close()
        mp.undo()
        assert not problems


def _parquet_rows(ctx: RunContext, uri: str) -> pd.DataFrame:
    assert ctx.emulator is not None
    s3 = ctx.emulator.client("s3")
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        if o["Key"].endswith(".parquet")
    ]
    assert keys, f"no Parquet under {uri}"
    return pd.concat(
        [pd.read_parquet(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read())) for k in keys],
        ignore_index=True,
    )


@pytest.mark.timeout(1800)  # a Spark session and a transform container on a shared 2-core machine
def test_spark_scores_on_emr_equal_the_transform_jobs_predictions(ctx: RunContext) -> None:
    from pipelines.batch import read_output, run_spark_scoring, run_transform, stage_input
    from pipelines.contract import load_contract
    from rehearsal.stages import _clients  # pyright: ignore[reportPrivateUsage]

    assert ctx.emulator is not None
    assert ctx.deployment is not None
    outputs = ctx.deployment.outputs
    clients = _clients(ctx)  # the MWAA execution role's session, as the batch DAG's tasks have it
    contract = load_contract(REPO / "contracts" / "churn.yaml")
    target = clients.settings.model_target(contract.name, "churn")
    package = str(ctx.values["spark_package"])
    held_out: pd.DataFrame = ctx.values["held_out"]
    features_uri = f"s3://{outputs['featuresBucket']}/features/churn/"

    result = run_spark_scoring(
        clients, contract, target, package, features_uri, RUN_ID, split="test", poll_s=1.0, timeout_s=900
    )

    described = clients.client("emr-containers").describe_job_run(
        virtualClusterId=str(outputs["emrVirtualClusterId"]), id=result["job_run_id"]
    )["jobRun"]
    assert described["state"] == "COMPLETED", described.get("stateDetails")
    assert described["executionRoleArn"] == outputs["emrJobExecutionRoleArn"]
    authorizer = ctx.emulator.authorizer
    assert isinstance(authorizer, Authorizer)
    assert authorizer.enforce
    calls = {(c.role_arn.rsplit("/", 1)[-1], c.action) for c in authorizer.authorized}
    airflow_role = str(outputs["airflowExecutionRoleArn"]).rsplit("/", 1)[-1]
    job_role = str(outputs["emrJobExecutionRoleArn"]).rsplit("/", 1)[-1]
    assert (airflow_role, "emr-containers:StartJobRun") in calls
    assert (job_role, "s3:GetObject") in calls  # the model and the table, read as the job role

    scored = _parquet_rows(ctx, result["output_uri"])
    assert len(scored) == len(held_out)
    assert list(scored.columns[: len(contract.unique_keys)]) == list(contract.unique_keys)
    # the same rows through a batch transform job over the same package (the endpoint's container)
    key = contract.unique_keys[0]
    scored = scored.set_index(key).loc[held_out[key]].reset_index()
    lines = held_out[contract.feature_names].to_csv(index=False, header=False).splitlines()
    input_uri = stage_input(clients, target, RUN_ID, lines)
    transform = run_transform(
        clients, contract, target, package, input_uri, RUN_ID, poll_s=0.5, timeout_s=600
    )
    width = len(contract.feature_names)
    transformed = [",".join(line.split(",")[width:]) for line in read_output(clients, transform.output_uri)]
    assert scored["prediction"].tolist() == transformed
    assert scored["label"].tolist() == [line.split(",", 1)[0] for line in transformed]

    glue = ctx.emulator.client("glue")
    database = str(outputs["glueDatabaseName"])
    partition = glue.get_partition(DatabaseName=database, TableName=result["table"], PartitionValues=[RUN_ID])
    assert partition["Partition"]["StorageDescriptor"]["Location"] == result["output_uri"]
    columns = [c["Name"] for c in partition["Partition"]["StorageDescriptor"]["Columns"]]
    assert columns[-2:] == ["prediction", "label"]


@pytest.mark.timeout(1800)
def test_the_spark_drift_job_runs_as_the_job_role_and_gives_the_in_process_verdicts(
    ctx: RunContext, tmp_path: Path
) -> None:
    """The monitoring DAG's Spark branch under enforced IAM: the plan and script written as the Airflow
    role, the job reading the capture bucket and writing its state as the job role, the same verdicts."""
    from datetime import UTC, datetime, timedelta

    from pipelines.features.emr import JobRun, wait_for_job_run
    from pipelines.monitoring.capture import capture_key
    from pipelines.monitoring.spark_drift import spark_drift_monitor, spark_drift_request
    from pipelines.orchestration import monitor_step
    from rehearsal.stages import _clients  # pyright: ignore[reportPrivateUsage]
    from tests.unit.monitoring.capture_fixture import capture_lines
    from tests.unit.serving.model_fixture import sample_rows, write_artifact

    assert ctx.emulator is not None
    assert ctx.deployment is not None
    outputs = ctx.deployment.outputs
    s3 = ctx.emulator.client("s3")  # the administrator lands the baseline and the capture
    ml_key = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": str(outputs["mlKeyArn"])}
    artifacts, capture = str(outputs["artifactsBucket"]), str(outputs["captureBucket"])
    model_dir = write_artifact(tmp_path / "model", rows=3000)
    evaluation = "models/churn/drift-test/evaluation/"
    for name in ("baseline.json", "baseline_sample.parquet"):
        s3.put_object(Bucket=artifacts, Key=evaluation + name, Body=(model_dir / name).read_bytes(), **ml_key)
    start = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
    end = start + timedelta(hours=1)
    rows = sample_rows(400, seed=6)
    rows["monthly_charges"] = rows["monthly_charges"] + 25
    endpoint, prefix = "mlops-dev-churn", "datacapture/churn"
    for offset, minute in ((0, 5), (200, 35)):
        when = start + timedelta(minutes=minute)
        lines = capture_lines(rows.iloc[offset : offset + 200], [0.5] * 200, when, rows_per_request=10)
        key = capture_key(prefix, endpoint, "AllTraffic", when)
        s3.put_object(Bucket=capture, Key=key, Body=("\n".join(lines) + "\n").encode(), **ml_key)

    clients = _clients(ctx)  # the MWAA execution role, as the DAG's tasks and operators have it
    request = spark_drift_request(
        clients, endpoint, prefix, f"s3://{artifacts}/{evaluation}", start, end, tmp_path / "plan"
    )
    response = clients.client("emr-containers").start_job_run(
        name=request["name"],
        virtualClusterId=request["virtual_cluster_id"],
        executionRoleArn=request["execution_role_arn"],
        releaseLabel=request["release_label"],
        jobDriver=request["job_driver"],
        configurationOverrides=request["configuration_overrides"],
        clientToken=request["client_request_token"],
    )
    wait_for_job_run(
        clients, JobRun(response["virtualClusterId"], response["id"], request["state_uri"]), poll_s=1.0
    )
    on_spark = spark_drift_monitor(
        clients, endpoint, f"s3://{artifacts}/{evaluation}", start, end, request["state_uri"], tmp_path / "s"
    )["report"]
    in_process = monitor_step(
        clients, endpoint, prefix, f"s3://{artifacts}/{evaluation}", start, end, tmp_path / "in-process"
    )["report"]

    authorizer = ctx.emulator.authorizer
    assert isinstance(authorizer, Authorizer)
    job_role = str(outputs["emrJobExecutionRoleArn"])
    made = {(c.role_arn, c.action, c.resource) for c in authorizer.authorized}
    state_key = request["state_uri"].removeprefix(f"s3://{artifacts}/")
    assert (job_role, "s3:PutObject", f"arn:aws:s3:::{artifacts}/{state_key}") in made
    assert any(r == job_role and a == "s3:GetObject" and res.startswith(f"arn:aws:s3:::{capture}/{prefix}/")
               for r, a, res in made)  # fmt: skip
    head = s3.head_object(Bucket=artifacts, Key=state_key)
    assert head["SSEKMSKeyId"] == outputs["mlKeyArn"]
    assert on_spark["context"]["engine"] == "spark"
    assert on_spark["current_rows"] == in_process["current_rows"] == 400
    assert on_spark["drifted_features"] == in_process["drifted_features"]
    verdicts = {f["name"]: (f["method"], f["status"]) for f in in_process["features"]}
    assert {f["name"]: (f["method"], f["status"]) for f in on_spark["features"]} == verdicts
    assert "monthly_charges" in on_spark["drifted_features"]
