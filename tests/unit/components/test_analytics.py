"""Analytics under the recording mock: tables follow the dataset contract; the workgroup is locked down."""

from __future__ import annotations

from typing import Any

import pytest

from components.analytics import (
    CAPTURE_COLUMNS,
    GLUE_TYPES,
    MIN_BYTES_SCANNED_CUTOFF,
    Analytics,
    AnalyticsArgs,
    Column,
    DatasetSchema,
    ModelTables,
)
from stacks.synth import SynthResult, run_program
from tests.conftest import BASE_CONFIG

RESULTS_KEY = "arn:aws:kms:us-east-1:123456789012:key/ml"
COLUMNS = [
    Column(name="customer_id", type="string"),
    Column(name="signup_date", type="datetime"),
    Column(name="tenure_months", type="integer"),
    Column(name="monthly_charges", type="float"),
    Column(name="paperless_billing", type="boolean"),
    Column(name="churned", type="integer"),
]
FEATURES = [
    Column(name="tenure_months", type="integer"),
    Column(name="plan", type="string"),
    Column(name="monthly_charges", type="float"),
    Column(name="churned", type="integer"),
]


CHURN = DatasetSchema(
    name="churn",
    columns=COLUMNS,
    feature_columns=FEATURES,
    model_inputs=["tenure_months", "plan", "monthly_charges"],
)


def _model(dataset: DatasetSchema | None = CHURN, **overrides: Any) -> ModelTables:
    values: dict[str, Any] = {
        "model": "churn",
        "capture_table": "churn_capture",
        "capture_prefix": "datacapture/churn",
        "dataset": dataset,
    }
    values.update(overrides)
    return ModelTables(**values)


def _args(*, dataset: DatasetSchema | None = CHURN, **overrides: Any) -> AnalyticsArgs:
    values: dict[str, Any] = {
        "database_name": "mlops_test_lake",
        "workgroup_name": "mlops-test-analytics",
        "curated_bucket": "lake-curated",
        "features_bucket": "lake-features",
        "capture_bucket": "lake-capture",
        "results_bucket": "lake-artifacts",
        "results_key_arn": RESULTS_KEY,
        "expected_bucket_owner": "123456789012",
        "models": [_model(dataset)],
        "bytes_scanned_cutoff": 200 * 1024 * 1024,
        "tags": {"project": "mlops-platform"},
    }
    values.update(overrides)
    return AnalyticsArgs(**values)


@pytest.fixture(scope="module")
def result() -> SynthResult:
    def program() -> dict[str, Any]:
        a = Analytics("mlops-test", _args())
        return {"db": a.database_name, "wg": a.workgroup_name, "curated": a.curated_table_name}

    return run_program(program, BASE_CONFIG)


def _tables(result: SynthResult) -> dict[str, dict[str, Any]]:
    return {t.inputs["name"]: t.inputs for t in result.of_type("aws:glue/catalogTable:CatalogTable")}


def test_tables_follow_the_dataset_contract(result: SynthResult) -> None:
    tables = _tables(result)
    assert set(tables) == {"churn_curated", "churn_features", "churn_capture"}
    curated = tables["churn_curated"]["storageDescriptor"]["columns"]
    assert [(c["name"], c["type"]) for c in curated] == [
        ("customer_id", "string"),
        ("signup_date", "timestamp"),
        ("tenure_months", "bigint"),
        ("monthly_charges", "double"),
        ("paperless_billing", "boolean"),
        ("churned", "bigint"),
    ]
    features = tables["churn_features"]["storageDescriptor"]["columns"]
    assert [(c["name"], c["type"]) for c in features] == [(c.name, GLUE_TYPES[c.type]) for c in FEATURES]
    for name in ("curated", "features"):
        table = tables[f"churn_{name}"]
        assert table["databaseName"] == "mlops_test_lake"
        assert table["tableType"] == "EXTERNAL_TABLE"
        assert table["partitionKeys"] == [{"name": "ingest_date", "type": "string"}]
        sd = table["storageDescriptor"]
        assert sd["location"] == f"s3://lake-{name}/{name}/churn/"
        assert (
            sd["serDeInfo"]["serializationLibrary"]
            == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
        )
        params = table["parameters"]
        assert params["projection.enabled"] == "true"
        assert params["projection.ingest_date.type"] == "date"
        assert params["projection.ingest_date.format"] == "yyyy-MM-dd"
        assert params["projection.ingest_date.range"] == "2024-01-01,NOW"
        assert (
            params["storage.location.template"]
            == f"s3://lake-{name}/{name}/churn/ingest_date=${{ingest_date}}/"
        )
        # the partition column is not repeated as a data column
        assert "ingest_date" not in [c["name"] for c in sd["columns"]]


def test_capture_table_matches_sagemaker_layout(result: SynthResult) -> None:
    capture = _tables(result)["churn_capture"]
    assert [(c["name"], c["type"]) for c in capture["storageDescriptor"]["columns"]] == list(CAPTURE_COLUMNS)
    assert (
        capture["storageDescriptor"]["serDeInfo"]["serializationLibrary"]
        == "org.openx.data.jsonserde.JsonSerDe"
    )
    assert [k["name"] for k in capture["partitionKeys"]] == ["endpoint", "variant", "dt"]
    params = capture["parameters"]
    assert params["projection.endpoint.type"] == "injected"
    assert params["projection.variant.type"] == "injected"
    assert params["projection.dt.format"] == "yyyy/MM/dd/HH"
    assert params["projection.dt.interval.unit"] == "HOURS"
    assert (
        params["storage.location.template"]
        == "s3://lake-capture/datacapture/churn/${endpoint}/${variant}/${dt}/"
    )


