"""FeatureStore under the recording mock: groups match the contract, offline store location and keys,
ingestion role least privilege, and the plan derived from a contract (stacks.config.data_science)."""

from __future__ import annotations

from typing import Any

import pytest

from components.feature_store import INGESTION_ACTIONS, FeatureGroupSpec, FeatureStore, FeatureStoreArgs
from platform_contract.naming import model_names
from stacks.config.contracts import ContractColumn, ContractSchema, read_contract_schema
from stacks.config.data_science import EVENT_TIME_DEFAULT, feature_group_plan
from stacks.synth import SynthResult, run_program
from tests.conftest import BASE_CONFIG
from tests.unit.components._helpers import as_list, policy, statements

ACCOUNT = "123456789012"
LAKE_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/lake"
ML_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/ml"
FEATURES = "arn:aws:s3:::lake-features"


def _spec(model: str = "churn", contract: str = "churn") -> FeatureGroupSpec:
    names = model_names("mlops-test", model)
    plan = feature_group_plan(read_contract_schema(contract))
    return FeatureGroupSpec(
        name=names.feature_group,
        record_identifier=plan.record_identifier,
        event_time_feature=plan.event_time_feature,
        features=plan.features,
        offline_prefix=names.feature_offline_prefix,
        offline_table=names.feature_offline_table,
        tags={"mlops:model": names.slug},
    )


def _args(**overrides: Any) -> FeatureStoreArgs:
    values: dict[str, Any] = {
        "name_prefix": "mlops-test",
        "region": "us-east-1",
        "groups": [_spec(), _spec("housing", "housing")],
        "offline_bucket_name": "lake-features",
        "offline_bucket_arn": FEATURES,
        "offline_key_arn": LAKE_KEY,
        "glue_database_name": "mlops_test_lake",
        "online_store": True,
        "online_key_arn": ML_KEY,
        "online_ttl_days": 30,
        "tags": {"project": "mlops-platform"},
    }
    values.update(overrides)
    return FeatureStoreArgs(**values)


def _run(args: FeatureStoreArgs) -> SynthResult:
    def program() -> dict[str, Any]:
        store = FeatureStore("mlops-test", args)
        return {"names": store.feature_group_names, "tables": store.offline_table_names}

    return run_program(program, BASE_CONFIG)


@pytest.fixture(scope="module")
def result() -> SynthResult:
    return _run(_args())


def _groups(result: SynthResult) -> dict[str, dict[str, Any]]:
    return {
        g.inputs["featureGroupName"]: g.inputs
        for g in result.of_type("aws:sagemaker/featureGroup:FeatureGroup")
    }


def test_feature_groups_match_the_contract(result: SynthResult) -> None:
    groups = _groups(result)
    assert set(groups) == {"mlops-test-churn-features", "mlops-test-housing-features"}
    churn = groups["mlops-test-churn-features"]
    schema = read_contract_schema("churn")
    assert churn["recordIdentifierFeatureName"] == "customer_id"
    assert churn["eventTimeFeatureName"] == EVENT_TIME_DEFAULT
    definitions = {d["featureName"]: d["featureType"] for d in churn["featureDefinitions"]}
    expected = {c.name for c in schema.feature_columns if c.name != "__split__"} | {EVENT_TIME_DEFAULT}
    assert set(definitions) == expected
    assert definitions["tenure_months"] == "Integral"
    assert definitions["monthly_charges"] == "Fractional"
    assert definitions["charges_per_tenure_month"] == "Fractional"  # derived
    assert definitions["contract_type"] == "String"
    assert definitions["paperless_billing"] == "Integral"  # boolean as 0/1
    assert definitions["churned"] == "Integral"  # the label, for point-in-time training sets
    assert definitions[EVENT_TIME_DEFAULT] == "String"
    assert groups["mlops-test-housing-features"]["recordIdentifierFeatureName"] == "house_id"


