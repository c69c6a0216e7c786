"""Catalog config messages name the model (``models['housing'].endpoint...``); the position only
when the name itself cannot say which entry is meant (missing, invalid, listed twice)."""

from __future__ import annotations

from typing import Any

import pytest

from stacks.config import ConfigError, parse_config
from stacks.config.models import ModelConfig, catalog_key

VALID = {"environment": "dev", "region": "us-east-1", "owner": "ml-team", "costCenter": "cc-1"}
CHURN = {"name": "churn", "contract": "churn"}


def _problems(models: list[Any], **overrides: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config({**VALID, "models": models, **overrides})
    return info.value.problems


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        # a value of the wrong type (pydantic's own error)
        (
            {"name": "housing", "contract": "housing", "endpoint": {"instanceCount": "two"}},
            "mlops-platform:models['housing'].endpoint.instanceCount = \"two\": Input should be a valid integer",
        ),
        # a section's range rule
        (
            {"name": "housing", "contract": "housing", "endpoint": {"canarySizePercent": 80}},
            "mlops-platform:models['housing'].endpoint.canarySizePercent = 80: the canary must be 1-50%",
        ),
        # a misspelt key
        (
            {"name": "housing", "contract": "housing", "endpiont": {}},
            "mlops-platform:models['housing'].endpiont is not a known setting",
        ),
        # a nested section's validator
        (
            {"name": "housing", "contract": "housing", "monitoring": {"schedule": "hourly"}},
            "mlops-platform:models['housing'].monitoring.schedule = \"hourly\": must be an Airflow preset",
        ),
        # a section-level rule (written relative to the section)
        (
            {
                "name": "housing",
                "contract": "housing",
                "endpoint": {"strategy": "CANARY", "instanceCount": 1},
            },
            "mlops-platform:models['housing'].endpoint",
        ),
        # the contract file is missing: the catalog rule names the model
        (
            {"name": "housing", "contract": "sales"},
            "mlops-platform:models['housing'].contract = 'sales': no contract file",
        ),
        # a bad contract name (the field's validator)
        (
            {"name": "housing", "contract": "../housing"},
            "mlops-platform:models['housing'].contract = \"../housing\": must be a contract file name",
        ),
        # the name itself is missing, invalid or a duplicate: only the position can say which entry
        ({"contract": "housing"}, "mlops-platform:models[1].name is required but not set"),
        ({"name": "9lives", "contract": "housing"}, "mlops-platform:models[1].name = '9lives': model name"),
        (
            {"name": "churn", "contract": "housing"},
            "mlops-platform:models[1].name = 'churn': is listed twice",
        ),
        (
            {"name": "Churn", "contract": "housing"},
            "mlops-platform:models[1].name = 'Churn': becomes 'churn'",
        ),
        ("housing", 'mlops-platform:models[1] = "housing": Input should be a valid dictionary'),
    ],
)
def test_each_kind_of_mistake_names_the_entry(second: Any, expected: str) -> None:
    problems = _problems([CHURN, second])
    assert any(p.startswith(expected) for p in problems), problems
    assert not any("models.1" in p or "models.0" in p for p in problems), problems


def test_an_invalid_name_elsewhere_does_not_hide_a_good_name() -> None:
    problems = _problems(
        [{"name": "9lives", "contract": "churn"}, {"name": "housing", "contract": "housing", "foo": 1}]
    )
    assert (
        "mlops-platform:models['housing'].foo is not a known setting (check the spelling; see docs/configuration.md)"
        in problems
    )
    # (the name rule of entry 0 runs once the field errors are fixed: pydantic stops at those first)
    problems = _problems([{"name": "9lives", "contract": "churn"}, {"name": "housing", "contract": "nope"}])
    assert any(p.startswith("mlops-platform:models[0].name = '9lives'") for p in problems), problems
    assert any(p.startswith("mlops-platform:models['housing'].contract = 'nope'") for p in problems), problems


def test_environment_rules_name_the_model() -> None:
    endpoint = {"instanceCount": 1, "strategy": "ALL_AT_ONCE", "captureEnabled": False}
    problems = _problems(
        [CHURN, {"name": "housing", "contract": "housing", "endpoint": endpoint}], environment="prod"
    )
    housing = [p for p in problems if p.startswith("mlops-platform:models['housing'].endpoint.")]
    assert {p.split(" ")[0] for p in housing} >= {
        "mlops-platform:models['housing'].endpoint.instanceCount",
        "mlops-platform:models['housing'].endpoint.strategy",
        "mlops-platform:models['housing'].endpoint.captureEnabled",
    }


def test_catalog_key_on_written_and_parsed_catalogs() -> None:
    written = [CHURN, {"name": "my_dataset"}, {"name": "my-dataset"}, {}, "x"]
    assert catalog_key(written, 0) == "mlops-platform:models['churn']"
    assert catalog_key(written, 1) == "mlops-platform:models[1]"  # same slug as entry 2
    assert catalog_key(written, 2) == "mlops-platform:models[2]"
    assert catalog_key(written, 3) == "mlops-platform:models[3]"
    assert catalog_key(written, 4) == "mlops-platform:models[4]"
    assert catalog_key(written, 9) == "mlops-platform:models[9]"
    assert catalog_key(None, 0) == "mlops-platform:models[0]"
    parsed = [ModelConfig(name="churn", contract="churn"), ModelConfig(name="my_dataset", contract="churn")]
    assert catalog_key(parsed, 1) == "mlops-platform:models['my_dataset']"
