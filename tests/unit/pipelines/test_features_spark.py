"""The PySpark feature job in real Spark local mode: same output as the pandas reference, S3 layout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipelines.contract import SPLIT_COLUMN, load_contract
from pipelines.features import spark_job
from pipelines.features.local import run_features
from pipelines.features.spec import build_features_pandas, feature_columns, feature_spec
from pipelines.synthetic import generate
from pipelines.validate import check_batch, frame_to_parquet
from tests.unit.pipelines.conftest import Platform, all_keys
from tests.unit.pipelines.helpers import DAY

pytestmark = pytest.mark.spark


def _curated(name: str, rows: int, seed: int) -> pd.DataFrame:
    contract = load_contract(name)
    report, curated = check_batch(generate(name, rows, seed).to_csv(index=False).encode(), "x.csv", contract)
    assert curated is not None, report.summary()
    return curated


@pytest.mark.parametrize("name", ["churn", "housing"])
def test_spark_job_matches_the_pandas_reference(spark: Any, tmp_path: Path, name: str) -> None:
    contract = load_contract(name)
    spec = feature_spec(contract)
    curated = _curated(name, 400, 11)
    (tmp_path / "in" / "batch-a").mkdir(parents=True)
    (tmp_path / "in" / "batch-a" / "data.parquet").write_bytes(frame_to_parquet(curated))
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    argv = [
        "--input",
        str(tmp_path / "in"),
        "--output",
        str(tmp_path / "out"),
        "--spec",
        str(tmp_path / "spec.json"),
    ]
    assert spark_job.main(argv) == 0
    parts = sorted((tmp_path / "out").glob("part-*.parquet"))
    assert parts
    got = (
        pd.concat([pd.read_parquet(p) for p in parts])
        .sort_values(contract.unique_keys)
        .reset_index(drop=True)
    )
    expected = build_features_pandas(curated, spec).sort_values(contract.unique_keys).reset_index(drop=True)
    assert list(got.columns) == feature_columns(spec)
    assert (got[SPLIT_COLUMN] == expected[SPLIT_COLUMN]).all()
    assert set(got[SPLIT_COLUMN]) == {"train", "validation", "test"}
    for derived in spec["derived"]:
        pd.testing.assert_series_equal(
            got[derived["name"]], expected[derived["name"]].astype("float64"), check_names=False, rtol=1e-9
        )
    for column in spec["categorical"]:
        assert got[column].astype(str).tolist() == expected[column].astype(str).tolist()


def test_spark_engine_publishes_features_to_s3(spark: Any, platform: Platform) -> None:
    from pipelines.ingest import ingest_bytes
    from pipelines.validate import validate_batch

    contract = load_contract("churn")
    for seed, offset in ((1, 0), (2, 10_000)):  # two batches on the same day
        data = generate("churn", 300, seed, id_offset=offset).to_csv(index=False).encode()
        batch = ingest_bytes(platform.clients, "churn", data, f"b{seed}.csv", DAY)
        validate_batch(platform.clients, contract, batch)
    result = run_features(platform.clients, contract, DAY, engine="spark", spark=spark)
    assert result.rows == 600
    keys = all_keys(platform.s3, platform.settings.features_bucket)
    assert keys
    lineage_key = f"features/churn/ingest_date={DAY}/_lineage.json"
    assert lineage_key in keys
    assert all(
        k.startswith(f"features/churn/ingest_date={DAY}/part-") and k.endswith(".parquet")
        for k in keys
        if k != lineage_key and not k.startswith(("features/churn/versions/", "features/churn/splits/"))
    )
    # the same part files, published as an immutable content-addressed version with its manifest
    assert any(k.startswith("features/churn/versions/") and k.endswith("/_lineage.json") for k in keys)
    for key in keys:
        head = platform.s3.head_object(Bucket=platform.settings.features_bucket, Key=key)
        assert head["SSEKMSKeyId"] == platform.settings.data_lake_key_arn


def test_same_data_through_pandas_and_spark_registers_one_package(spark: Any, platform: Platform) -> None:
    """The idempotency key is the validated data and the contract, not the engine's part files."""
    from pipelines.evaluate import evaluate_model
    from pipelines.features.local import Engine
    from pipelines.ingest import ingest_bytes
    from pipelines.register import register_model
    from pipelines.train import run_training_locally
    from pipelines.validate import validate_batch
    from tests.unit.pipelines.helpers import contract_path

    contract = load_contract("churn")
    data = generate("churn", 800, 5).to_csv(index=False).encode()
    batch = ingest_bytes(platform.clients, "churn", data, "b.csv", DAY)
    validate_batch(platform.clients, contract, batch)
    arns, part_hashes = [], []
    runs: tuple[tuple[str, Engine], ...] = (("run-pandas", "pandas"), ("run-spark", "spark"))
    for run_id, engine in runs:
        features = run_features(platform.clients, contract, DAY, engine=engine, spark=spark)
        part_hashes.append(
            sorted(
                platform.s3.head_object(Bucket=platform.settings.features_bucket, Key=k)["ETag"]
                for k in features.keys
            )
        )
        model_uri = run_training_locally(platform.clients, contract_path(contract), run_id, features.uri)
        evaluate_model(platform.clients, model_uri, features.uri, compare_with_champion=False)
        arns.append(register_model(platform.clients, model_uri, allow_failed_gate=True))
    assert part_hashes[0] != part_hashes[1], "the engines wrote the same bytes: the test proves nothing"
    assert arns[1].created is False
    assert arns[1].model_package_arn == arns[0].model_package_arn
    listed = platform.clients.sagemaker.list_model_packages(ModelPackageGroupName="mlops-test-models")
    assert len(listed["ModelPackageSummaryList"]) == 1


def test_spark_job_carries_a_sensitive_attribute_that_is_not_a_feature(spark: Any, tmp_path: Path) -> None:
    from pipelines.contract import parse_contract

    data = load_contract("churn").model_dump(mode="json")
    data["features"]["categorical"] = [c for c in data["features"]["categorical"] if c != "region"]
    data["fairness"] = {"sensitive_attributes": ["region"]}
    spec = feature_spec(parse_contract(data, "test.yaml"))
    assert spec["passthrough"] == ["region"]
    curated = _curated("churn", 200, 5)
    (tmp_path / "in" / "batch-a").mkdir(parents=True)
    (tmp_path / "in" / "batch-a" / "data.parquet").write_bytes(frame_to_parquet(curated))
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    argv = [
        "--input",
        str(tmp_path / "in"),
        "--output",
        str(tmp_path / "out"),
        "--spec",
        str(tmp_path / "spec.json"),
    ]
    assert spark_job.main(argv) == 0
    got = pd.concat([pd.read_parquet(p) for p in sorted((tmp_path / "out").glob("part-*.parquet"))])
    assert list(got.columns) == feature_columns(spec)
    expected = build_features_pandas(curated, spec).set_index("customer_id")["region"]
    assert got.set_index("customer_id")["region"].sort_index().tolist() == expected.sort_index().tolist()
