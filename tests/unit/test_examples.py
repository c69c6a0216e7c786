"""Every program in examples/ runs under the shared mock and declares what it says it does."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import pytest

from stacks.synth import SynthResult
from tests.unit.components._helpers import as_list, policy, statements

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.py") if not p.stem.startswith("_"))


def _lake(result: SynthResult) -> None:
    buckets = result.outputs["buckets"]
    assert set(buckets) == {"access-logs", "raw", "curated", "features", "artifacts", "capture", "scratch"}
    assert result.outputs["research_key"].startswith("arn:aws:kms:")
    aliases = {a.inputs["name"] for a in result.of_type("aws:kms/alias:Alias")}
    assert "alias/research/research" in aliases
    for key in result.of_type("aws:kms/key:Key"):
        assert key.inputs["deletionWindowInDays"] == 7
    scratch = next(b for b in result.of_type("aws:s3/bucket:Bucket") if b.name.endswith("-scratch"))
    rules = next(
        r for r in result.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
        if r.inputs["bucket"] == scratch.outputs["bucket"]
    )  # fmt: skip
    assert any((rule.get("expiration") or {}).get("days") == 180 for rule in rules.inputs["rules"])
    assert all(b.inputs.get("forceDestroy") for b in result.of_type("aws:s3/bucket:Bucket"))


def _endpoint(result: SynthResult) -> None:
    [endpoint] = result.of_type("aws:sagemaker/endpoint:Endpoint")
    policy_ = endpoint.inputs["deploymentConfig"]["blueGreenUpdatePolicy"]
    routing = policy_["trafficRoutingConfiguration"]
    assert routing["type"] == "CANARY"
    assert routing["canarySize"] == {"type": "CAPACITY_PERCENT", "value": 20}
    assert routing["waitIntervalInSeconds"] == 600
    assert policy_["maximumExecutionTimeoutInSeconds"] == 3600
    rollback = endpoint.inputs["deploymentConfig"]["autoRollbackConfiguration"]["alarms"]
    assert {a["alarmName"] for a in rollback} == set(result.outputs["alarms"])
    [config] = result.of_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    assert len(config.inputs["shadowProductionVariants"]) == 1
    [target] = result.of_type("aws:appautoscaling/target:Target")
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (3, 8)


def _cluster(result: SynthResult) -> None:
    groups = {g.name: g.inputs for g in result.of_type("aws:eks/nodeGroup:NodeGroup")}
    gpu = next(v for k, v in groups.items() if "gpu" in k)
    assert gpu["amiType"] == "AL2023_x86_64_NVIDIA"
    assert gpu["capacityType"] == "SPOT"
    assert gpu["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
    assert gpu["scalingConfig"]["minSize"] == 0
    [cluster] = result.of_type("aws:eks/cluster:Cluster")
    assert cluster.inputs["vpcConfig"]["publicAccessCidrs"] == ["203.0.113.0/28"]
    node_role = next(r for r in result.of_type("aws:iam/role:Role") if "node" in r.name)
    assert statements(policy(node_role, "assumeRolePolicy"))[0]["Principal"] == {
        "Service": "ec2.amazonaws.com"
    }
    assert as_list(result.outputs["oidc"])


def _workbench(result: SynthResult) -> None:
    [domain] = result.of_type("aws:sagemaker/domain:Domain")
    assert domain.inputs["appNetworkAccessType"] == "VpcOnly"
    idle = domain.inputs["defaultUserSettings"]["jupyterLabAppSettings"]["appLifecycleManagement"][
        "idleSettings"
    ]
    assert idle["idleTimeoutInMinutes"] == 120
    assert set(result.outputs["users"]) == {"ana", "bruno", "chen"}
    assert not result.of_type("aws:sagemaker/mlflowApp:MlflowApp")
    [server] = result.of_type("aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer")
    assert server.inputs["trackingServerSize"] == "Medium"
    assert server.inputs["artifactStoreUri"] == "s3://research-artifacts/tracking/"
    assert server.inputs["weeklyMaintenanceWindowStart"] == "Mon:02:30"
    [group] = result.of_type("aws:sagemaker/featureGroup:FeatureGroup")
    assert group.inputs["recordIdentifierFeatureName"] == "house_id"
    assert group.inputs["onlineStoreConfig"]["ttlDuration"] == {"unit": "Days", "value": 14}
    assert result.outputs["groups"] == {"research-housing-features": "research-housing-features"}


CHECKS: dict[str, Callable[[SynthResult], None]] = {
    "lake_with_extra_buckets": _lake,
    "canary_endpoint": _endpoint,
    "gpu_cluster": _cluster,
    "research_workbench": _workbench,
}


def test_every_example_is_checked() -> None:
    assert set(EXAMPLES) == set(CHECKS)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs_under_the_mock(name: str, pulumi_mock: Callable[..., SynthResult]) -> None:
    module = importlib.import_module(f"examples.{name}")
    assert module.__doc__
    result = pulumi_mock(module.main)
    assert result.resources, f"examples/{name}.py declared nothing"
    CHECKS[name](result)
