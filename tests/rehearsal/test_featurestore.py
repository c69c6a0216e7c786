"""Feature Store runtime in the emulator, and the pipeline's ingestion against it.

The churn contract's feature group (as the stack declares it) receives the pandas engine's
features with PutRecord; the online store returns them, the offline store holds them (an Iceberg
group's in its Iceberg table in Glue, a Glue-format group's as Parquet in the documented layout), and
a record that breaks the group's definition is refused as AWS refuses it.
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
from rehearsal.featurestore import FeatureStoreRuntime, feature_store_evidence
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


def _create_group(
    emu: Emulator,
    key: str,
    online: bool = True,
    table_format: str = "Iceberg",
    catalog: dict[str, str] | None = None,
    role: str = "arn:aws:iam::123456789012:role/mlops-dev-feature-ingestion",
    client: Any = None,
    name: str = GROUP,
) -> GroupDefinition:
    plan = feature_group_plan(read_contract_schema("churn"))
    (client or emu.client("sagemaker")).create_feature_group(
        FeatureGroupName=name,
        RecordIdentifierFeatureName=plan.record_identifier,
        EventTimeFeatureName=plan.event_time_feature,
        FeatureDefinitions=[{"FeatureName": n, "FeatureType": t} for n, t in plan.features],
        OnlineStoreConfig={"EnableOnlineStore": online},
        OfflineStoreConfig={
            "S3StorageConfig": {"S3Uri": f"s3://{BUCKET}/feature-store/churn", "KmsKeyId": key},
            "TableFormat": table_format,
            **({"DataCatalogConfig": catalog} if catalog else {}),
        },
        RoleArn=role,
    )
    return GroupDefinition.describe(emu.client("sagemaker"), name)


def _root_catalog(emu: Emulator) -> Any:
    from botocore.credentials import ReadOnlyCredentials

    from pipelines.features.offline_store import file_io_properties, glue_catalog

    props = file_io_properties(
        region=emu.region,
        endpoint_url=emu.endpoint_url,
        credentials=ReadOnlyCredentials("testing", "testing", None),
    )
    return glue_catalog(emu.client("glue"), props)


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

    (uri,) = runtime.flush()  # one Iceberg append: one data file under the group's data/
    resolved = group_resolved_uri(emu)
    assert "/123456789012/sagemaker/us-east-1/offline-store/mlops-dev-churn-features-" in resolved
    assert uri.startswith(resolved + "/")
    assert uri.endswith(".parquet")
    described = emu.client("sagemaker").describe_feature_group(FeatureGroupName=GROUP)
    catalog = described["OfflineStoreConfig"]["DataCatalogConfig"]
    table = _root_catalog(emu).load_table((catalog["Database"], catalog["TableName"]))
    offline = table.scan().to_pandas()
    assert len(offline) == len(frame)
    assert list(offline.columns) == [*group.types, "api_invocation_time", "write_time", "is_deleted"]
    assert sorted(offline["customer_id"]) == sorted(frame["customer_id"])
    assert str(offline["write_time"].dtype) == "datetime64[us, UTC]"
    assert not offline["is_deleted"].any()
    assert runtime.files_written == [uri]


def group_resolved_uri(emu: Emulator) -> str:
    described = emu.client("sagemaker").describe_feature_group(FeatureGroupName=GROUP)
    return str(described["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"])


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
    _create_group(emu, key, online=False, table_format="Glue")
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
    (uri,) = runtime.flush()  # a Glue-format group: Parquet in the documented layout
    assert "/data/year=2026/month=11/day=20/hour=00/" in uri
    assert uri.endswith(".parquet")
    s3 = emu.client("s3")
    okey = uri[len(f"s3://{BUCKET}/") :]
    assert s3.head_object(Bucket=BUCKET, Key=okey)["SSEKMSKeyId"] == key
    offline = pd.read_parquet(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=okey)["Body"].read()))
    assert set(offline.columns) == {*group.types, "write_time", "api_invocation_time", "is_deleted"}
    assert list(offline["customer_id"]) == [row["customer_id"]]
    assert feature_store_evidence(emu, GROUP)["offline_rows"] == 1


def test_the_train_stage_evidence_counts_records_and_offline_rows(
    emulator: tuple[Emulator, FeatureStoreRuntime, str],
) -> None:
    emu, _, key = emulator
    group = _create_group(emu, key, online=False)
    frame = _features(30)
    assert ingest_frame(emu.client("sagemaker-featurestore-runtime"), group, frame) == 30
    evidence = feature_store_evidence(emu, GROUP)
    assert evidence["records_received"] == 30
    assert evidence["offline_rows"] == 30
    assert "/sagemaker/us-east-1/offline-store/" in evidence["offline_uri"]
    assert feature_store_evidence(emu, None) == {"group": None}


CATALOG = {"Catalog": "AwsDataCatalog", "Database": "mlops_dev_features", "TableName": "churn_features"}


def test_an_iceberg_group_gets_its_table_and_put_records_append_to_it(
    emulator: tuple[Emulator, FeatureStoreRuntime, str],
) -> None:
    """CreateFeatureGroup makes the Iceberg table (schema, location, unpartitioned, no snapshot);
    a flush is one append; a stray file under data/ is not in the table, nor in the evidence."""
    from pipelines.features.offline_store import offline_schema, table_location

    emu, runtime, key = emulator
    glue = emu.client("glue")
    glue.create_database(DatabaseInput={"Name": CATALOG["Database"]})
    _create_group(emu, key, online=False, catalog=CATALOG)
    described = emu.client("sagemaker").describe_feature_group(FeatureGroupName=GROUP)
    assert described["FeatureGroupStatus"] == "Created"
    assert described["OfflineStoreConfig"]["DataCatalogConfig"] == CATALOG
    plan = feature_group_plan(read_contract_schema("churn"))
    table = _root_catalog(emu).load_table((CATALOG["Database"], CATALOG["TableName"]))
    assert table.schema().as_struct() == offline_schema(plan.features).as_struct()
    location = table_location(group_resolved_uri(emu))
    assert table.location() == location
    assert table.spec().is_unpartitioned()
    assert table.current_snapshot() is None
    assert table.metadata_location.startswith(location + "/metadata/")
    assert (
        glue.get_table(**{"DatabaseName": CATALOG["Database"], "Name": CATALOG["TableName"]})["Table"][
            "Parameters"
        ]["table_type"]
        == "ICEBERG"
    )

    frame = _features(40)
    group = GroupDefinition.describe(emu.client("sagemaker"), GROUP)
    ingest_frame(emu.client("sagemaker-featurestore-runtime"), group, frame)
    files = runtime.flush()
    ingest_frame(emu.client("sagemaker-featurestore-runtime"), group, frame.head(5))
    files += runtime.flush()
    assert len(files) == 2
    assert all(f.startswith(location + "/data/") for f in files)
    table = table.refresh()
    assert len(table.snapshots()) == 2
    assert len(table.scan().to_arrow()) == 45
    _bucket, _, prefix = location[5:].partition("/")
    stray = io.BytesIO()
    frame.head(3).to_parquet(stray)
    emu.client("s3").put_object(Bucket=BUCKET, Key=f"{prefix}/data/stray.parquet", Body=stray.getvalue())
    evidence = feature_store_evidence(emu, GROUP)
    assert (evidence["offline_rows"], evidence["offline_files"]) == (45, 2)
    assert evidence["offline_table"] == "mlops_dev_features.churn_features"


def test_a_missing_database_is_made_and_a_left_over_table_fails_the_create(
    emulator: tuple[Emulator, FeatureStoreRuntime, str],
) -> None:
    """An Iceberg group's named database is created when missing; DeleteFeatureGroup keeps the table
    and its files, so a re-created group meets the old table: CreateFeatureGroup returns, the group is
    CreateFailed with a FailureReason, writes nothing and takes no records, and the deploy's handler
    stops on it, as Pulumi's provider waits for Created."""
    from rehearsal.deploy import Ctx, DeployError, _feature_group_create  # pyright: ignore[reportPrivateUsage]

    emu, _, key = emulator
    sagemaker = emu.client("sagemaker")
    record = [
        {"FeatureName": "customer_id", "ValueAsString": "c-1"},
        {"FeatureName": "event_time", "ValueAsString": "2026-11-24T00:00:00Z"},
    ]
    _create_group(emu, key, online=False, catalog=CATALOG)  # the database does not exist yet
    assert sagemaker.describe_feature_group(FeatureGroupName=GROUP)["FeatureGroupStatus"] == "Created"
    emu.client("glue").get_database(Name=CATALOG["Database"])
    emu.client("sagemaker-featurestore-runtime").put_record(FeatureGroupName=GROUP, Record=record)
    sagemaker.delete_feature_group(FeatureGroupName=GROUP)  # flushes; the table and files stay
    table = _root_catalog(emu).load_table((CATALOG["Database"], CATALOG["TableName"]))
    assert len(table.scan().to_arrow()) == 1
    objects = emu.client("s3").list_objects_v2(Bucket=BUCKET)["KeyCount"]

    inputs = {
        "featureGroupName": GROUP,
        "recordIdentifierFeatureName": "customer_id",
        "eventTimeFeatureName": "event_time",
        "featureDefinitions": [
            {"featureName": "customer_id", "featureType": "String"},
            {"featureName": "event_time", "featureType": "String"},
        ],
        "roleArn": "arn:aws:iam::123456789012:role/mlops-dev-feature-ingestion",
        "offlineStoreConfig": {
            "s3StorageConfig": {"s3Uri": f"s3://{BUCKET}/feature-store/churn", "kmsKeyId": key},
            "tableFormat": "Iceberg",
            "dataCatalogConfig": CATALOG,
        },
    }
    with pytest.raises(
        DeployError, match=r"CreateFailed: .*mlops_dev_features\.churn_features already exists"
    ):
        _feature_group_create(Ctx(emu, [], 60.0), inputs, {})
    described = sagemaker.describe_feature_group(FeatureGroupName=GROUP)
    assert described["FeatureGroupStatus"] == "CreateFailed"
    assert "mlops_dev_features.churn_features already exists" in described["FailureReason"]
    refused = _put(emu, record)
    assert refused["Code"] == "ValidationError"
    assert "CreateFailed" in refused["Message"]
    assert emu.client("s3").list_objects_v2(Bucket=BUCKET)["KeyCount"] == objects  # nothing written


