"""Hosting as the model's execution role: artifact download, container credentials, rollback alarms.

On AWS SageMaker downloads ``ModelDataUrl`` with the model's ``ExecutionRoleArn``, hands that role's
session to a container that is not network-isolated, and reads the guardrail's rollback alarms with it
(``cloudwatch:DescribeAlarms``). With IAM enforced, a role lacking a grant makes the endpoint fail (or the
update roll back) with the denial named.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rehearsal.alarms import AlarmEvaluator
from rehearsal.emulator import Emulator
from rehearsal.endpoints import SageMakerHosting
from rehearsal.iam import Authorizer
from tests.rehearsal.endpoint_fixtures import IMAGE, model_tarball

pytestmark = pytest.mark.slow

SCALE = 60.0
BUCKET = "artifacts"
KEY = "models/hosted/model.tar.gz"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)
READ_MODEL = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/models/*"}
READ_ALARMS = {
    "Effect": "Allow",
    "Action": "cloudwatch:DescribeAlarms",
    "Resource": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:guard-*",
}


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Emulator, Authorizer, SageMakerHosting]]:
    tmp = tmp_path_factory.mktemp("iam-hosting")
    authorizer = Authorizer()
    hosting = SageMakerHosting(time_scale=SCALE, seed=3)
    with Emulator(authorizer=authorizer, extensions=[AlarmEvaluator(time_scale=SCALE), hosting]) as emu:
        s3 = emu.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key=KEY, Body=model_tarball(Path(tmp)))
        _role(emu, "model-role", [READ_MODEL, READ_ALARMS])
        _role(emu, "cannot-read-model", [READ_ALARMS])
        _role(emu, "cannot-read-alarms", [READ_MODEL])
        yield emu, authorizer, hosting


def _role(emu: Emulator, name: str, statements: list[dict[str, Any]]) -> str:
    iam = emu.client("iam")
    arn = str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"])
    iam.put_role_policy(
        RoleName=name,
        PolicyName="hosting",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )
    return arn


def _endpoint(emu: Emulator, name: str, role: str, *, isolated: bool = True, create: bool = True) -> str:
    """Model ``name`` running as ``role``, its config ``name``, and (``create``) endpoint ``name``."""
    sm = emu.client("sagemaker")
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=f"arn:aws:iam::123456789012:role/{role}",
        EnableNetworkIsolation=isolated,
        PrimaryContainer={
            "Image": IMAGE,
            "ModelDataUrl": f"s3://{BUCKET}/{KEY}",
            "Environment": {
                "SAGEMAKER_PROGRAM": "inference.py",
                "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
            },
        },
    )
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 2,
            }
        ],
    )
    if create:
        sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    return name


def _wait(emu: Emulator, hosting: SageMakerHosting, name: str) -> dict[str, Any]:
    hosting.wait_for_status(name, timeout_s=120)
    return emu.client("sagemaker").describe_endpoint(EndpointName=name)


def _environ(hosting: SageMakerHosting, endpoint: str) -> dict[str, str]:
    fleet = hosting.endpoints[endpoint].blue
    assert fleet is not None
    process = next(iter(fleet.servers.values())).process
    assert process is not None
    raw = Path(f"/proc/{process.pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


def test_a_model_whose_role_cannot_read_its_artifact_never_becomes_in_service(
    stack: tuple[Emulator, Authorizer, SageMakerHosting],
) -> None:
    emu, _, hosting = stack
    described = _wait(emu, hosting, _endpoint(emu, "unreadable", "cannot-read-model"))
    assert described["EndpointStatus"] == "Failed"
    reason = described["FailureReason"]
    assert "s3:GetObject" in reason
    assert f"arn:aws:s3:::{BUCKET}/{KEY}" in reason
    assert "cannot-read-model" in reason


def test_the_container_gets_the_model_roles_session_unless_network_isolated(
    stack: tuple[Emulator, Authorizer, SageMakerHosting],
) -> None:
    emu, authorizer, hosting = stack
    open_model = _endpoint(emu, "open-model", "model-role", isolated=False)
    isolated = _endpoint(emu, "isolated-model", "model-role", isolated=True)
    assert _wait(emu, hosting, open_model)["EndpointStatus"] == "InService"
    assert _wait(emu, hosting, isolated)["EndpointStatus"] == "InService"

    env = _environ(hosting, open_model)
    session = authorizer.session_for(env["AWS_ACCESS_KEY_ID"], env["AWS_SESSION_TOKEN"])
    assert session is not None
    assert session.role_arn.endswith(":role/model-role")
    assert env["AWS_ENDPOINT_URL"] == emu.endpoint_url
    assert "AWS_ACCESS_KEY_ID" not in _environ(hosting, isolated)
    # the download was authorized as the model's role
    assert any(
        c.role_arn.endswith(":role/model-role") and c.action == "s3:GetObject" for c in authorizer.authorized
    )


def _guarded_update(emu: Emulator, hosting: SageMakerHosting, endpoint: str, config: str) -> dict[str, Any]:
    emu.client("sagemaker").update_endpoint(
        EndpointName=endpoint,
        EndpointConfigName=config,
        DeploymentConfig={
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {
                    "Type": "CANARY",
                    "WaitIntervalInSeconds": 60,
                    "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50},
                },
                "TerminationWaitInSeconds": 0,
                "MaximumExecutionTimeoutInSeconds": 1800,
            },
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "guard-5xx"}]},
        },
    )
    deadline = time.monotonic() + 120
    while True:
        described = emu.client("sagemaker").describe_endpoint(EndpointName=endpoint)
        if described["EndpointStatus"] != "Updating":
            return described
        assert time.monotonic() < deadline, "the update did not finish"
        time.sleep(0.2)


def test_rollback_alarms_are_read_as_the_models_role_and_a_denial_fails_the_update(
    stack: tuple[Emulator, Authorizer, SageMakerHosting],
) -> None:
    emu, authorizer, hosting = stack
    emu.client("cloudwatch").put_metric_alarm(
        AlarmName="guard-5xx",
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Dimensions=[
            {"Name": "EndpointName", "Value": "guarded"},
            {"Name": "VariantName", "Value": "AllTraffic"},
        ],
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="notBreaching",
    )
    assert _wait(emu, hosting, _endpoint(emu, "guarded", "model-role"))["EndpointStatus"] == "InService"
    _endpoint(emu, "guarded-no-alarms", "cannot-read-alarms", create=False)
    _endpoint(emu, "guarded-v2", "model-role", create=False)

    denied = _guarded_update(emu, hosting, "guarded", "guarded-no-alarms")
    assert denied["EndpointStatus"] == "InService"
    assert denied["EndpointConfigName"] == "guarded"  # rolled back: the old config serves
    assert "cloudwatch:DescribeAlarms" in denied["FailureReason"]
    assert "alarm:guard-5xx" in denied["FailureReason"]
    assert "cannot-read-alarms" in denied["FailureReason"]

    allowed = _guarded_update(emu, hosting, "guarded", "guarded-v2")
    assert allowed["EndpointConfigName"] == "guarded-v2"
    assert any(
        c.role_arn.endswith(":role/model-role")
        and c.action == "cloudwatch:DescribeAlarms"
        and c.resource.endswith(":alarm:guard-5xx")
        for c in authorizer.authorized
    )
