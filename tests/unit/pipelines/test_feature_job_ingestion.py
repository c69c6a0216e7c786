"""The feature job's ingestion code (pipelines.features.spark_job): records, throttling, job arguments."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipelines.features.emr import job_run_request
from pipelines.features.spark_job import FeatureIngestionError, GroupSchema, feature_record, put_rows
from tests.unit.pipelines.conftest import Platform

GROUP = GroupSchema(
    "g", "id", "event_time", {"id": "String", "n": "Integral", "x": "Fractional", "event_time": "String"}
)


class _Throttled:
    """PutRecord that throttles the first ``failures`` calls."""

    def __init__(self, failures: int, code: str = "ThrottlingException") -> None:
        self.failures, self.code, self.calls = failures, code, 0

    def put_record(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self.failures:
            raise ClientError({"Error": {"Code": self.code, "Message": "Rate exceeded"}}, "PutRecord")
        return {}


def test_records_carry_typed_values_and_the_batch_event_time() -> None:
    record = feature_record({"id": 7, "n": True, "x": float("nan")}, GROUP, "2026-11-20T00:00:00Z")
    assert record == [
        {"FeatureName": "id", "ValueAsString": "7"},
        {"FeatureName": "n", "ValueAsString": "1"},
        {"FeatureName": "event_time", "ValueAsString": "2026-11-20T00:00:00Z"},
    ]


def test_throttling_is_retried_and_then_fails_naming_the_record() -> None:
    waits: list[float] = []
    client = _Throttled(2)
    assert put_rows(client, GROUP, [{"id": "a"}], "2026-11-20T00:00:00Z", sleep=waits.append) == 1
    assert client.calls == 3
    assert len(waits) == 2
    with pytest.raises(FeatureIngestionError, match=r"kept throttling the record of id='b'"):
        put_rows(_Throttled(99), GROUP, [{"id": "b"}], "t", max_attempts=3, sleep=waits.append)
    refused = _Throttled(1, "ValidationError")
    with pytest.raises(FeatureIngestionError, match=r"refused the record of id='c': ValidationError"):
        put_rows(refused, GROUP, [{"id": "c"}], "t", sleep=waits.append)
    assert refused.calls == 1  # a refusal is not retried


def test_the_job_is_told_the_feature_group_from_the_settings(platform: Platform, churn_contract: Any) -> None:
    def args(clients: Any) -> list[str]:
        request = job_run_request(clients, churn_contract, "2026-11-20", "s3://a/spark_job.py", "")
        return request["jobDriver"]["sparkSubmitJobDriver"]["entryPointArguments"]

    from pipelines.aws import AwsClients

    settings = platform.settings.model_copy(update={"emr_virtual_cluster_id": "vc"})
    assert "--feature-group" not in args(AwsClients(settings))  # no feature store in the outputs
    settings = settings.model_copy(update={"feature_group_names": {"churn": "mlops-dev-churn-features"}})
    got = args(AwsClients(settings))
    assert got[got.index("--feature-group") + 1] == "mlops-dev-churn-features"
    assert got[got.index("--event-time") + 1] == "2026-11-20T00:00:00Z"
    off = settings.model_copy(update={"feature_ingestion": False})
    assert "--feature-group" not in args(AwsClients(off))


class _Recording:
    """PutRecord that keeps each call's arguments."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def put_record(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {}


def test_the_job_puts_records_into_the_online_store_only_and_not_at_all_without_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The offline store gets the batch from the publish step's Iceberg commit, so the job's PutRecords
    target the online store alone (no second, replicated copy offline), and a group without an online
    store gets none."""
    import argparse

    from pipelines.features import spark_job

    client = _Recording()
    put_rows(client, GROUP, [{"id": "a"}], "t", target_stores=("OnlineStore",))
    assert client.calls[0]["TargetStores"] == ["OnlineStore"]
    put_rows(client, GROUP, [{"id": "b"}], "t")
    assert "TargetStores" not in client.calls[1]

    described: dict[str, Any] = {
        "FeatureGroupName": "g",
        "RecordIdentifierFeatureName": "id",
        "EventTimeFeatureName": "event_time",
        "FeatureDefinitions": [{"FeatureName": "id", "FeatureType": "String"}],
    }

    class _SageMaker:
        def describe_feature_group(self, **_: Any) -> dict[str, Any]:
            return described

    import boto3

    monkeypatch.setattr(boto3, "client", lambda *_a, **_k: _SageMaker())
    args = argparse.Namespace(
        feature_group="g", region="us-east-1", event_time="t", ingest_partitions=2, ingest_workers=4
    )
    assert spark_job.job_ingestion(args) is None  # no online store: nothing to PutRecord
    described["OnlineStoreConfig"] = {"EnableOnlineStore": True}
    ingestion = spark_job.job_ingestion(args)
    assert ingestion is not None
    assert ingestion.target_stores == ("OnlineStore",)
