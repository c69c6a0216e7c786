"""Data validation: good batches pass and are curated; each kind of bad batch is rejected on its own."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import pandas as pd
import pytest

from pipelines.contract import DatasetContract
from pipelines.ingest import ingest_bytes
from pipelines.synthetic import generate_churn, generate_housing
from pipelines.validate import BatchValidationError, check_batch, validate_batch
from tests.unit.pipelines.conftest import Platform, all_keys

GOOD = generate_churn(rows=300, seed=3)


def _csv(frame: pd.DataFrame, **kwargs: object) -> bytes:
    return frame.to_csv(index=False, **kwargs).encode()  # type: ignore[arg-type]


def _parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def _with(column: str, row: int, value: object) -> pd.DataFrame:
    frame = GOOD.copy().astype({column: object})
    frame.loc[row, column] = value
    return frame


# (kind, file name, bytes builder, text expected in the message)
BAD_BATCHES: list[tuple[str, str, Callable[[], bytes], str]] = [
    ("missing_columns", "b.csv", lambda: _csv(GOOD.drop(columns=["support_calls"])), "support_calls"),
    ("wrong_type", "b.csv", lambda: _csv(_with("tenure_months", 5, "twelve")), "must be integer"),
    ("out_of_range", "b.csv", lambda: _csv(_with("monthly_charges", 7, -5.0)), "within [0.0, 500.0]"),
    ("unknown_category", "b.csv", lambda: _csv(_with("contract_type", 2, "weekly")), "'weekly'"),
    ("nulls", "b.csv", lambda: _csv(_with("support_calls", 4, None)), "not nullable"),
    ("duplicate_keys", "b.csv", lambda: _csv(_with("customer_id", 9, GOOD.loc[8, "customer_id"])), "repeats"),
    ("empty_file", "b.csv", lambda: b"", "is empty"),
    ("truncated_file", "b.csv", lambda: _csv(GOOD)[:-40].rstrip(b"\n"), "cut off"),
    (
        "corrupt_file",
        "b.parquet",
        lambda: _parquet(GOOD)[: len(_parquet(GOOD)) // 2],
        "not a readable Parquet",
    ),
    ("wrong_delimiter", "b.csv", lambda: _csv(GOOD, sep=";"), "';'-separated"),
    ("extra_columns", "b.csv", lambda: _csv(GOOD.assign(promo_code="X")), "promo_code"),
    ("label_missing", "b.csv", lambda: _csv(GOOD.drop(columns=["churned"])), "target column 'churned'"),
    ("different_contract", "b.csv", lambda: _csv(generate_housing(rows=50)), "matches contract 'housing'"),
    ("label_null", "b.csv", lambda: _csv(_with("churned", 3, None)), "every training row needs a label"),
    ("invalid_label", "b.csv", lambda: _csv(_with("churned", 3, 2)), "allows [0, 1]"),
    ("empty_file", "h.csv", lambda: _csv(GOOD.iloc[:0]), "no data rows"),
    ("corrupt_file", "b.csv", lambda: b"\xff\xfe\x00garbage\x00\xd8", "not UTF-8"),
]


def test_good_batch_passes_and_types_are_coerced(churn_contract: DatasetContract) -> None:
    report, curated = check_batch(_csv(GOOD), "good.csv", churn_contract)
    assert report.passed, report.summary()
    assert curated is not None
    assert list(curated.columns) == churn_contract.column_names
    assert str(curated["tenure_months"].dtype) == "Int64"
    assert str(curated["paperless_billing"].dtype) == "boolean"
    assert curated["signup_date"].dtype.kind == "M"
    assert len(curated) == len(GOOD)


def test_parquet_batch_passes(churn_contract: DatasetContract) -> None:
    report, curated = check_batch(_parquet(GOOD), "good.parquet", churn_contract)
    assert report.passed, report.summary()
    assert curated is not None
    assert len(curated) == len(GOOD)


@pytest.mark.parametrize(
    ("kind", "file_name", "build", "needle"), BAD_BATCHES, ids=[b[0] for b in BAD_BATCHES]
)
def test_bad_batch_is_rejected_with_its_own_message(
    churn_contract: DatasetContract,
    housing_contract: DatasetContract,
    kind: str,
    file_name: str,
    build: Callable[[], bytes],
    needle: str,
) -> None:
    report, curated = check_batch(build(), file_name, churn_contract, others=[housing_contract])
    assert curated is None
    assert not report.passed
    assert report.kinds == [kind], report.summary()
    assert needle in report.failures[0].message, report.failures[0].message


def test_at_least_twelve_distinct_kinds() -> None:
    assert len({kind for kind, *_ in BAD_BATCHES}) >= 12


def test_failures_carry_example_rows(churn_contract: DatasetContract) -> None:
    report, _ = check_batch(_csv(_with("monthly_charges", 7, -5.0)), "b.csv", churn_contract)
    failure = report.failures[0]
    assert failure.column == "monthly_charges"
    assert failure.count == 1
    assert failure.examples[0]["line"] == 9  # data row 7 (0-based) is line 9: header + 1-based
    assert "(line 9)" in failure.message
    assert failure.examples[0]["customer_id"] == GOOD.loc[7, "customer_id"]


def test_several_problems_are_all_listed(churn_contract: DatasetContract) -> None:
    frame = _with("contract_type", 2, "weekly")
    frame.loc[4, "support_calls"] = None
    frame.loc[6, "tenure_months"] = 500
    report, _ = check_batch(_csv(frame), "b.csv", churn_contract)
    assert set(report.kinds) == {"unknown_category", "nulls", "out_of_range"}
    text = report.summary()
    assert "[unknown_category]" in text
    assert "[nulls]" in text
    assert "[out_of_range]" in text


def test_extra_columns_drop_policy(housing_contract: DatasetContract) -> None:
    frame = generate_housing(rows=40).assign(listing_url="http://x")
    report, curated = check_batch(_csv(frame), "h.csv", housing_contract)
    assert report.passed
    assert curated is not None
    assert "listing_url" not in curated.columns


def test_nullable_column_accepts_nulls(churn_contract: DatasetContract) -> None:
    assert GOOD["total_charges"].isna().any()
    report, _ = check_batch(_csv(GOOD), "good.csv", churn_contract)
    assert report.passed


@pytest.mark.parametrize(
    ("kind", "file_name", "build", "needle"), BAD_BATCHES, ids=[b[0] for b in BAD_BATCHES]
)
def test_rejected_batch_writes_report_and_nothing_downstream(
    platform: Platform,
    churn_contract: DatasetContract,
    housing_contract: DatasetContract,
    kind: str,
    file_name: str,
    build: Callable[[], bytes],
    needle: str,
) -> None:
    batch = ingest_bytes(platform.clients, "churn", build(), file_name, "2026-11-24")
    with pytest.raises(BatchValidationError) as err:
        validate_batch(platform.clients, churn_contract, batch, others=[housing_contract])
    assert f"[{kind}]" in str(err.value)
    assert err.value.report_uri == f"s3://{batch.bucket}/{batch.prefix}/validation.json"
    report = json.loads(
        platform.s3.get_object(Bucket=batch.bucket, Key=f"{batch.prefix}/validation.json")["Body"].read()
    )
    assert report["passed"] is False
    assert report["failures"][0]["kind"] == kind
    summary = (
        platform.s3.get_object(Bucket=batch.bucket, Key=f"{batch.prefix}/validation.md")["Body"]
        .read()
        .decode()
    )
    assert "FAILED" in summary
    for bucket in ("curated", "features", "artifacts"):
        assert all_keys(platform.s3, getattr(platform.settings, f"{bucket}_bucket")) == []


def test_passing_batch_is_curated_encrypted(platform: Platform, churn_contract: DatasetContract) -> None:
    batch = ingest_bytes(platform.clients, "churn", _csv(GOOD), "good.csv", "2026-11-24")
    outcome = validate_batch(platform.clients, churn_contract, batch)
    assert outcome.report.passed
    key = f"curated/churn/ingest_date=2026-11-24/{batch.sha256[:16]}/data.parquet"
    assert outcome.curated_uri == f"s3://{platform.settings.curated_bucket}/{key}"
    head = platform.s3.head_object(Bucket=platform.settings.curated_bucket, Key=key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == platform.settings.data_lake_key_arn
    body = platform.s3.get_object(Bucket=platform.settings.curated_bucket, Key=key)["Body"].read()
    frame = pd.read_parquet(io.BytesIO(body))
    assert len(frame) == len(GOOD)
    report_head = platform.s3.head_object(Bucket=batch.bucket, Key=f"{batch.prefix}/validation.json")
    assert report_head["ServerSideEncryption"] == "aws:kms"


def test_row_numbers_are_file_lines_or_data_rows(churn_contract: DatasetContract) -> None:
    frame = _with("monthly_charges", 2, -5.0)
    text = frame.to_csv(index=False).splitlines()
    blank_before = "\n".join([text[0], "", *text[1:]]) + "\n"  # a blank line shifts file lines by one
    report, _ = check_batch(blank_before.encode(), "b.csv", churn_contract)
    assert "(line 5)" in report.failures[0].message, report.failures[0].message
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    report, _ = check_batch(buffer.getvalue(), "b.parquet", churn_contract)
    assert "(data row 3)" in report.failures[0].message, report.failures[0].message
    assert report.failures[0].examples[0]["data_row"] == 3


def test_reports_are_strict_json(churn_contract: DatasetContract) -> None:
    """validation.json/.md never hold bare NaN (an example row with an empty nullable float)."""
    frame = _with("monthly_charges", 1, -5.0)
    frame.loc[1, "total_charges"] = float("nan")
    report, _ = check_batch(_csv(frame), "b.csv", churn_contract)
    assert not report.passed

    def refuse(constant: str) -> None:
        raise AssertionError(f"not JSON: {constant}")

    body = json.loads(report.to_json(), parse_constant=refuse)
    assert body["failures"][0]["examples"][0]["total_charges"] is None
    assert "NaN" not in report.to_markdown()
