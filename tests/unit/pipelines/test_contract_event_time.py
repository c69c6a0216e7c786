"""The contract's optional event_time column (the feature store's event time)."""

from __future__ import annotations

import pytest
import yaml

from pipelines.contract import CONTRACTS_DIR, EVENT_TIME_DEFAULT, ContractError, parse_contract
from stacks.config import data_science


def _churn(**changes: object) -> dict[str, object]:
    data = yaml.safe_load((CONTRACTS_DIR / "churn.yaml").read_text())
    data.update(changes)
    return data


def test_default_is_the_ingestion_time_column_the_stack_uses() -> None:
    contract = parse_contract(_churn())
    assert contract.event_time is None
    assert contract.event_time_column == EVENT_TIME_DEFAULT == data_science.EVENT_TIME_DEFAULT


def test_a_datetime_column_can_be_the_event_time() -> None:
    assert parse_contract(_churn(event_time="signup_date")).event_time_column == "signup_date"


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ("nope", "is not declared under 'columns'"),
        ("tenure_months", "must be a datetime column"),
    ],
)
def test_bad_event_time_is_rejected(column: str, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        parse_contract(_churn(event_time=column))
