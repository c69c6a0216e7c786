"""The training DAG's publish_features task builds the training set point-in-time correct.

Through ``publish_features_step`` (what the DAG's task runs): the feature job's rows for one ingest
date, with the dataset's feature sets of an earlier and a later date in the bucket. A label gets the
latest feature record at or before its event time: never the later date's value (a backfill of an
older date must not see the future), and the batch's own record over an older one.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from pipelines.contract import DatasetContract, resolve_contract_path
from pipelines.features.spec import build_features_pandas, feature_spec
from pipelines.orchestration import publish_features_step
from pipelines.synthetic import generate
from tests.unit.pipelines.conftest import Platform


def _put(platform: Platform, bucket: str, key: str, frame: pd.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    platform.s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())


def test_the_dag_training_set_never_uses_a_later_feature_value(
    platform: Platform, churn_contract: DatasetContract
) -> None:
    settings = platform.settings
    features, curated = settings.features_bucket, settings.curated_bucket
    assert features
    assert curated
    raw = generate("churn", 40, 7)
    batch = build_features_pandas(raw, feature_spec(churn_contract))
    first = str(batch["customer_id"].iloc[0])
    _put(platform, curated, "curated/churn/ingest_date=2026-11-20/abc/data.parquet", raw)
    _put(platform, features, "features/churn/ingest_date=2026-11-20/part-00000.parquet", batch)
    older, later = batch.head(5).copy(), batch.head(5).copy()
    older["monthly_charges"], later["monthly_charges"] = 1.0, 999.0
    _put(platform, features, "features/churn/ingest_date=2026-11-10/part-00000.parquet", older)
    _put(platform, features, "features/churn/ingest_date=2026-11-25/part-00000.parquet", later)

    uri = f"s3://{features}/features/churn/ingest_date=2026-11-20/"
    result = publish_features_step(platform.clients, Path(resolve_contract_path("churn")), "2026-11-20", uri)

    assert result["point_in_time"]["future_records"] == 5
    assert result["point_in_time"]["history_records"] == 10
    assert result["point_in_time"]["from_history"] == 0
    body = platform.s3.get_object(
        Bucket=features, Key="features/churn/ingest_date=2026-11-20/part-00000.parquet"
    )
    training = pd.read_parquet(io.BytesIO(body["Body"].read()))
    assert list(training.columns) == list(batch.columns)
    assert len(training) == len(batch)
    row = training.loc[training["customer_id"].astype(str) == first].iloc[0]
    assert row["monthly_charges"] != 999.0  # the 2026-11-25 value is after the label: excluded
    assert row["monthly_charges"] == batch["monthly_charges"].iloc[0]  # the latest at or before it
    assert bool((training["monthly_charges"] != 999.0).all())
    pd.testing.assert_frame_equal(training, batch, check_dtype=True)


def test_a_label_between_two_records_takes_the_earlier_one(churn_contract: DatasetContract) -> None:
    """The history alone: a label dated between two records gets the earlier, never the later one."""
    from pipelines.features.point_in_time import EVENT_TIME, point_in_time_join

    batch = build_features_pandas(generate("churn", 6, 3), feature_spec(churn_contract))
    history = pd.concat([batch.assign(monthly_charges=v) for v in (10.0, 20.0, 30.0)], ignore_index=True)
    history[EVENT_TIME] = [f"2026-11-0{d}T00:00:00Z" for d in (1, 5, 9) for _ in range(6)]
    joined = point_in_time_join(
        batch[["customer_id", "churned"]].assign(t="2026-11-06T00:00:00Z"),
        pd.DataFrame(history.rename(columns={EVENT_TIME: "ft"})[["customer_id", "ft", "monthly_charges"]]),
        key="customer_id",
        label_time="t",
        feature_time="ft",
    )
    assert bool((joined["monthly_charges"] == 20.0).all())  # 11-05 <= 11-06 < 11-09


def test_two_batches_of_one_date_keep_their_own_rows(churn_contract: DatasetContract) -> None:
    """Several curated batches of a date share identifiers: no row takes the other batch's record."""
    from pipelines.features.point_in_time import as_of_training_set

    one = build_features_pandas(generate("churn", 30, 1), feature_spec(churn_contract))
    two = one.assign(monthly_charges=one["monthly_charges"] + 1000.0)
    batch = pd.concat([one, two], ignore_index=True)
    labels = ["churned", "__split__", *churn_contract.passthrough_columns]
    out = as_of_training_set(
        batch, None, key="customer_id", label_columns=labels, batch_time="2026-11-20T00:00:00Z"
    )
    pd.testing.assert_frame_equal(out, batch)
