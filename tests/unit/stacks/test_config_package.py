"""The config package: Pulumi-free, no import circle, and every environment rule enforced at parse time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stacks.config import ConfigError, parse_config
from stacks.synth import run_program

ROOT = Path(__file__).resolve().parents[3]
VALID = {"environment": "dev", "region": "us-east-1", "owner": "ml-team", "costCenter": "cc-1"}
ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-prod-churn/3"
PROD_ENDPOINT = {"modelPackageArn": ARN, "instanceCount": 2, "minInstances": 2, "maxInstances": 4,
                 "strategy": "CANARY"}  # fmt: skip

_BLOCKED = """
import json, sys
for name in ("pulumi", "pulumi_aws", "pulumi_kubernetes", "components"):
    sys.modules[name] = None  # any import of them now raises ImportError
from stacks.config import parse_config
from stacks.config.load import raw_values
import yaml
out = {}
for stack in ("dev", "staging", "prod"):
    doc = yaml.safe_load(open(f"stacks/Pulumi.{stack}.yaml"))["config"]
    flat = {k: v if isinstance(v, str) else json.dumps(v) for k, v in doc.items()}
    cfg = parse_config(raw_values(flat))
    ep = cfg.models[0].endpoint
    out[stack] = [cfg.environment, ep.instance_type, ep.serverless is not None, [m.name for m in cfg.models]]
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("pulumi", "pulumi_aws", "components")
                and sys.modules[m] is not None)
print(json.dumps({"stacks": out, "loaded": loaded}))
"""


def test_config_parses_every_shipped_stack_with_pulumi_blocked() -> None:
    result = subprocess.run([sys.executable, "-c", _BLOCKED], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["loaded"] == []
    assert report["stacks"]["dev"] == ["dev", "ml.m5.large", False, ["churn", "housing"]]
    assert report["stacks"]["prod"][0] == "prod"
    assert report["stacks"]["prod"][2] is False


def test_every_config_module_imports_alone() -> None:
    # no import-order trick: each module of the package can be the first one imported
    for module in (
        "base",
        "foundation",
        "compute",
        "ml",
        "contracts",
        "models",
        "platform",
        "load",
        "promote_key",
    ):
        code = f"import stacks.config.{module}"
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, f"stacks.config.{module}: {result.stderr}"


ENVIRONMENT_RULES = [
    ("prod", {"dataProtection": {"forceDestroyBuckets": True}}, "dataProtection.forceDestroyBuckets must be false in prod"),
    ("prod", {"dataProtection": {"protectData": False}}, "dataProtection.protectData must be true in prod"),
    ("prod", {"endpoint": {**PROD_ENDPOINT, "serverless": {}, "captureEnabled": False, "networkIsolation": False}},
     "mlops-platform:models['churn'].endpoint.serverless must not be set in prod"),
    ("prod", {"endpoint": {**PROD_ENDPOINT, "instanceCount": 1, "minInstances": 1, "strategy": "ALL_AT_ONCE"}},
     "mlops-platform:models['churn'].endpoint.instanceCount = 1: prod needs at least 2 instances"),
    ("prod", {"endpoint": {**PROD_ENDPOINT, "minInstances": 1}}, "mlops-platform:models['churn'].endpoint.minInstances must be at least 2 in prod"),
    ("prod", {"endpoint": {**PROD_ENDPOINT, "strategy": "ALL_AT_ONCE"}}, "mlops-platform:models['churn'].endpoint.strategy must be CANARY or LINEAR in prod"),
    ("prod", {"endpoint": {**PROD_ENDPOINT, "captureEnabled": False}}, "mlops-platform:models['churn'].endpoint.captureEnabled must be true in prod"),
    ("prod", {"endpoint": PROD_ENDPOINT, "airflow": {"webserverAccessMode": "PUBLIC_ONLY"}},
     "mlops-platform:airflow.webserverAccessMode must be PRIVATE_ONLY in prod"),
    ("staging", {"endpoint": {"captureEnabled": False}}, "mlops-platform:models['churn'].endpoint.captureEnabled must be true in staging"),
]  # fmt: skip


@pytest.mark.parametrize(("environment", "overrides", "message"), ENVIRONMENT_RULES)
def test_environment_rules_fail_at_parse_time(
    environment: str, overrides: dict[str, Any], message: str
) -> None:
    raw = {
        **VALID,
        "environment": environment,
        **({"endpoint": PROD_ENDPOINT} if environment == "prod" else {}),
    }
    raw.update(overrides)
    if "endpoint" in raw:  # the endpoint of the catalog's one model
        raw["models"] = [{"name": "churn", "contract": "churn", "endpoint": raw.pop("endpoint")}]
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    # each rule is one problem line of its own (serverless also forces captureEnabled off, a second rule)
    assert [p for p in info.value.problems if message in p], info.value.problems


def test_environment_rule_stops_the_program_before_any_resource() -> None:
    from stacks.config import load_config
    from stacks.platform import build

    config = {f"mlops-platform:{k}": v for k, v in VALID.items() if k != "region"}
    config |= {"aws:region": "us-east-1", "mlops-platform:environment": "prod",
               "mlops-platform:models": json.dumps(
                   [{"name": "churn", "contract": "churn", "endpoint": {**PROD_ENDPOINT, "strategy": "ALL_AT_ONCE"}}]
               )}  # fmt: skip
    registered: list[str] = []

    def program() -> dict[str, Any]:
        try:
            build(load_config())
        except ConfigError as exc:
            registered.append(str(exc))
        return {}

    result = run_program(program, config, stack="prod")
    assert "strategy must be CANARY or LINEAR in prod" in registered[0]
    assert result.resources == []  # nothing was declared: the config failed first
