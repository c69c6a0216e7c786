"""Pipeline steps under injected faults: throttling and 5xx are retried; failures leave the state intact.

One emulator for the module (it takes seconds to start); every test uses its own dataset day, run ID
or model package group, and resets the injector.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipelines.contract import load_contract
from pipelines.evaluate import evaluate_model
from pipelines.features.local import run_features
from pipelines.ingest import ingest_bytes
from pipelines.register import RegistrationError, register_model
from pipelines.step_metrics import publish_step_status
from pipelines.synthetic import generate
from pipelines.train import TrainingError, model_output_key, run_training_locally, start_training_job
from pipelines.validate import validate_batch
from rehearsal.faults import ApiFault, ServiceFault
from rehearsal.training import SageMakerTraining
from tests.reliability.conftest import CONTRACT, Account, account

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Account]:
    with account(tmp_path_factory.mktemp("pipeline-faults"), SageMakerTraining(stop_grace_s=2)) as acct:
        yield acct


@pytest.fixture
def acct(shared: Account) -> Account:
    shared.faults.reset()
    return shared


def _features(acct: Account, day: str, rows: int = 400) -> str:
    """ingest -> validate -> features (pandas engine): the features URI."""
    return _data_steps(acct, day, rows)[1]


def _data_steps(acct: Account, day: str, rows: int = 400) -> tuple[Any, str, Any]:
    """ingest -> validate -> features (pandas engine): the landed batch, features URI, validation outcome."""
    contract = load_contract(CONTRACT)
    data = generate(contract.name, rows, seed=int(day[-2:])).to_csv(index=False).encode()
    batch = ingest_bytes(acct.clients, contract.name, data, f"{contract.name}.csv", day)
    outcome = validate_batch(acct.clients, contract, batch)
    return batch, run_features(acct.clients, contract, day, engine="pandas").uri, outcome


def _model_key(run_id: str) -> str:
    return model_output_key("churn", run_id)


def test_s3_throttling_and_5xx_are_retried_and_the_data_steps_complete(acct: Account) -> None:
    faults = acct.faults
    faults.add(ApiFault("s3", "PutObject", "throttle", times=2))
    faults.add(ApiFault("s3", "GetObject", "transient", times=1))
    faults.add(ApiFault("s3", "ListObjectsV2", "transient", status=503, times=1))
    faults.add(ApiFault("s3", "HeadObject", "transient", times=1))
    batch, uri, outcome = _data_steps(acct, "2026-11-01")
    assert faults.count(kind="throttle") == 2
    assert faults.count(kind="transient") >= 2  # GetObject and ListObjectsV2 at least are on the path
    # the state is what a fault-free run leaves: the raw batch, its report, the curated and feature data
    assert batch.key in acct.keys(batch.bucket)
    for written in (outcome.report_uri, outcome.curated_uri):
        bucket, _, key = written[5:].partition("/")
        assert acct.keys(bucket, key), written
    bucket, _, prefix = uri[5:].partition("/")
    assert [k for k in acct.keys(bucket, prefix) if k.endswith(".parquet")]


def test_cloudwatch_throttling_is_retried_and_the_metric_lands(acct: Account) -> None:
    acct.faults.add(ApiFault("cloudwatch", "PutMetricData", "throttle", times=2))
    acct.faults.add(ApiFault("cloudwatch", "PutMetricData", "transient", status=503, times=1))
    assert publish_step_status(acct.clients, "churn-training", "train", failed=False) is True
    assert acct.faults.count(service="cloudwatch") == 3
    metrics = acct.emu.client("cloudwatch").list_metrics(Namespace="MLOps/Pipeline")["Metrics"]
    assert {m["MetricName"] for m in metrics} == {"StepFailed"}


def test_a_cloudwatch_outage_does_not_fail_the_step(acct: Account) -> None:
    acct.faults.add(ApiFault("cloudwatch", "PutMetricData", "transient", times=None))
    assert publish_step_status(acct.clients, "churn-training", "evaluate", failed=True) is False
    attempts = acct.faults.count(service="cloudwatch")
    assert attempts == acct.clients.settings.max_attempts  # retried up to the limit, then given up


def test_sagemaker_throttling_is_retried_and_a_failed_training_job_leaves_nothing(acct: Account) -> None:
    features_uri = _features(acct, "2026-11-02")
    faults = acct.faults
    # the first job fails in the service after its algorithm ran; the API calls around it are throttled
    faults.add(ServiceFault("training-job", "fault-run-1"))
    faults.add(ApiFault("sagemaker", "CreateTrainingJob", "throttle", times=2))
    faults.add(ApiFault("sagemaker", "DescribeTrainingJob", "transient", times=2))
    with pytest.raises(TrainingError, match="fault-run-1 Failed: InternalServerError"):
        start_training_job(
            acct.clients, CONTRACT, "fault-run-1", features_uri, {"max_iter": 200}, poll_s=0.2, timeout_s=180
        )
    assert faults.count(operation="CreateTrainingJob") == 2
    assert faults.count(kind="service-failure") == 1
    # no model artifact: registration refuses with the reason, and the group stays empty
    assert acct.keys("artifacts", _model_key("fault-run-1")) == []
    with pytest.raises(RegistrationError, match="model artifact not found"):
        register_model(acct.clients, f"s3://artifacts/{_model_key('fault-run-1')}")
    assert acct.packages() == []
    # the same name cannot be reused (AWS keeps failed jobs); the retry of the step is a new job
    with pytest.raises(ClientError, match=r"ResourceInUse|already exists|unique"):
        start_training_job(acct.clients, CONTRACT, "fault-run-1", features_uri, poll_s=0.2, timeout_s=60)
    uri = start_training_job(
        acct.clients, CONTRACT, "fault-run-2", features_uri, {"max_iter": 200}, poll_s=0.2, timeout_s=180
    )
    assert uri == f"s3://artifacts/{_model_key('fault-run-2')}"
    assert acct.keys("artifacts", _model_key("fault-run-2")) == [_model_key("fault-run-2")]
    job = acct.emu.client("sagemaker").describe_training_job(TrainingJobName="fault-run-2")
    assert job["TrainingJobStatus"] == "Completed"


def test_a_failed_model_upload_registers_nothing_and_the_rerun_registers_once(acct: Account) -> None:
    features_uri = _features(acct, "2026-11-03")
    group = "churn-upload-fault"
    acct.emu.client("sagemaker").create_model_package_group(ModelPackageGroupName=group)
    clients = acct.new_clients()
    clients.settings = clients.settings.model_copy(update={"model_package_group_name": group})
    model_key = _model_key("upload-1")
    acct.faults.add(
        ApiFault("s3", "PutObject", "fail", times=None, where=lambda r: r.params.get("Key") == model_key)
    )
    with pytest.raises(ClientError, match="AccessDenied"):
        run_training_locally(clients, CONTRACT, "upload-1", features_uri)
    assert acct.keys("artifacts", model_key) == []
    with pytest.raises(RegistrationError, match="model artifact not found"):
        register_model(clients, f"s3://artifacts/{model_key}")
    assert acct.packages(group) == []
    # the network is back: the re-run trains, evaluates and registers; a second re-run changes nothing
    acct.faults.reset()
    model_uri = run_training_locally(clients, CONTRACT, "upload-1", features_uri)
    evaluate_model(clients, model_uri, features_uri)
    first = register_model(clients, model_uri, allow_failed_gate=True)
    again = register_model(clients, model_uri, allow_failed_gate=True)
    assert first.created
    assert not again.created
    assert again.model_package_arn == first.model_package_arn
    assert [p["ModelPackageArn"] for p in acct.packages(group)] == [first.model_package_arn]


def test_registration_throttled_midway_registers_exactly_once(acct: Account) -> None:
    features_uri = _features(acct, "2026-11-04")
    group = "churn-register-throttle"
    acct.emu.client("sagemaker").create_model_package_group(ModelPackageGroupName=group)
    clients = acct.new_clients()
    clients.settings = clients.settings.model_copy(update={"model_package_group_name": group})
    model_uri = run_training_locally(clients, CONTRACT, "register-1", features_uri)
    evaluate_model(clients, model_uri, features_uri)
    acct.faults.add(ApiFault("sagemaker", "CreateModelPackage", "throttle", times=2))
    acct.faults.add(ApiFault("sagemaker", "ListModelPackages", "transient", times=1))
    registration = register_model(clients, model_uri, allow_failed_gate=True)
    assert registration.created
    assert acct.faults.count(operation="CreateModelPackage") == 2
    assert [p["ModelPackageArn"] for p in acct.packages(group)] == [registration.model_package_arn]


def test_two_runs_at_once_keep_their_own_artifacts_and_packages(acct: Account) -> None:
    features_uri = _features(acct, "2026-11-05")
    group = "churn-concurrent"
    acct.emu.client("sagemaker").create_model_package_group(ModelPackageGroupName=group)
    results: dict[str, Any] = {}
    errors: list[BaseException] = []

    def run(run_id: str, max_iter: int) -> None:
        try:
            clients = acct.new_clients()
            clients.settings = clients.settings.model_copy(update={"model_package_group_name": group})
            uri = run_training_locally(clients, CONTRACT, run_id, features_uri, {"max_iter": max_iter})
            evaluate_model(clients, uri, features_uri)
            results[run_id] = (uri, register_model(clients, uri, allow_failed_gate=True))
        except BaseException as exc:  # reported below with the run it came from
            errors.append(exc)

    # throttling on the shared calls makes the two runs interleave their retries
    acct.faults.add(ApiFault("s3", "PutObject", "throttle", times=4))
    threads = [threading.Thread(target=run, args=(f"concurrent-{i}", 150 + 50 * i)) for i in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    (uri_1, reg_1), (uri_2, reg_2) = results["concurrent-1"], results["concurrent-2"]
    assert uri_1 != uri_2
    assert reg_1.model_package_arn != reg_2.model_package_arn
    assert reg_1.created
    assert reg_2.created
    assert sorted(p["ModelPackageArn"] for p in acct.packages(group)) == sorted(
        [reg_1.model_package_arn, reg_2.model_package_arn]
    )
    for run_id, (uri, registration) in results.items():
        described = acct.emu.client("sagemaker").describe_model_package(
            ModelPackageName=registration.model_package_arn
        )
        container = described["InferenceSpecification"]["Containers"][0]
        assert container["ModelDataUrl"] == uri  # each package points at its own run's artifact
        assert acct.keys("artifacts", f"models/churn/{run_id}/")
