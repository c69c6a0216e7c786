"""Grants the rehearsal with IAM enforced proved missing, checked on the synthesized dev stack."""

from __future__ import annotations

import json
from typing import Any

import pytest

from platform_contract.naming import delivery_pipeline_name
from stacks.synth import ACCOUNT_ID, SynthResult, synthesize


@pytest.fixture(scope="module")
def dev() -> SynthResult:
    return synthesize("dev")


def _statements(dev: SynthResult, policy_name: str) -> list[dict[str, Any]]:
    found = [r for r in dev.resources if r.type == "aws:iam/rolePolicy:RolePolicy" and r.name == policy_name]
    assert found, f"no role policy {policy_name}"
    statements: list[dict[str, Any]] = []
    for resource in found:
        policy = resource.inputs["policy"]
        document = json.loads(policy) if isinstance(policy, str) else policy
        statements += document["Statement"]
    return statements


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def test_the_mwaa_role_may_start_the_delivery_pipeline_and_nothing_else(dev: SynthResult) -> None:
    # promote_dev (dags/mlops_training.py) -> pipelines.promote.start_deployment starts the delivery
    # pipeline as the MWAA execution role; the rehearsal refused it before the grant existed
    pipeline = next(
        r
        for r in dev.of_type("aws:codepipeline/pipeline:Pipeline")
        if "delivery" in str(r.inputs.get("name"))
    )
    assert pipeline.inputs["name"] == delivery_pipeline_name("mlops-dev")
    grants = [
        s
        for s in _statements(dev, "mlops-dev-platform-policy")
        if "codepipeline:StartPipelineExecution" in _as_list(s["Action"])
    ]
    assert len(grants) == 1
    resources = _as_list(grants[0]["Resource"])
    assert resources == [f"arn:aws:codepipeline:us-east-1:{ACCOUNT_ID}:mlops-dev-delivery"]
