"""The pipeline's real training submission, run by the emulator under the SageMaker container contract."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import boto3
import pytest

from pipelines.aws import AwsClients
from pipelines.contract import load_contract
from pipelines.features.local import run_features
from pipelines.ingest import ingest_bytes
from pipelines.settings import PipelineSettings
from pipelines.synthetic import generate
from pipelines.train import TrainingError, start_training_job
from pipelines.validate import validate_batch
from rehearsal.emulator import Emulator
from rehearsal.training import SageMakerTraining, published_sklearn_image

REPO = Path(__file__).resolve().parents[2]
CONTRACT = REPO / "contracts" / "churn.yaml"
DAY = "2026-11-24"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


def _clients(emu: Emulator) -> AwsClients:
    s3 = emu.client("s3")
    for bucket in ("raw", "curated", "features", "artifacts"):
        s3.create_bucket(Bucket=bucket)
    key_arn = emu.client("kms").create_key()["KeyMetadata"]["Arn"]
    role = emu.client("iam").create_role(
        RoleName="sagemaker-exec", AssumeRolePolicyDocument=json.dumps(TRUST)
    )
    settings = PipelineSettings(
        region=emu.region,
        raw_bucket="raw",
        curated_bucket="curated",
        features_bucket="features",
        artifacts_bucket="artifacts",
        data_lake_key_arn=key_arn,
        ml_key_arn=key_arn,
        sagemaker_role_arn=role["Role"]["Arn"],
        endpoint_url=emu.endpoint_url,
        code_version="abc123",
    )
    session = boto3.Session(region_name=emu.region, **emu.credentials)
    return AwsClients(settings, session=session)


def _prepare_features(clients: AwsClients, rows: int = 600) -> str:
    """The pipeline's own ingest -> validate -> features (pandas engine) on a small synthetic batch."""
    contract = load_contract(CONTRACT)
    data = generate(contract.name, rows, seed=7).to_csv(index=False).encode()
    batch = ingest_bytes(clients, contract.name, data, f"{contract.name}.csv", DAY)
    validate_batch(clients, contract, batch)
    return run_features(clients, contract, DAY, engine="pandas").uri


def test_start_training_job_trains_under_the_container_contract(tmp_path: Path) -> None:
    with Emulator(extensions=[SageMakerTraining(stop_grace_s=2)], workdir=tmp_path / "emu") as emu:
        clients = _clients(emu)
        train_uri = _prepare_features(clients)
        try:
            uri = start_training_job(
                clients,
                CONTRACT,
                "run-42",
                train_uri,
                # a one-letter key and a False: the toolkit passes them as `-C 0.5` and `False`
                {"max_iter": 500, "C": 0.5, "fit_intercept": False},
                poll_s=0.2,
                timeout_s=120,
            )
        except TrainingError as exc:  # the reason the job failed, for the report
            pytest.fail(f"the pipeline's submission did not train under the contract: {exc}")
        assert uri == "s3://artifacts/models/churn/run-42/output/model.tar.gz"
        job = clients.sagemaker.describe_training_job(TrainingJobName="run-42")
        assert job["TrainingJobStatus"] == "Completed"
        # the emulator's image table agrees with the SDK's image_uris.retrieve that the pipeline used
        assert job["AlgorithmSpecification"]["TrainingImage"] == published_sklearn_image(emu.region, "1.9-0")
        metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
        assert set(metrics) == {"validation:auc", "validation:accuracy"}
        assert 0.5 < metrics["validation:auc"] <= 1.0

        body = clients.s3.get_object(Bucket="artifacts", Key="models/churn/run-42/output/model.tar.gz")
        assert body["SSEKMSKeyId"] == clients.settings.ml_key_arn
        with tarfile.open(fileobj=io.BytesIO(body["Body"].read()), mode="r:gz") as archive:
            names = sorted(archive.getnames())
            metadata = json.loads(archive.extractfile("metadata.json").read())  # type: ignore[union-attr]
        assert {"contract.yaml", "metadata.json", "model.joblib", "code/inference.py"} <= set(names)
        assert metadata["run_id"] == "run-42"
        assert metadata["code_version"] == "abc123"
        assert metadata["hyperparameters"]["max_iter"] == 500
        assert metadata["hyperparameters"]["C"] == 0.5
        assert metadata["hyperparameters"]["fit_intercept"] is False
        assert 300 < metadata["training_rows"] < 600  # the train split only
