"""Contract parsing errors, the ingest key layout and idempotency, and the synthetic generators."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipelines.contract import CONTRACTS_DIR, ContractError, load_contract, parse_contract
from pipelines.features.spark_job import SPLIT_COLUMN as JOB_SPLIT_COLUMN
from pipelines.ingest import ingest_bytes, ingest_file
from pipelines.synthetic import DriftSpec, generate, generate_churn, write_frame
from tests.unit.pipelines.conftest import Platform, all_keys


def _churn_dict() -> dict:
    return yaml.safe_load((CONTRACTS_DIR / "churn.yaml").read_text())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(task="clustering"), "task"),
        (lambda d: d.update(target="nope"), "not declared under 'columns'"),
        (lambda d: d.pop("positive_class"), "positive_class"),
        (lambda d: d["columns"][2].update(type="decimal"), "columns.2.type"),
        (lambda d: d["features"]["derived"][1].update(inputs=["a", "b"]), "takes 1 input"),
        (lambda d: d["features"].update(numeric=["churned"]), "cannot also be a feature"),
        (lambda d: d.update(surprise=1), "surprise"),
    ],
)
def test_invalid_contracts_name_the_field(change: object, message: str) -> None:
    data = _churn_dict()
    change(data)  # type: ignore[operator]
    with pytest.raises(ContractError, match=message):
        parse_contract(data, "churn.yaml")


def test_contract_lookup(tmp_path: Path) -> None:
    assert load_contract("churn").name == "churn"
    assert load_contract(CONTRACTS_DIR / "housing.yaml").task == "regression"
    with pytest.raises(ContractError, match="not found"):
        load_contract("no-such-dataset")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ContractError, match="not valid YAML"):
        load_contract(bad)


def test_split_column_constant_is_shared() -> None:
    from pipelines.contract import SPLIT_COLUMN

    assert SPLIT_COLUMN == JOB_SPLIT_COLUMN


def test_ingest_layout_and_idempotency(platform: Platform, tmp_path: Path) -> None:
    path = write_frame(generate_churn(rows=50), tmp_path / "my batch.csv")
    first = ingest_file(platform.clients, "churn", path, "2026-11-24")
    assert first.key == f"raw/churn/ingest_date=2026-11-24/{first.sha256[:16]}/my_batch.csv"
    head = platform.s3.head_object(Bucket=first.bucket, Key=first.key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == platform.settings.data_lake_key_arn
    again = ingest_file(platform.clients, "churn", path, "2026-11-24")
    assert again.already_present
    assert again.key == first.key
    assert all_keys(platform.s3, first.bucket) == [first.key]
    with pytest.raises(ValueError, match=r"only \.csv, \.parquet"):
        ingest_bytes(platform.clients, "churn", b"x", "data.xlsx")
    with pytest.raises(FileNotFoundError):
        ingest_file(platform.clients, "churn", tmp_path / "missing.csv")


def test_generators_are_seeded_and_valid() -> None:
    from pipelines.validate import check_batch

    assert generate("churn", 100, 5).equals(generate("churn", 100, 5))
    assert not generate("churn", 100, 5).equals(generate("churn", 100, 6))
    for name in ("churn", "housing"):
        report, _ = check_batch(
            generate(name, 500, 2).to_csv(index=False).encode(), "x.csv", load_contract(name)
        )
        assert report.passed, report.summary()
    with pytest.raises(ValueError, match="no generator"):
        generate("iris", 10, 1)


def test_drift_injection_moves_distributions() -> None:
    base = generate_churn(rows=4000, seed=9)
    drifted = generate_churn(
        rows=4000,
        seed=9,
        drift=DriftSpec(
            numeric_shift={"monthly_charges": 25.0},
            category_weights={"contract_type": {"month-to-month": 0.9, "one-year": 0.05, "two-year": 0.05}},
            label_shift=1.5,
        ),
    )
    assert drifted["monthly_charges"].mean() > base["monthly_charges"].mean() + 15
    assert (drifted["contract_type"] == "month-to-month").mean() > 0.85
    assert drifted["churned"].mean() > base["churned"].mean() + 0.15
