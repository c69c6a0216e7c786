"""ML services config: bad values and bad combinations fail before any resource, naming the key."""

from __future__ import annotations

from typing import Any

import pytest

from platform_contract.limits import MWAA_AIRFLOW_VERSIONS, has_local_storage
from stacks.config import ConfigError, parse_config
from stacks.synth import read_stack_config, stack_config_file

VALID = {"environment": "dev", "region": "us-east-1", "owner": "ml-team", "costCenter": "cc-1"}
ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-prod-churn/3"
DEPLOYERS = {"adminRoleArns": ["arn:aws:iam::123456789012:role/mlops-prod-pulumi-deployer"]}
"""Outside dev the cluster's deployer roles are required (docs/first-deploy.md)."""
PROD_ENDPOINT = {
    "modelPackageArn": ARN,
    "instanceCount": 2,
    "minInstances": 2,
    "maxInstances": 4,
    "strategy": "CANARY",
}


def _catalog(overrides: dict[str, Any]) -> dict[str, Any]:
    """An ``endpoint`` override becomes the endpoint of the catalog's one model."""
    values = dict(overrides)
    if "endpoint" in values:
        values["models"] = [{"name": "churn", "contract": "churn", "endpoint": values.pop("endpoint")}]
    return values


def _problems(**overrides: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config({**VALID, **_catalog(overrides)})
    return str(info.value)


def test_defaults_are_safe() -> None:
    cfg = parse_config(VALID)
    assert cfg.models[0].endpoint.model_package_arn == ""
    assert not cfg.models[0].endpoint.has_model
    assert cfg.models[0].endpoint.capture_enabled
    assert cfg.models[0].endpoint.network_isolation
    assert cfg.models[0].endpoint.encrypt_storage
    assert cfg.airflow.webserver_access_mode == "PRIVATE_ONLY"
    assert cfg.airflow.airflow_version in MWAA_AIRFLOW_VERSIONS
    assert cfg.registry.cross_account_ids == []
    assert cfg.delivery.promotion_targets == []


@pytest.mark.parametrize(
    ("overrides", "key", "rule"),
    [
        (
            {"endpoint": {"canarySizePercent": 80}},
            "mlops-platform:models['churn'].endpoint.canarySizePercent",
            "1-50%",
        ),
        (
            {"endpoint": {"linearStepPercent": 5}},
            "mlops-platform:models['churn'].endpoint.linearStepPercent",
            "10-50%",
        ),
        (
            {"endpoint": {"waitIntervalSeconds": 4000}},
            "mlops-platform:models['churn'].endpoint.waitIntervalSeconds",
            "0 and 3600",
        ),
        (
            {"endpoint": {"maximumExecutionTimeoutSeconds": 60}},
            "mlops-platform:models['churn'].endpoint.maximumExecutionTimeoutSeconds",
            "600 and 14400",
        ),
        (
            {"endpoint": {"strategy": "ROLLING"}},
            "mlops-platform:models['churn'].endpoint.strategy",
            "ALL_AT_ONCE",
        ),
        (
            {"endpoint": {"modelPackageArn": "churn:3"}},
            "mlops-platform:models['churn'].endpoint.modelPackageArn",
            "versioned model package ARN",
        ),
        (
            {"endpoint": {"captureSamplingPercent": 0}},
            "mlops-platform:models['churn'].endpoint.captureSamplingPercent",
            "between 1 and 100",
        ),
        (
            {"endpoint": {"instanceType": "m5.large"}},
            "mlops-platform:models['churn'].endpoint.instanceType",
            "ml.m5.large",
        ),
        (
            {"endpoint": {"serverless": {"memorySizeMb": 1000}}},
            "mlops-platform:models['churn'].endpoint.serverless.memorySizeMb",
            "1024",
        ),
        (
            {"endpoint": {"instanceType": "ml.m5d.large"}},
            "mlops-platform:models['churn'].endpoint.instanceType",
            "local NVMe",
        ),
        (
            {"endpoint": {"instanceType": "ml.g5.xlarge"}},
            "mlops-platform:models['churn'].endpoint.instanceType",
            "encryptStorage",
        ),
        (
            {"endpoint": {"serverless": {}, "networkIsolation": False}},
            "mlops-platform:models['churn'].endpoint.captureEnabled",
            "does not support data capture",
        ),
        (
            {"endpoint": {"serverless": {}, "captureEnabled": False}},
            "mlops-platform:models['churn'].endpoint.networkIsolation",
            "network isolation",
        ),
        (
            {"endpoint": {"imageUri": "x.dkr.ecr/img:1"}},
            "mlops-platform:models['churn'].endpoint",
            "imageUri and modelDataUrl go together",
        ),
        (
            {"endpoint": {"instanceCount": 3, "maxInstances": 2}},
            "mlops-platform:models['churn'].endpoint",
            "minInstances <= instanceCount <= maxInstances",
        ),
        (
            {"endpoint": {"colour": "blue"}},
            "mlops-platform:models['churn'].endpoint.colour",
            "not a known setting",
        ),
        ({"registry": {"crossAccountIds": ["1234"]}}, "mlops-platform:registry.crossAccountIds", "12-digit"),
        (
            {"registry": {"modelPackageGroups": ["churn"]}},  # 0.x: groups come from mlops-platform:models
            "mlops-platform:registry.modelPackageGroups",
            "not a known setting",
        ),
        (
            {"airflow": {"airflowVersion": "2.10.3"}},
            "mlops-platform:airflow.airflowVersion",
            "Airflow 3 version",
        ),
        (
            {"airflow": {"minWorkers": 3, "maxWorkers": 2}},
            "mlops-platform:airflow",
            "minWorkers <= maxWorkers",
        ),
        (
            {"airflow": {"environmentClass": "mw1.micro"}},
            "mlops-platform:airflow",
            "mw1.micro runs exactly 1",
        ),
        ({"airflow": {"dagsPath": "/dags/"}}, "mlops-platform:airflow.dagsPath", "leading or trailing"),
        (
            {"observability": {"alertEmails": ["nobody"]}},
            "mlops-platform:observability.alertEmails",
            "e-mail",
        ),
        (
            {"observability": {"driftShareThreshold": 0.2}},  # 0.x: per model, models[].monitoring
            "mlops-platform:observability.driftShareThreshold",
            "not a known setting",
        ),
        (
            {"delivery": {"source": {"kind": "codeconnections"}}},
            "mlops-platform:delivery.source.connectionArn",
            "CodeConnections connection ARN",
        ),
        (
            {"delivery": {"promotionTargets": [{"stack": "prod", "deployRoleName": "deployer"}]}},
            "mlops-platform:delivery.promotionTargets",
            "manualApproval: true",
        ),
        (
            {"delivery": {"promotionTargets": [{"stack": "dev", "deployRoleName": "arn:aws:iam::1:role/x"}]}},
            "mlops-platform:delivery.promotionTargets.0.deployRoleName",
            "role name (not an ARN)",
        ),
    ],
)
def test_bad_values_name_the_key(overrides: dict[str, Any], key: str, rule: str) -> None:
    message = _problems(**overrides)
    assert key in message
    assert rule in message


def _prod(**endpoint: Any) -> Any:
    return parse_config(
        {
            **VALID,
            "environment": "prod",
            "cluster": DEPLOYERS,
            **_catalog({"endpoint": {**PROD_ENDPOINT, **endpoint}}),
        }
    )


def test_prod_rules() -> None:
    _prod()  # the guarded prod shape passes
    message = _problems(
        environment="prod",
        cluster=DEPLOYERS,
        endpoint={**PROD_ENDPOINT, "instanceCount": 1, "minInstances": 1, "strategy": "ALL_AT_ONCE",
                  "captureEnabled": False},
    )  # fmt: skip
    assert (
        "mlops-platform:models['churn'].endpoint.instanceCount = 1: prod needs at least 2 instances"
        in message
    )
    assert "mlops-platform:models['churn'].endpoint.minInstances must be at least 2 in prod" in message
    assert "mlops-platform:models['churn'].endpoint.strategy must be CANARY or LINEAR in prod" in message
    assert "mlops-platform:models['churn'].endpoint.captureEnabled must be true in prod" in message
    assert "(4 problems)" in message  # every rule is reported at once, one line each
    message = _problems(
        environment="prod",
        endpoint={**PROD_ENDPOINT, "serverless": {}, "captureEnabled": False, "networkIsolation": False,
                  "instanceCount": 1, "minInstances": 1},
    )  # fmt: skip
    assert "serverless must not be set in prod" in message
    message = _problems(
        environment="prod", endpoint=PROD_ENDPOINT, airflow={"webserverAccessMode": "PUBLIC_ONLY"}
    )
    assert "airflow.webserverAccessMode must be PRIVATE_ONLY in prod" in message


def test_dev_may_run_serverless_without_capture() -> None:
    cfg = parse_config(
        {
            **VALID,
            **_catalog(
                {
                    "endpoint": {
                        "serverless": {},
                        "captureEnabled": False,
                        "networkIsolation": False,
                        "autoscaling": False,
                    }
                }
            ),
        }
    )
    assert cfg.models[0].endpoint.serverless is not None


def test_local_storage_detection() -> None:
    assert [
        t
        for t in ("ml.m5d.large", "ml.c5d.xlarge", "ml.g4dn.xlarge", "ml.p4d.24xlarge")
        if has_local_storage(t)
    ] == [
        "ml.m5d.large",
        "ml.c5d.xlarge",
        "ml.g4dn.xlarge",
        "ml.p4d.24xlarge",
    ]
    assert not any(has_local_storage(t) for t in ("ml.m5.large", "ml.c6i.xlarge", "ml.t2.medium"))


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_stack_files_pass_the_environment_rules(stack: str) -> None:
    from stacks.config.load import _decode

    raw = read_stack_config(stack_config_file(stack))
    values = {k.split(":", 1)[1]: _decode(v) for k, v in raw.items() if k.startswith("mlops-platform:")}
    cfg = parse_config({**values, "region": raw["aws:region"]})  # the environment rules run here
    if stack == "prod":
        assert cfg.models[0].endpoint.strategy == "CANARY"
        assert cfg.models[0].endpoint.instance_count >= 2
        # prod deploys only itself, behind a person, importing what staging deployed
        assert [(t.stack, t.manual_approval) for t in cfg.delivery.promotion_targets] == [("prod", True)]
        assert cfg.delivery.promote_from is not None
        assert cfg.delivery.promote_from.environment == "staging"
    if stack == "dev":  # instances with capture on (serverless cannot capture), canary 50%, no scaling
        for model in cfg.models:
            ep = model.endpoint
            assert (ep.serverless, ep.instance_type, ep.instance_count) == (None, "ml.m5.large", 2)
            assert (ep.capture_enabled, ep.strategy, ep.canary_size_percent, ep.autoscaling) == (
                True, "CANARY", 50, False
            )  # fmt: skip


@pytest.mark.parametrize(
    ("source", "key", "rule"),
    [
        ({"kind": "codecommit"}, "delivery.source.repository", "CodeCommit repository name"),
        (
            {"kind": "codecommit", "repository": "a/b"},
            "delivery.source.repository",
            "CodeCommit repository name",
        ),
        (
            {"kind": "s3", "repository": "acme/mlops"},
            "delivery.source.repository",
            "does not apply to kind s3",
        ),
        (
            {"kind": "codecommit", "repository": "mlops", "objectKey": "x.zip"},
            "delivery.source.objectKey",
            "applies to kind s3 only",
        ),
        ({"kind": "svn"}, "delivery.source.kind", "codecommit"),
    ],
)
def test_each_source_kind_is_validated_at_parse_time(source: dict[str, Any], key: str, rule: str) -> None:
    message = _problems(delivery={"source": source})
    assert key in message
    assert rule in message


def test_each_source_kind_parses() -> None:
    for source in (
        {"kind": "s3", "objectKey": "delivery/source.zip"},
        {"kind": "codecommit", "repository": "mlops-platform", "branch": "main"},
        {
            "kind": "codeconnections",
            "connectionArn": "arn:aws:codeconnections:us-east-1:123456789012:connection/0d5b9d5c-1c3b-4c4e-9e62-2f6f3e0e9a11",
            "repository": "acme/mlops",
        },
    ):
        assert parse_config({**VALID, "delivery": {"source": source}}).delivery.source.kind == source["kind"]


UPSTREAM = {
    "environment": "dev",
    "artifactsBucketName": "mlops-dev-artifacts-1a2b",
    "mlKeyArn": "arn:aws:kms:us-east-1:123456789012:key/0d5b9d5c-1c3b-4c4e-9e62-2f6f3e0e9a11",
}


def test_a_stack_promotes_only_to_itself() -> None:
    """Item 8: the promote build runs in this VPC and reaches only this cluster's private API."""
    message = _problems(
        environment="staging",
        cluster={"adminRoleArns": ["arn:aws:iam::123456789012:role/d"]},
        delivery={"promotionTargets": [{"stack": "prod", "deployRoleName": "d", "manualApproval": True}]},
    )
    assert (
        "mlops-platform:delivery.promotionTargets.0.stack = 'prod': a stack's promotion deploys only itself"
        in message
    )
    assert "delivery.promoteFrom" in message


@pytest.mark.parametrize(
    ("promote_from", "targets", "rule"),
    [
        (
            {**UPSTREAM, "environment": "staging"},
            [{"stack": "staging", "deployRoleName": "d"}],
            "imports from another",
        ),
        (UPSTREAM, [], "needs a promotionTargets entry"),
        ({**UPSTREAM, "mlKeyArn": "alias/x"}, [{"stack": "staging", "deployRoleName": "d"}], "KMS key ARN"),
        (
            {**UPSTREAM, "artifactsBucketName": "Bad_Bucket"},
            [{"stack": "staging", "deployRoleName": "d"}],
            "bucket name",
        ),
    ],
)
def test_promote_from_validation(
    promote_from: dict[str, Any], targets: list[dict[str, Any]], rule: str
) -> None:
    message = _problems(
        environment="staging",
        cluster={"adminRoleArns": ["arn:aws:iam::123456789012:role/d"]},
        delivery={"promotionTargets": targets, "promoteFrom": promote_from},
    )
    assert rule in message
