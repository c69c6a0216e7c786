"""Batches go into the feature group's Iceberg offline store, and training sets come back out of it.

Through ``publish_features_step`` (the training DAG's ``publish_features`` task) against the emulator,
whose CreateFeatureGroup makes the group's Iceberg table in Glue as AWS does: three ingest dates
published out of order (an older, a later, then the one in between). Each publish commits its batch
to the offline store in one Iceberg snapshot; the middle date's training set is built from the
records read back from that table, and a record dated after a label is never used. A re-run of a
published date commits nothing.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipelines.aws import AwsClients
from pipelines.contract import load_contract, resolve_contract_path
from pipelines.features.offline_store import offline_table, read_records
from pipelines.features.spec import build_features_pandas, feature_spec
from pipelines.orchestration import publish_features_step
from pipelines.settings import PipelineSettings
from pipelines.synthetic import generate
from rehearsal.emulator import Emulator
from rehearsal.featurestore import FeatureStoreRuntime
from stacks.config.contracts import read_contract_schema
from stacks.config.data_science import feature_group_plan

GROUP = "mlops-dev-churn-features"
DATABASE = "mlops_dev_lake"
TABLE = "churn_features"
BUCKETS = {role: f"mlops-dev-{role}" for role in ("curated", "features", "artifacts")}


@pytest.fixture
def platform() -> Iterator[tuple[Emulator, AwsClients]]:
    with Emulator(extensions=[FeatureStoreRuntime()]) as emu:
        key = emu.client("kms").create_key(Description="lake")["KeyMetadata"]["Arn"]
        for bucket in BUCKETS.values():
            emu.client("s3").create_bucket(Bucket=bucket)
        emu.client("glue").create_database(DatabaseInput={"Name": DATABASE})
        plan = feature_group_plan(read_contract_schema("churn"))
        emu.client("sagemaker").create_feature_group(
            FeatureGroupName=GROUP,
            RecordIdentifierFeatureName=plan.record_identifier,
            EventTimeFeatureName=plan.event_time_feature,
            FeatureDefinitions=[{"FeatureName": n, "FeatureType": t} for n, t in plan.features],
            OfflineStoreConfig={
                "S3StorageConfig": {
                    "S3Uri": f"s3://{BUCKETS['features']}/feature-store/churn",
                    "KmsKeyId": key,
                },
                "TableFormat": "Iceberg",
                "DataCatalogConfig": {"Catalog": "AwsDataCatalog", "Database": DATABASE, "TableName": TABLE},
            },
            RoleArn=f"arn:aws:iam::{emu.account_id}:role/mlops-dev-feature-ingestion",
        )
        settings = PipelineSettings(
            environment="dev",
            region=emu.region,
            endpoint_url=emu.endpoint_url,
            curated_bucket=BUCKETS["curated"],
            features_bucket=BUCKETS["features"],
            artifacts_bucket=BUCKETS["artifacts"],
            data_lake_key_arn=key,
            ml_key_arn=key,
            model_package_group_name="mlops-dev-churn",
            feature_group_names={"churn": GROUP},
            code_version="test-sha",
        )
        yield emu, AwsClients(settings, session=_session(emu))


def _session(emu: Emulator) -> Any:
    import boto3

    creds = emu.credentials
    return boto3.Session(
        aws_access_key_id=creds["aws_access_key_id"],
        aws_secret_access_key=creds["aws_secret_access_key"],
        region_name=emu.region,
    )


def _put(clients: AwsClients, bucket: str, key: str, frame: pd.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    clients.s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())


def _publish(clients: AwsClients, date: str, batch: pd.DataFrame, raw: pd.DataFrame) -> dict[str, Any]:
    _put(clients, BUCKETS["curated"], f"curated/churn/ingest_date={date}/abc/data.parquet", raw)
    _put(clients, BUCKETS["features"], f"features/churn/ingest_date={date}/part-00000.parquet", batch)
    uri = f"s3://{BUCKETS['features']}/features/churn/ingest_date={date}/"
    return publish_features_step(clients, Path(resolve_contract_path("churn")), date, uri)


def test_training_sets_are_read_back_from_the_offline_store_and_never_see_the_future(
    platform: tuple[Emulator, AwsClients],
) -> None:
    _, clients = platform
    contract = load_contract(resolve_contract_path("churn"))
    raw = generate("churn", 40, 7)
    batch = build_features_pandas(raw, feature_spec(contract))
    older, later = batch.head(5).copy(), batch.head(5).copy()
    older["monthly_charges"], later["monthly_charges"] = 1.0, 999.0

    first = _publish(clients, "2026-11-10", older, raw)["point_in_time"]
    assert first["history_source"] == "offline_store"
    assert first["history_records"] == 0
    assert first["offline_store"]["records"] == 5
    assert _publish(clients, "2026-11-25", later, raw)["point_in_time"]["offline_store"]["records"] == 5

    result = _publish(clients, "2026-11-20", batch, raw)["point_in_time"]
    assert result["history_records"] == 10  # the 5 identifiers' records of 11-10 and of 11-25
    assert result["future_records"] == 5  # the 11-25 records: after the labels, never used
    assert result["offline_store"]["records"] == len(batch)
    body = clients.s3.get_object(
        Bucket=BUCKETS["features"], Key="features/churn/ingest_date=2026-11-20/part-00000.parquet"
    )
    training = pd.read_parquet(io.BytesIO(body["Body"].read()))
    assert bool((training["monthly_charges"] != 999.0).all())
    pd.testing.assert_frame_equal(training, batch, check_dtype=True)

    table = offline_table(clients, GROUP)
    assert (table.database, table.table_name) == (DATABASE, TABLE)
    snapshots = len(table.table.snapshots())
    assert snapshots == 3  # one commit per published batch
    records = read_records(table)
    assert len(records) == 5 + 5 + len(batch)
    assert set(records["event_time"]) == {
        "2026-11-10T00:00:00Z",
        "2026-11-20T00:00:00Z",
        "2026-11-25T00:00:00Z",
    }
    assert not bool(records["is_deleted"].any())

    rerun = _publish(clients, "2026-11-20", batch, raw)["point_in_time"]
    assert rerun["offline_store"] == {**rerun["offline_store"], "records": 0, "already_committed": True}
    assert len(offline_table(clients, GROUP).table.snapshots()) == snapshots


def test_a_group_without_a_feature_the_batch_has_is_refused_naming_it(
    platform: tuple[Emulator, AwsClients],
) -> None:
    from pipelines.features.point_in_time import PointInTimeError

    _, clients = platform
    contract = load_contract(resolve_contract_path("churn"))
    raw = generate("churn", 10, 7)
    batch = build_features_pandas(raw, feature_spec(contract)).assign(new_feature=1.5)
    with pytest.raises(PointInTimeError, match=r"does not define \['new_feature'\].*pulumi up"):
        _publish(clients, "2026-11-20", batch, raw)


def test_a_commit_that_lost_a_race_is_redone_on_the_winners_snapshot(
    platform: tuple[Emulator, AwsClients],
) -> None:
    """Two writers that read the same table version: the second's commit no longer matches the table
    (Iceberg's branch requirement), so pyiceberg refreshes and re-applies its append on top of the
    first's: both batches are in the table, neither is lost."""
    from pipelines.features.offline_store import append_batch

    _, clients = platform
    contract = load_contract(resolve_contract_path("churn"))
    batch = build_features_pandas(generate("churn", 8, 7), feature_spec(contract))
    first, second = offline_table(clients, GROUP), offline_table(clients, GROUP)
    assert append_batch(first, batch, batch_id="a", event_time="2026-11-20T00:00:00Z")["records"] == 8
    assert (
        append_batch(second, batch.head(3), batch_id="b", event_time="2026-11-21T00:00:00Z")["records"] == 3
    )
    table = offline_table(clients, GROUP)
    assert len(read_records(table)) == 8 + 3
    snapshots = table.table.snapshots()
    assert len(snapshots) == 2
    assert snapshots[1].parent_snapshot_id == snapshots[0].snapshot_id


def test_glue_updates_a_table_only_at_the_version_given(platform: tuple[Emulator, AwsClients]) -> None:
    """The emulator's UpdateTable honours ``VersionId`` as Glue does (moto alone ignores it): the swap
    of an Iceberg table's metadata pointer at a version another writer already moved is refused."""
    from botocore.exceptions import ClientError

    emu, _ = platform
    glue = emu.client("glue")
    table = glue.get_table(DatabaseName=DATABASE, Name=TABLE)["Table"]
    update = {"Name": TABLE, "TableType": table["TableType"], "Parameters": table["Parameters"]}
    glue.update_table(DatabaseName=DATABASE, TableInput=update, VersionId=table["VersionId"])
    with pytest.raises(ClientError, match="ConcurrentModificationException"):
        glue.update_table(DatabaseName=DATABASE, TableInput=update, VersionId=table["VersionId"])
    glue.update_table(DatabaseName=DATABASE, TableInput=update)  # no VersionId: unconditional, as on Glue