def test_workgroup_is_enforced_encrypted_and_cost_capped(result: SynthResult) -> None:
    [wg] = result.of_type("aws:athena/workgroup:Workgroup")
    assert wg.inputs["name"] == "mlops-test-analytics"
    assert wg.inputs["state"] == "ENABLED"
    assert wg.inputs["forceDestroy"] is False
    conf = wg.inputs["configuration"]
    assert conf["enforceWorkgroupConfiguration"] is True
    assert conf["publishCloudwatchMetricsEnabled"] is True
    assert conf["bytesScannedCutoffPerQuery"] == 200 * 1024 * 1024
    assert conf["engineVersion"] == {"selectedEngineVersion": "Athena engine version 3"}
    assert conf["resultConfiguration"] == {
        "outputLocation": "s3://lake-artifacts/athena-results/",
        "expectedBucketOwner": "123456789012",
        "encryptionConfiguration": {"encryptionOption": "SSE_KMS", "kmsKeyArn": RESULTS_KEY},
    }


def test_named_queries_answer_the_monitoring_questions(result: SynthResult) -> None:
    queries = {q.inputs["name"]: q.inputs for q in result.of_type("aws:athena/namedQuery:NamedQuery")}
    assert set(queries) == {
        "churn-capture-requests-per-day",
        "churn-curated-rows-per-day",
        "churn-features-summary-per-day",
        "churn-capture-feature-summary",
    }
    for q in queries.values():
        assert q["database"] == "mlops_test_lake"
        assert q["workgroup"] == "mlops-test-analytics"
    # capture queries name the injected partitions through execution parameters
    for name in ("churn-capture-requests-per-day", "churn-capture-feature-summary"):
        assert "WHERE endpoint = ? AND variant = ?" in queries[name]["query"]
        assert "FROM churn_capture" in queries[name]["query"]
    summary = queries["churn-capture-feature-summary"]["query"]
    # numeric model inputs at their CSV positions; the categorical one (plan, position 2) is skipped
    assert "split(capturedata.endpointinput.data, ','), 1)) AS double) AS tenure_months" in summary
    assert "split(capturedata.endpointinput.data, ','), 3)) AS double) AS monthly_charges" in summary
    assert " AS plan" not in summary
    assert (
        "avg(monthly_charges) AS monthly_charges_mean" in queries["churn-features-summary-per-day"]["query"]
    )
    assert "FROM churn_curated" in queries["churn-curated-rows-per-day"]["query"]
    assert "GROUP BY ingest_date" in queries["churn-curated-rows-per-day"]["query"]


def test_without_a_contract_only_the_capture_table_exists() -> None:
    run = run_program(lambda: {"db": Analytics("a", _args(dataset=None)).database_name}, BASE_CONFIG)
    assert set(_tables(run)) == {"churn_capture"}
    assert {q.inputs["name"] for q in run.of_type("aws:athena/namedQuery:NamedQuery")} == {
        "churn-capture-requests-per-day"
    }


def test_each_model_gets_its_own_tables_and_queries() -> None:
    housing = DatasetSchema(name="housing", columns=[Column(name="price", type="float")])
    models = [
        _model(),
        _model(
            housing, model="housing", capture_table="housing_capture", capture_prefix="datacapture/housing"
        ),
    ]
    run = run_program(lambda: {"db": Analytics("a", _args(models=models)).database_name}, BASE_CONFIG)
    tables = _tables(run)
    assert {"churn_capture", "housing_capture", "housing_curated"} <= set(tables)
    assert tables["housing_curated"]["storageDescriptor"]["location"] == "s3://lake-curated/curated/housing/"
    assert (
        tables["housing_capture"]["storageDescriptor"]["location"] == "s3://lake-capture/datacapture/housing/"
    )
    with pytest.raises(ValueError, match="one entry per model"):
        _args(models=[_model(), _model()])


def test_args_validation_names_field_and_fix() -> None:
    assert MIN_BYTES_SCANNED_CUTOFF == 10485760
    with pytest.raises(ValueError, match=r"bytes_scanned_cutoff.*10 MB"):
        _args(bytes_scanned_cutoff=MIN_BYTES_SCANNED_CUTOFF - 1)
    _args(bytes_scanned_cutoff=MIN_BYTES_SCANNED_CUTOFF)
    with pytest.raises(ValueError, match=r"dataset\.columns is empty"):
        _args(dataset=DatasetSchema(name="d", columns=[]))
    with pytest.raises(ValueError, match="must be lowercase"):
        _args(dataset=DatasetSchema(name="d", columns=[Column(name="Tenure", type="integer")]))
    with pytest.raises(ValueError, match="model_inputs"):
        _args(
            dataset=DatasetSchema(name="d", columns=COLUMNS, feature_columns=FEATURES, model_inputs=["nope"])
        )
    with pytest.raises(ValueError, match="capture_prefix"):
        _args(models=[_model(capture_prefix="datacapture/")])
