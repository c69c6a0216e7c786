"""Feature Store runtime in the emulator, and the pipeline's ingestion against it.

The churn contract's feature group (as the stack declares it) receives the pandas engine's
features with PutRecord; the online store returns them, the offline store holds them as Parquet in
the documented layout, and a record that breaks the group's definition is refused as AWS refuses it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from botocore.exceptions import ClientError

from pipelines.contract import load_contract, resolve_contract_path
from pipelines.features.ingestion import GroupDefinition, IngestionError, ingest_frame
from pipelines.features.spec import build_features_pandas, feature_spec
from pipelines.synthetic import generate
from rehearsal.emulator import Emulator
from rehearsal.featurestore import FeatureStoreRuntime
from stacks.config.contracts import read_contract_schema
from stacks.config.data_science import feature_group_plan

GROUP = "mlops-dev-churn-features"
BUCKET = "mlops-dev-features"


@pytest.fixture
def emulator() -> Iterator[tuple[Emulator, FeatureStoreRuntime, str]]:
    runtime = FeatureStoreRuntime()
    with Emulator(extensions=[runtime]) as emu:
        key = emu.client("kms").create_key(Description="lake")["KeyMetadata"]["Arn"]
        emu.client("s3").create_bucket(Bucket=BUCKET)
        yield emu, runtime, key


def _create_group(emu: Emulator, key: str, online: bool = True) -> GroupDefinition:
    plan = feature_group_plan(read_contract_schema("churn"))
    emu.client("sagemaker").create_feature_group(
        FeatureGroupName=GROUP,
        RecordIdentifierFeatureName=plan.record_identifier,
        EventTimeFeatureName=plan.event_time_feature,
        FeatureDefinitions=[{"FeatureName": n, "FeatureType": t} for n, t in plan.features],
        OnlineStoreConfig={"EnableOnlineStore": online},
        OfflineStoreConfig={
            "S3StorageConfig": {"S3Uri": f"s3://{BUCKET}/feature-store/churn", "KmsKeyId": key},
            "TableFormat": "Iceberg",
        },
        RoleArn="arn:aws:iam::123456789012:role/mlops-dev-feature-ingestion",
    )
    return GroupDefinition.describe(emu.client("sagemaker"), GROUP)


def _features(rows: int = 200) -> pd.DataFrame:
    contract = load_contract(resolve_contract_path("churn"))
    return build_features_pandas(generate("churn", rows, 3), feature_spec(contract))


def test_ingested_records_match_the_contract_online_and_offline(
    emulator: tuple[Emulator, FeatureStoreRuntime, str],
) -> None:
    emu, runtime, key = emulator
    group = _create_group(emu, key)
    frame = _features()
    runtime_client = emu.client("sagemaker-featurestore-runtime")
    assert ingest_frame(runtime_client, group, frame, workers=4) == len(frame)

    first = frame.iloc[0]
    got = runtime_client.get_record(
        FeatureGroupName=GROUP, RecordIdentifierValueAsString=str(first[group.record_identifier])
    )
    values = {v["FeatureName"]: v["ValueAsString"] for v in got["Record"]}
    assert set(values) <= set(group.types)
    assert "__split__" not in values
    assert values["event_time"].endswith("Z")
    assert float(values["monthly_charges"]) == pytest.approx(float(first["monthly_charges"]))
    batch = runtime_client.batch_get_record(
        Identifiers=[
            {
                "FeatureGroupName": GROUP,
                "RecordIdentifiersValueAsString": [str(first["customer_id"]), "nobody"],
            }
        ]
    )
    assert len(batch["Records"]) == 1
    assert batch["UnprocessedIdentifiers"][0]["RecordIdentifiersValueAsString"] == ["nobody"]

    (uri,) = runtime.flush()
    assert "/123456789012/sagemaker/us-east-1/offline-store/mlops-dev-churn-features-" in uri
    assert "/data/year=" in uri
    assert uri.endswith(".parquet")
    s3 = emu.client("s3")
    okey = uri[len(f"s3://{BUCKET}/") :]
    head = s3.head_object(Bucket=BUCKET, Key=okey)
    assert head["SSEKMSKeyId"] == key
    offline = pd.read_parquet(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=okey)["Body"].read()))
    assert len(offline) == len(frame)
    assert set(offline.columns) == {*group.types, "write_time", "api_invocation_time", "is_deleted"}
    assert sorted(offline["customer_id"]) == sorted(frame["customer_id"])


def _put(emu: Emulator, record: list[dict[str, str]]) -> dict[str, Any]:
    with pytest.raises(ClientError) as refused:
        emu.client("sagemaker-featurestore-runtime").put_record(FeatureGroupName=GROUP, Record=record)
    return refused.value.response["Error"]


def test_bad_records_are_refused(emulator: tuple[Emulator, FeatureStoreRuntime, str]) -> None:
    emu, _, key = emulator
    _create_group(emu, key)
    good = [
        {"FeatureName": "customer_id", "ValueAsString": "c-1"},
        {"FeatureName": "event_time", "ValueAsString": "2026-11-24T00:00:00Z"},
    ]
    emu.client("sagemaker-featurestore-runtime").put_record(FeatureGroupName=GROUP, Record=good)
    error = _put(emu, [*good, {"FeatureName": "not_a_feature", "ValueAsString": "1"}])
    assert error["Code"] == "ValidationError"
    assert "not_a_feature" in error["Message"]
    assert "event_time" in _put(emu, good[:1])["Message"]  # no event time
    assert (
        "format"
        in _put(emu, [good[0], {"FeatureName": "event_time", "ValueAsString": "2026-11-24"}])["Message"]
    )
    assert (
        "Fractional"
        in _put(emu, [*good, {"FeatureName": "monthly_charges", "ValueAsString": "lots"}])["Message"]
    )
    with pytest.raises(ClientError) as missing:
        emu.client("sagemaker-featurestore-runtime").put_record(FeatureGroupName="no-such-group", Record=good)
    assert missing.value.response["Error"]["Code"] == "ResourceNotFound"
    # the ingestion step turns a refusal into a readable error naming the record
    group = GroupDefinition.describe(emu.client("sagemaker"), GROUP)
    no_key = pd.DataFrame({"customer_id": [None], "tenure_months": [3]})
    with pytest.raises(IngestionError, match=r"customer_id=None.*lacks feature 'customer_id'"):
        ingest_frame(emu.client("sagemaker-featurestore-runtime"), group, no_key)
    not_a_number = pd.DataFrame({"customer_id": ["c-2"], "tenure_months": ["x"]})
    with pytest.raises(IngestionError, match=r"customer_id='c-2'.*Integral"):
        ingest_frame(emu.client("sagemaker-featurestore-runtime"), group, not_a_number)


def test_online_store_keeps_the_newest_event_and_is_refused_without_one(
    emulator: tuple[Emulator, FeatureStoreRuntime, str],
) -> None:
    emu, _, key = emulator
    _create_group(emu, key)
    client = emu.client("sagemaker-featurestore-runtime")

    def put(when: str, tenure: str) -> None:
        client.put_record(
            FeatureGroupName=GROUP,
            Record=[
                {"FeatureName": "customer_id", "ValueAsString": "c-1"},
                {"FeatureName": "event_time", "ValueAsString": when},
                {"FeatureName": "tenure_months", "ValueAsString": tenure},
            ],
        )

    put("2026-11-24T00:00:00Z", "5")
    put("2026-11-01T00:00:00Z", "3")  # older: does not replace the newer record online
    got = client.get_record(
        FeatureGroupName=GROUP, RecordIdentifierValueAsString="c-1", FeatureNames=["tenure_months"]
    )
    assert got["Record"] == [{"FeatureName": "tenure_months", "ValueAsString": "5"}]


def test_the_feature_job_ingestion_code_is_refused_a_bad_record(
    emulator: tuple[Emulator, FeatureStoreRuntime, str],
) -> None:
    """spark_job.put_rows (what each EMR partition runs) against the runtime: a good row is written,
    a row without the record identifier and a non-integral Integral value are refused, naming them."""
    from pipelines.features.spark_job import FeatureIngestionError, GroupSchema, put_rows

    emu, runtime, key = emulator
    _create_group(emu, key, online=False)
    group = GroupSchema.describe(emu.client("sagemaker"), GROUP)
    client = emu.client("sagemaker-featurestore-runtime")
    row = _features(1).iloc[0].to_dict()
    assert put_rows(client, group, [row], "2026-11-20T00:00:00Z") == 1
    with pytest.raises(
        FeatureIngestionError, match=r"refused the record of customer_id=None: ValidationError.*lacks"
    ):
        put_rows(client, group, [{**row, "customer_id": None}], "2026-11-20T00:00:00Z")
    with pytest.raises(FeatureIngestionError, match=r"tenure_months.*not of type Integral"):
        put_rows(client, group, [{**row, "tenure_months": 2.5}], "2026-11-20T00:00:00Z")
    (uri,) = runtime.flush()
    assert "/data/year=2026/month=11/day=20/hour=00/" in uri


def test_the_train_stage_evidence_counts_records_and_offline_rows(
    emulator: tuple[Emulator, FeatureStoreRuntime, str],
) -> None:
    from rehearsal.featurestore import feature_store_evidence

    emu, _, key = emulator
    group = _create_group(emu, key, online=False)
    frame = _features(30)
    assert ingest_frame(emu.client("sagemaker-featurestore-runtime"), group, frame) == 30
    evidence = feature_store_evidence(emu, GROUP)
    assert evidence["records_received"] == 30
    assert evidence["offline_rows"] == 30
    assert "/sagemaker/us-east-1/offline-store/" in evidence["offline_uri"]
    assert feature_store_evidence(emu, None) == {"group": None}