def test_offline_store_location_format_and_encryption(result: SynthResult) -> None:
    role = result.named("mlops-test-feature-ingestion-role")
    for name, group in _groups(result).items():
        slug = name.removeprefix("mlops-test-").removesuffix("-features")
        offline = group["offlineStoreConfig"]
        assert offline["s3StorageConfig"] == {
            "s3Uri": f"s3://lake-features/feature-store/{slug}",
            "kmsKeyId": LAKE_KEY,
        }
        assert offline["tableFormat"] == "Iceberg"
        assert offline["dataCatalogConfig"] == {
            "catalog": "AwsDataCatalog",
            "database": "mlops_test_lake",
            "tableName": f"{slug}_feature_group",
        }
        online = group["onlineStoreConfig"]
        assert online["enableOnlineStore"] is True
        assert online["securityConfig"] == {"kmsKeyId": ML_KEY}
        assert online["ttlDuration"] == {"unit": "Days", "value": 30}
        assert group["roleArn"] == role.outputs["arn"]
    assert result.outputs["tables"] == {
        "mlops-test-churn-features": "churn_feature_group",
        "mlops-test-housing-features": "housing_feature_group",
    }


def test_online_store_is_optional() -> None:
    result = _run(_args(online_store=False, online_key_arn=None, online_ttl_days=None))
    for group in _groups(result).values():
        assert not group.get("onlineStoreConfig")
    by_sid = {
        s["Sid"]: s for s in statements(policy(result.named("mlops-test-feature-ingestion-permissions")))
    }
    assert by_sid["UseStoreKeys"]["Resource"] == [LAKE_KEY]


def test_ingestion_role_is_least_privilege(result: SynthResult) -> None:
    role = result.named("mlops-test-feature-ingestion-role")
    [trust] = statements(policy(role, "assumeRolePolicy"))
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    assert not role.inputs.get("managedPolicyArns")
    by_sid = {
        s["Sid"]: s for s in statements(policy(result.named("mlops-test-feature-ingestion-permissions")))
    }
    arns = [
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:feature-group/mlops-test-{m}-features"
        for m in ("churn", "housing")
    ]
    assert by_sid["IngestRecords"] == {
        "Sid": "IngestRecords",
        "Effect": "Allow",
        "Action": list(INGESTION_ACTIONS),
        "Resource": arns,
    }
    assert not any(a.endswith(("CreateFeatureGroup", "DeleteFeatureGroup")) for a in INGESTION_ACTIONS)
    assert by_sid["WriteOfflineStore"]["Resource"] == [
        f"{FEATURES}/feature-store/churn/*",
        f"{FEATURES}/feature-store/housing/*",
    ]
    assert by_sid["ListOfflineStore"]["Condition"] == {
        "StringLike": {"s3:prefix": ["feature-store/churn/*", "feature-store/housing/*"]}
    }
    tables = as_list(by_sid["OfflineStoreTables"]["Resource"])
    assert f"arn:aws:glue:us-east-1:{ACCOUNT}:table/mlops_test_lake/churn_feature_group" in tables
    assert not any(r.endswith("/*") for r in tables)
    assert by_sid["UseStoreKeys"]["Resource"] == [LAKE_KEY, ML_KEY]
    for s in by_sid.values():
        assert "*" not in as_list(s["Resource"]), s["Sid"]
    # Feature Store checks the role when the group is created.
    for group in result.of_type("aws:sagemaker/featureGroup:FeatureGroup"):
        assert result.named("mlops-test-feature-ingestion-permissions").urn in group.dependencies


