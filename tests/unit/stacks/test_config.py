"""Stack config validation: every bad value fails before any resource, naming key, value and rule."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stacks.config import CONFIG_KEYS, ConfigError, PlatformConfig, parse_config
from stacks.synth import read_stack_config

ROOT = Path(__file__).resolve().parents[3]
VALID = {"environment": "dev", "region": "us-east-1", "owner": "ml-team", "costCenter": "cc-1"}


def _problems(**overrides: object) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config({**VALID, **overrides})
    return str(info.value)


def test_minimal_config_gets_secure_defaults() -> None:
    cfg = parse_config(VALID)
    assert cfg.network.az_count == 2
    assert cfg.data_protection.protect_data is True
    assert cfg.data_protection.force_destroy_buckets is False
    assert cfg.tags["environment"] == "dev"
    assert cfg.tags["cost-center"] == "cc-1"


@pytest.mark.parametrize(
    ("overrides", "key", "rule"),
    [
        ({"network": {"cidr": "8.8.0.0/16"}}, "mlops-platform:network.cidr", "private RFC 1918"),
        ({"network": {"cidr": "10.0.0.0/24"}}, "mlops-platform:network.cidr", "between /16 and /20"),
        ({"network": {"cidr": "10.0.0.1/16"}}, "mlops-platform:network.cidr", "IPv4 network"),
        ({"network": {"azCount": 1}}, "mlops-platform:network.azCount", "one AZ has no redundancy"),
        ({"network": {"natStrategy": "none"}}, "mlops-platform:network.natStrategy", "'single' or 'per_az'"),
        (
            {"retention": {"noncurrentVersionDays": -5}},
            "mlops-platform:retention.noncurrentVersionDays",
            "positive number of days",
        ),
        ({"retention": {"logDays": 10}}, "mlops-platform:retention.logDays", "CloudWatch Logs accepts only"),
        (
            {"retention": {"kmsDeletionWindowDays": 3}},
            "mlops-platform:retention.kmsDeletionWindowDays",
            "7 to 30 days",
        ),
        ({"environment": "qa"}, "mlops-platform:environment", "'dev', 'staging' or 'prod'"),
        ({"region": "moon-1"}, "aws:region", "AWS region code"),
        ({"owner": ""}, "mlops-platform:owner", "1-256 characters"),
        ({"network": {"cidrr": "10.0.0.0/16"}}, "mlops-platform:network.cidrr", "not a known setting"),
    ],
)
def test_each_bad_value_is_named(overrides: dict[str, object], key: str, rule: str) -> None:
    message = _problems(**overrides)
    assert key in message
    assert rule in message
    assert "stacks/Pulumi.<stack>.yaml" in message  # tells the user where to fix it


def test_bad_value_is_echoed() -> None:
    assert '"8.8.0.0/16"' in _problems(network={"cidr": "8.8.0.0/16"})
    assert "-5" in _problems(retention={"noncurrentVersionDays": -5})


def test_missing_required_key() -> None:
    with pytest.raises(ConfigError, match=r"mlops-platform:owner is required but not set"):
        parse_config({k: v for k, v in VALID.items() if k != "owner"})


def test_all_problems_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({**VALID, "network": {"cidr": "8.8.0.0/16", "azCount": 1}})
    assert len(info.value.problems) == 2


@pytest.mark.parametrize(
    "overrides",
    [
        {"dataProtection": {"protectData": True, "forceDestroyBuckets": True}},
        {"dataProtection": {"protectData": False}},
    ],
)
def test_prod_refuses_unprotected_data(overrides: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=r"in prod"):
        parse_config({**VALID, "environment": "prod", **overrides})


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_shipped_stack_files_are_valid(stack: str) -> None:
    flat = read_stack_config(ROOT / "stacks" / f"Pulumi.{stack}.yaml")
    raw = {k.split(":", 1)[1]: v for k, v in flat.items() if k.startswith("mlops-platform:")}
    import json

    decoded = {k: json.loads(v) if v.startswith(("{", "[")) else v for k, v in raw.items()}
    cfg = parse_config({**decoded, "region": flat["aws:region"]})
    assert cfg.environment == stack


def test_pulumi_yaml_declares_every_scalar_key_and_lists_every_section() -> None:
    project = (ROOT / "Pulumi.yaml").read_text()
    declared = yaml.safe_load(project)["config"]
    assert yaml.safe_load(project)["stackConfigDir"] == "stacks"
    for name, field in PlatformConfig.model_fields.items():
        alias = field.alias or name
        if name == "region":
            continue
        annotation = str(field.annotation)
        if alias in declared:
            assert declared[alias]["description"], f"{alias} needs a description in Pulumi.yaml"
        else:
            # structured sections are documented in the comment block
            assert f"#   {alias}:" in project, (
                f"{alias} is neither declared nor listed in Pulumi.yaml ({annotation})"
            )
    for alias in declared:
        assert alias in CONFIG_KEYS, f"Pulumi.yaml declares {alias}, which the config model does not read"