def test_the_offline_store_module_reads_and_appends_a_group_the_emulator_made(
    emulator: tuple[Emulator, FeatureStoreRuntime, str],
) -> None:
    """pipelines.features.offline_store against the table CreateFeatureGroup made (root credentials):
    a batch appended once (a re-run commits nothing), PutRecord's replication beside it, read back."""
    import boto3

    from pipelines.aws import AwsClients
    from pipelines.features.offline_store import append_batch, offline_table, read_records
    from pipelines.settings import PipelineSettings

    emu, runtime, key = emulator
    _create_group(emu, key, online=False)  # no DataCatalogConfig: the generated database and table
    settings = PipelineSettings(region=emu.region, endpoint_url=emu.endpoint_url)
    session = boto3.Session(region_name=emu.region, **emu.credentials)
    table = offline_table(AwsClients(settings, session=session), GROUP)
    assert table.database == "sagemaker_featurestore"
    frame = _features(20)
    assert append_batch(table, frame, batch_id="b-1", event_time="2026-11-20T00:00:00Z")["records"] == 20
    assert append_batch(table, frame, batch_id="b-1", event_time="2026-11-20T00:00:00Z")["records"] == 0
    emu.client("sagemaker-featurestore-runtime").put_record(
        FeatureGroupName=GROUP,
        Record=[
            {"FeatureName": "customer_id", "ValueAsString": "c-new"},
            {"FeatureName": "event_time", "ValueAsString": "2026-11-24T00:00:00Z"},
        ],
    )
    runtime.flush()
    table.table.refresh()
    records = read_records(table)
    assert len(records) == 21
    assert set(read_records(table, ["c-new"])["customer_id"]) == {"c-new"}


