"""Config sections cluster / spark / analytics: defaults are safe, bad values name key, value and rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stacks.config import ConfigError, parse_config
from stacks.config.compute import ClusterConfig, NodeGroupConfig
from stacks.synth import read_stack_config

ROOT = Path(__file__).resolve().parents[3]
VALID = {"environment": "dev", "region": "us-east-1", "owner": "ml-team", "costCenter": "cc-1"}


def _problems(**overrides: object) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config({**VALID, **overrides})
    return str(info.value)


def test_defaults_are_private_and_complete() -> None:
    cfg = parse_config(VALID)
    assert cfg.cluster.endpoint_public_access is False
    assert cfg.cluster.public_access_cidrs == []
    assert cfg.cluster.node_groups[0].name == "system"
    assert cfg.spark.job_classes[0].namespace == "spark-features"
    assert cfg.spark.studio is True
    assert cfg.analytics.bytes_scanned_cutoff_mb == 1024
    assert [(m.name, m.contract) for m in cfg.models] == [("churn", "churn")]  # tables: from the contract


def test_section_models_import_first_without_a_cycle() -> None:
    # no import-order trick: a section module imported on its own, in a fresh interpreter
    import importlib
    import subprocess
    import sys

    code = "import stacks.config.compute as c; print(c.ClusterConfig().kubernetes_version)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1.35"
    assert (
        importlib.import_module("stacks.config").PlatformConfig.model_fields["cluster"].annotation
        is ClusterConfig
    )


@pytest.mark.parametrize(
    ("overrides", "key", "rule"),
    [
        (
            {"cluster": {"endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]}},
            "mlops-platform:cluster.publicAccessCidrs",
            "opens the Kubernetes API to the whole internet",
        ),
        (
            {"cluster": {"endpointPublicAccess": True}},
            "mlops-platform:cluster.publicAccessCidrs",
            "endpointPublicAccess is true but no CIDRs are listed",
        ),
        (
            {"cluster": {"publicAccessCidrs": ["198.51.100.0/24"]}},
            "mlops-platform:cluster.publicAccessCidrs",
            "endpointPublicAccess is false",
        ),
        (
            {"cluster": {"endpointPublicAccess": True, "publicAccessCidrs": ["10.0.0.0/8"]}},
            "mlops-platform:cluster.publicAccessCidrs",
            "not a public range",
        ),
        (
            {"cluster": {"endpointPublicAccess": True, "publicAccessCidrs": ["198.51.100.7/24"]}},
            "mlops-platform:cluster.publicAccessCidrs",
            "not an IPv4 network",
        ),
        (
            {"cluster": {"kubernetesVersion": "1.34"}},
            "mlops-platform:cluster.kubernetesVersion",
            "older than 1.35",
        ),
        ({"cluster": {"kubernetesVersion": 1.3}}, "mlops-platform:cluster.kubernetesVersion", "valid string"),
        (
            {"cluster": {"adminRoleArns": ["admin"]}},
            "mlops-platform:cluster.adminRoleArns",
            "not IAM role ARNs",
        ),
        ({"cluster": {"nodeGroups": []}}, "mlops-platform:cluster.nodeGroups", "at least one node group"),
        (
            {"cluster": {"nodeGroups": [{"name": "a", "minSize": 3, "desiredSize": 2}]}},
            "mlops-platform:cluster.nodeGroups.0",
            "minSize <= desiredSize <= maxSize",
        ),
        (
            {"cluster": {"nodeGroups": [{"name": "a", "capacityType": "spot"}]}},
            "mlops-platform:cluster.nodeGroups.0.capacityType",
            "'ON_DEMAND' or 'SPOT'",
        ),
        (
            {"cluster": {"nodeGroups": [{"name": "a", "instanceTypes": []}]}},
            "mlops-platform:cluster.nodeGroups.0.instanceTypes",
            "at least one EC2 instance type",
        ),
        (
            {"cluster": {"nodeGroups": [{"name": "a", "diskSizeGib": 8}]}},
            "mlops-platform:cluster.nodeGroups.0.diskSizeGib",
            "between 20 and 2048",
        ),
        (
            {"cluster": {"nodeGroups": [{"name": "a"}, {"name": "a"}]}},
            "mlops-platform:cluster.nodeGroups",
            "must be unique",
        ),
        (
            {"spark": {"jobClasses": [{"name": "x", "namespace": "kube-system"}]}},
            "mlops-platform:spark.jobClasses.0.namespace",
            "system namespace",
        ),
        (
            {"spark": {"jobClasses": [{"name": "x", "namespace": "Bad_NS"}]}},
            "mlops-platform:spark.jobClasses.0.namespace",
            "DNS label",
        ),
        (
            {
                "spark": {
                    "jobClasses": [
                        {"name": "x", "namespace": "x", "read": [{"bucket": "raw", "prefix": "*"}]}
                    ]
                }
            },
            "mlops-platform:spark.jobClasses.0.read.0.prefix",
            "ending in '/'",
        ),
        (
            {
                "spark": {
                    "jobClasses": [
                        {"name": "x", "namespace": "x", "write": [{"bucket": "logs", "prefix": "a/"}]}
                    ]
                }
            },
            "mlops-platform:spark.jobClasses.0.write.0.bucket",
            "'raw', 'curated', 'features', 'artifacts' or 'capture'",
        ),
        ({"spark": {"jobClasses": []}}, "mlops-platform:spark.jobClasses", "at least one job class"),
        (
            {"analytics": {"bytesScannedCutoffMb": 5}},
            "mlops-platform:analytics.bytesScannedCutoffMb",
            "10 MB",
        ),
        # 0.x: the copied contract schema and the one capture prefix moved to the model catalog.
        (
            {"analytics": {"captureS3Prefix": "datacapture"}},
            "mlops-platform:analytics.captureS3Prefix",
            "not a known setting",
        ),
        (
            {"analytics": {"dataset": {"name": "churn", "columns": [{"name": "a", "type": "string"}]}}},
            "mlops-platform:analytics.dataset",
            "not a known setting",
        ),
        (
            {"cluster": {"endpointPublic": True}},
            "mlops-platform:cluster.endpointPublic",
            "not a known setting",
        ),
    ],
)
def test_each_bad_value_is_named(overrides: dict[str, object], key: str, rule: str) -> None:
    message = _problems(**overrides)
    assert key in message
    assert rule in message


def test_public_endpoint_with_named_cidrs_is_accepted() -> None:
    cfg = parse_config(
        {**VALID, "cluster": {"endpointPublicAccess": True, "publicAccessCidrs": ["198.51.100.0/24"]}}
    )
    assert cfg.cluster.public_access_cidrs == ["198.51.100.0/24"]


def test_stack_files_parse_and_dev_is_smallest() -> None:
    from stacks.config.load import _decode

    def load(stack: str):
        flat = read_stack_config(ROOT / "stacks" / f"Pulumi.{stack}.yaml")
        raw = {k.split(":", 1)[1]: _decode(v) for k, v in flat.items() if k.startswith("mlops-platform:")}
        raw["region"] = flat["aws:region"]
        return parse_config(raw)

    def capacity(groups: list[NodeGroupConfig]) -> int:
        return sum(g.max_size for g in groups)

    dev, staging, prod = load("dev"), load("staging"), load("prod")
    assert (
        capacity(dev.cluster.node_groups)
        < capacity(staging.cluster.node_groups)
        < capacity(prod.cluster.node_groups)
    )
    for cfg in (dev, staging, prod):
        assert cfg.cluster.endpoint_public_access is False
        assert [(m.name, m.contract) for m in cfg.models] == [("churn", "churn"), ("housing", "housing")]
        assert cfg.contract_schema(cfg.models[1]).name == "housing"
    assert dev.analytics.bytes_scanned_cutoff_mb <= prod.analytics.bytes_scanned_cutoff_mb


def test_node_groups_default_to_imds_hop_limit_one_and_accept_two() -> None:
    cfg = parse_config(
        {**VALID, "cluster": {"nodeGroups": [{"name": "system"}, {"name": "legacy", "imdsHopLimit": 2}]}}
    )
    assert [g.to_spec().imds_hop_limit for g in cfg.cluster.node_groups] == [1, 2]
    assert "imdsHopLimit" in _problems(cluster={"nodeGroups": [{"name": "system", "imdsHopLimit": 3}]})


def test_bootstrap_opens_the_public_endpoint_to_the_listed_cidrs_only() -> None:
    admin = "arn:aws:iam::123456789012:role/mlops-dev-pulumi-deployer"
    cfg = parse_config(
        {
            **VALID,
            "cluster": {
                "bootstrap": True,
                "publicAccessCidrs": ["198.51.100.7/32"],
                "adminRoleArns": [admin],
            },
        }
    )
    assert cfg.cluster.public_endpoint is True
    assert cfg.cluster.endpoint_public_access is False  # the steady state stays private
    closed = parse_config({**VALID, "cluster": {"adminRoleArns": [admin]}})
    assert closed.cluster.public_endpoint is False


@pytest.mark.parametrize(
    ("cluster", "rule"),
    [
        (
            {"bootstrap": True, "adminRoleArns": ["arn:aws:iam::123456789012:role/d"]},
            "bootstrap is true but no CIDRs",
        ),
        ({"bootstrap": True, "publicAccessCidrs": ["198.51.100.7/32"]}, "adminRoleArns is empty"),
        (
            {
                "bootstrap": True,
                "publicAccessCidrs": ["0.0.0.0/0"],
                "adminRoleArns": ["arn:aws:iam::123456789012:role/d"],
            },
            "whole internet",
        ),
    ],
)
def test_bootstrap_validation_names_what_is_missing(cluster: dict[str, object], rule: str) -> None:
    problems = _problems(cluster=cluster)
    assert "mlops-platform:cluster" in problems
    assert rule in problems


def test_listed_deployer_roles_replace_the_automatic_creator_entry() -> None:
    admin = "arn:aws:iam::123456789012:role/mlops-dev-pulumi-deployer"
    common = {"subnet_ids": ["a", "b"], "secrets_key_arn": "k", "log_key_arn": "l", "region": "us-east-1"}
    common |= {"log_retention_days": 30, "deletion_protection": False, "tags": {}}
    listed = parse_config({**VALID, "cluster": {"adminRoleArns": [admin]}}).cluster.to_args(**common)
    assert listed.bootstrap_creator_admin is False
    assert parse_config(VALID).cluster.to_args(**common).bootstrap_creator_admin is True


@pytest.mark.parametrize("environment", ["staging", "prod"])
def test_guarded_environments_must_name_their_deployer_roles(environment: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse_config({**VALID, "environment": environment})
    message = str(excinfo.value)
    assert f"mlops-platform:cluster.adminRoleArns is empty in {environment}" in message
    assert f"role/mlops-{environment}-pulumi-deployer" in message
    assert "docs/first-deploy.md" in message


def test_dev_may_leave_the_deployer_roles_to_the_cluster_creator() -> None:
    config = parse_config(VALID)
    assert config.cluster.admin_role_arns == []
    assert config.cluster.to_args(
        subnet_ids=["s1", "s2"],
        secrets_key_arn="k",
        log_key_arn="k",
        region="us-east-1",
        log_retention_days=7,
        deletion_protection=False,
        tags={},
    ).bootstrap_creator_admin


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_each_stack_file_states_its_deployer_roles(environment: str) -> None:
    from stacks.synth import stack_config_file

    cluster = json.loads(read_stack_config(stack_config_file(environment))["mlops-platform:cluster"])
    assert "adminRoleArns" in cluster
    if environment != "dev":
        assert cluster["adminRoleArns"] == [
            f"arn:aws:iam::123456789012:role/mlops-{environment}-pulumi-deployer"
        ]


def test_promotion_needs_the_api_client_security_group() -> None:
    with pytest.raises(ConfigError, match=r"cluster\.apiClientSecurityGroup must be true"):
        parse_config({**VALID, "delivery": {"promotionTargets": [{"stack": "dev", "deployRoleName": "d"}]}})
    parse_config(
        {
            **VALID,
            "cluster": {"apiClientSecurityGroup": True},
            "delivery": {"promotionTargets": [{"stack": "dev", "deployRoleName": "d"}]},
        }
    )
