"""Spark feature ingestion: every partition PutRecords its rows into the emulator's Feature Store."""

from __future__ import annotations

import functools
from typing import Any

import boto3
import pytest

from pipelines.contract import load_contract, resolve_contract_path
from pipelines.features.ingestion import GroupDefinition, ingest_partitions
from pipelines.features.spec import build_features_pandas, feature_spec
from pipelines.synthetic import generate
from rehearsal.emulator import Emulator
from rehearsal.featurestore import FeatureStoreRuntime
from stacks.config.contracts import read_contract_schema
from stacks.config.data_science import feature_group_plan

pytestmark = pytest.mark.slow


def test_each_partition_ingests_its_rows(spark: Any) -> None:
    runtime = FeatureStoreRuntime()
    with Emulator(extensions=[runtime]) as emu:
        emu.client("s3").create_bucket(Bucket="features")
        plan = feature_group_plan(read_contract_schema("churn"))
        emu.client("sagemaker").create_feature_group(
            FeatureGroupName="churn-features",
            RecordIdentifierFeatureName=plan.record_identifier,
            EventTimeFeatureName=plan.event_time_feature,
            FeatureDefinitions=[{"FeatureName": n, "FeatureType": t} for n, t in plan.features],
            OnlineStoreConfig={"EnableOnlineStore": True},
            OfflineStoreConfig={"S3StorageConfig": {"S3Uri": "s3://features/feature-store/churn"}},
            RoleArn="arn:aws:iam::123456789012:role/ingestion",
        )
        group = GroupDefinition.describe(emu.client("sagemaker"), "churn-features")
        contract = load_contract(resolve_contract_path("churn"))
        frame = build_features_pandas(generate("churn", 300, 5), feature_spec(contract))
        frame["paperless_billing"] = frame["paperless_billing"].astype(bool)
        df = spark.createDataFrame(frame.astype(object).where(frame.notna(), None)).repartition(3)
        factory = functools.partial(
            boto3.client,
            "sagemaker-featurestore-runtime",
            region_name=emu.region,
            endpoint_url=emu.endpoint_url,
            **emu.credentials,
        )
        assert ingest_partitions(df, group, factory, workers=2) == len(frame)
        client = emu.client("sagemaker-featurestore-runtime")
        some = [str(k) for k in frame["customer_id"].head(5)]
        got = client.batch_get_record(
            Identifiers=[{"FeatureGroupName": "churn-features", "RecordIdentifiersValueAsString": some}]
        )
        assert sorted(r["RecordIdentifierValueAsString"] for r in got["Records"]) == sorted(some)
        record = {v["FeatureName"]: v["ValueAsString"] for v in got["Records"][0]["Record"]}
        assert record["paperless_billing"] in {"0", "1"}
        (uri,) = runtime.flush()
        assert "/offline-store/churn-features-" in uri