def test_a_role_that_may_not_create_the_table_fails_the_group() -> None:
    """Under the IAM authorizer the table is made as the group's role: without glue:CreateTable the
    group is CreateFailed and nothing of the table is left; with the grants the table is made and a
    flush appends to it as the role, with no denial."""
    import json

    from rehearsal.iam import Authorizer

    authorizer = Authorizer()
    runtime = FeatureStoreRuntime()
    with Emulator(authorizer=authorizer, extensions=[runtime]) as emu:
        key = emu.client("kms").create_key(Description="lake")["KeyMetadata"]["Arn"]
        emu.client("s3").create_bucket(Bucket=BUCKET)
        emu.client("glue").create_database(DatabaseInput={"Name": CATALOG["Database"]})
        iam = emu.client("iam")
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sagemaker.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        glue_actions = ["glue:GetDatabase", "glue:GetTable"]
        roles = {}
        grants = (
            ("no-create", ["glue:UpdateTable"]),
            ("no-update", ["glue:CreateTable"]),
            ("ingest", ["glue:CreateTable", "glue:UpdateTable"]),
        )
        for role, extra in grants:
            roles[role] = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))["Role"][
                "Arn"
            ]
            statements = [
                {"Effect": "Allow", "Action": [*glue_actions, *extra], "Resource": "*"},
                {
                    "Effect": "Allow",
                    "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
                    "Resource": f"arn:aws:s3:::{BUCKET}/feature-store/*",
                },
                {  # as the component scopes it: no HeadObject of a missing key is covered
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": f"arn:aws:s3:::{BUCKET}",
                    "Condition": {"StringLike": {"s3:prefix": ["feature-store/*"]}},
                },
                {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": key},
            ]
            iam.put_role_policy(
                RoleName=role,
                PolicyName="offline",
                PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
            )
        _create_group(emu, key, online=False, catalog=CATALOG, role=roles["no-create"])
        described = emu.client("sagemaker").describe_feature_group(FeatureGroupName=GROUP)
        assert described["FeatureGroupStatus"] == "CreateFailed"
        assert (
            "glue:CreateTable" in described["FailureReason"] or "AccessDenied" in described["FailureReason"]
        )
        assert not emu.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents")
        assert [d.action for d in authorizer.denials] == ["glue:CreateTable"], described["FailureReason"]
        emu.client("sagemaker").delete_feature_group(FeatureGroupName=GROUP)
        authorizer.clear()

        # a role that may create the table but not commit to it: PutRecord succeeds, replication is
        # Blocked (OfflineStoreStatus) and the records wait for the next flush
        _create_group(emu, key, online=False, catalog=CATALOG, role=roles["no-update"])
        group = GroupDefinition.describe(emu.client("sagemaker"), GROUP)
        ingest_frame(emu.client("sagemaker-featurestore-runtime"), group, _features(3))
        assert runtime.flush() == []
        described = emu.client("sagemaker").describe_feature_group(FeatureGroupName=GROUP)
        assert described["FeatureGroupStatus"] == "Created"
        assert described["OfflineStoreStatus"]["Status"] == "Blocked"
        assert "role" in described["OfflineStoreStatus"]["BlockedReason"]
        assert {d.action for d in authorizer.denials} == {"glue:UpdateTable"}
        assert feature_store_evidence(emu, GROUP)["offline_rows"] == 0
        emu.client("sagemaker").delete_feature_group(FeatureGroupName=GROUP)
        emu.client("glue").delete_table(DatabaseName=CATALOG["Database"], Name=CATALOG["TableName"])
        authorizer.clear()

        _create_group(emu, key, online=False, catalog=CATALOG, role=roles["ingest"])
        described = emu.client("sagemaker").describe_feature_group(FeatureGroupName=GROUP)
        assert described["FeatureGroupStatus"] == "Created", described.get("FailureReason")
        group = GroupDefinition.describe(emu.client("sagemaker"), GROUP)
        ingest_frame(emu.client("sagemaker-featurestore-runtime"), group, _features(10))
        assert len(runtime.flush()) == 1
        assert feature_store_evidence(emu, GROUP)["offline_rows"] == 10
        assert authorizer.denials == []