def test_contract_event_time_column_is_used() -> None:
    base = read_contract_schema("churn")
    schema = ContractSchema(
        name=base.name, task=base.task, columns=base.columns, feature_columns=base.feature_columns,
        model_inputs=base.model_inputs, unique_keys=base.unique_keys, event_time="signup_date",
    )  # fmt: skip
    plan = feature_group_plan(schema)
    assert plan.event_time_feature == "signup_date"
    assert ("signup_date", "String") in plan.features
    assert EVENT_TIME_DEFAULT not in dict(plan.features)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"unique_keys": ()}, "needs one record identifier"),
        ({"unique_keys": ("customer_id", "region")}, "needs one record identifier"),
        ({"event_time": "churned"}, "already a key, feature or the target"),
        (
            {
                "feature_columns": (
                    ContractColumn("customer_id", "string"),
                    ContractColumn("_private", "float"),
                )
            },
            "not valid feature names",
        ),
        (
            {
                "feature_columns": (
                    ContractColumn("customer_id", "string"),
                    ContractColumn("write_time", "float"),
                )
            },
            "not valid feature names",
        ),
    ],
)
def test_contracts_that_cannot_be_a_feature_group(change: dict[str, Any], message: str) -> None:
    base = read_contract_schema("churn")
    fields = {
        "name": base.name, "task": base.task, "columns": base.columns, "feature_columns": base.feature_columns,
        "model_inputs": base.model_inputs, "unique_keys": base.unique_keys, "event_time": None,
    }  # fmt: skip
    with pytest.raises(ValueError, match=message):
        feature_group_plan(ContractSchema(**{**fields, **change}))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"groups": []}, "at least one feature group"),
        ({"online_key_arn": None}, "needs the key"),
        ({"online_ttl_days": 0}, "at least 1 day"),
        ({"groups": [_spec(), _spec()]}, "names repeat"),
    ],
)
def test_bad_args_are_rejected(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _args(**overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": "-bad"}, "name: 1-64"),
        ({"record_identifier": "nope"}, "not one of its features"),
        ({"event_time_feature": "tenure_months"}, "must be a String"),
        ({"offline_prefix": "feature-store/churn/"}, "no leading or trailing"),
        ({"features": [("customer_id", "String"), ("customer_id", "String")]}, "listed twice"),
    ],
)
def test_bad_group_specs_are_rejected(overrides: dict[str, Any], message: str) -> None:
    spec = _spec()
    values = {k: getattr(spec, k) for k in ("name", "record_identifier", "event_time_feature", "features",
                                            "offline_prefix", "offline_table")}  # fmt: skip
    with pytest.raises(ValueError, match=message):
        FeatureGroupSpec(**{**values, **overrides})


def test_writer_roles_may_put_records_into_these_groups_only() -> None:
    result = _run(_args(writer_role_names={"emr-features": "mlops-test-default-emr-job"}))
    grant = result.named("mlops-test-feature-writer-emr-features")
    assert grant.inputs["role"] == "mlops-test-default-emr-job"
    [statement] = statements(policy(grant))
    assert sorted(as_list(statement["Action"])) == ["sagemaker:DescribeFeatureGroup", "sagemaker:PutRecord"]
    assert sorted(as_list(statement["Resource"])) == [
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:feature-group/mlops-test-churn-features",
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:feature-group/mlops-test-housing-features",
    ]
    assert not _run(_args()).of_type("aws:iam/rolePolicy:RolePolicy")[1:]  # only the ingestion role's


def test_offline_writer_roles_may_commit_to_and_read_these_tables_only() -> None:
    """The DAG workers' role appends batches to the Iceberg offline tables and reads them back: the
    groups' definitions, GetTable/UpdateTable on these tables (and their catalog and database), objects
    under the offline prefixes (add only: no delete, no listing), and the offline key."""
    result = _run(_args(offline_writer_role_names={"airflow": "mlops-test-airflow-execution"}))
    grant = result.named("mlops-test-offline-writer-airflow")
    assert grant.inputs["role"] == "mlops-test-airflow-execution"
    by_sid = {s["Sid"]: s for s in statements(policy(grant))}
    assert sorted(by_sid) == [
        "CommitOfflineTables",
        "DescribeFeatureGroups",
        "OfflineTableFiles",
        "UseOfflineKey",
    ]
    groups = by_sid["DescribeFeatureGroups"]
    assert as_list(groups["Action"]) == ["sagemaker:DescribeFeatureGroup"]
    assert len(as_list(groups["Resource"])) == 2
    tables = by_sid["CommitOfflineTables"]
    assert sorted(as_list(tables["Action"])) == ["glue:GetTable", "glue:UpdateTable"]
    glue = f"arn:aws:glue:us-east-1:{ACCOUNT}:"
    names = [model_names("mlops-test", m).feature_offline_table for m in ("churn", "housing")]
    assert sorted(as_list(tables["Resource"])) == sorted(
        [f"{glue}catalog", f"{glue}database/mlops_test_lake"]
        + [f"{glue}table/mlops_test_lake/{n}" for n in names]
    )
    files = by_sid["OfflineTableFiles"]
    assert sorted(as_list(files["Action"])) == ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"]
    prefixes = [model_names("mlops-test", m).feature_offline_prefix for m in ("churn", "housing")]
    assert sorted(as_list(files["Resource"])) == sorted(f"{FEATURES}/{p}/*" for p in prefixes)
    key = by_sid["UseOfflineKey"]
    assert sorted(as_list(key["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert key["Resource"] == LAKE_KEY
