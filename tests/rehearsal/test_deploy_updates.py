"""Updating a deployed stack: failures name the resource, promotion is an UpdateEndpoint with its guardrail."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from rehearsal.deploy import DeployError, GuardrailRollbackError, deploy
from rehearsal.emulator import Emulator

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@dataclass
class FakeBlueGreen:
    """A stand-in for the SageMaker blue/green extension: adds UpdateEndpoint to moto's server.

    It records each request; ``roll_back`` makes the next update end as a guardrail rollback would
    (the old config stays live, the reason says which alarm fired).
    """

    name: str = "fake-blue-green"
    requests: list[dict[str, Any]] = field(default_factory=list)
    roll_back: bool = False
    _installed: bool = False

    def install(self, emulator: Emulator) -> None:
        from moto.core.responses import ActionResult
        from moto.sagemaker.responses import SageMakerResponse

        ext = self

        def update_endpoint(response: Any) -> Any:
            params = json.loads(response.body)
            ext.requests.append(params)
            endpoint = response.sagemaker_backend.endpoints[params["EndpointName"]]
            if ext.roll_back:
                endpoint.failure_reason = "auto-rollback: alarm mlops-dev-churn-errors went to ALARM"
            else:
                endpoint.endpoint_config_name = params["EndpointConfigName"]
                endpoint.failure_reason = None
            return ActionResult({"EndpointArn": endpoint.arn})

        SageMakerResponse.update_endpoint = update_endpoint  # type: ignore[attr-defined]
        self._installed = True

    def close(self) -> None:
        from moto.sagemaker.responses import SageMakerResponse

        if self._installed:
            del SageMakerResponse.update_endpoint  # type: ignore[attr-defined]
            self._installed = False


def test_a_boto3_error_fails_the_deploy_naming_the_resource() -> None:
    with Emulator() as emu:
        emu.client("iam").create_role(RoleName="mlops-dev-sagemaker-execution", AssumeRolePolicyDocument="{}")
        with pytest.raises(
            DeployError,
            match=r"aws:iam/role:Role 'mlops-dev-sagemaker-role'.*EntityAlreadyExists.*mlops-dev-sagemaker-execution",
        ):
            deploy(emu)


def _package(emu: Emulator, group: str, role_arn: str) -> str:
    return emu.client("sagemaker").create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [
                {"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1"}
            ],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )["ModelPackageArn"]


_INSTANCES = {
    "serverless": None,
    "strategy": "CANARY",
    "canarySizePercent": 20,
    "waitIntervalSeconds": 0,
    "captureEnabled": True,
    "autoscaling": False,
}


def _churn_endpoint(arn: str) -> dict[str, Any]:
    """Config overrides serving ``arn`` on the catalog's first model (churn): lists are replaced whole,
    so the override carries the whole ``models`` list of the dev stack."""
    from stacks.synth import read_stack_config, stack_config_file

    models = json.loads(read_stack_config(stack_config_file("dev"))["mlops-platform:models"])
    models[0]["endpoint"] = {**models[0]["endpoint"], **_INSTANCES, "modelPackageArn": arn}
    return {"mlops-platform:models": models}


def test_promotion_updates_the_endpoint_with_its_guardrail_and_a_rollback_fails() -> None:
    fake = FakeBlueGreen()
    with Emulator(extensions=[fake]) as emu:
        first = deploy(emu)
        group, role = first.outputs["modelPackageGroupName"], first.outputs["sagemakerExecutionRoleArn"]
        v1, v2, v3 = (_package(emu, group, role) for _ in range(3))

        created = deploy(
            emu,
            previous=first.state,
            config_overrides=_churn_endpoint(v1),
        )
        endpoint = created.outputs["endpointName"]
        desc = emu.client("sagemaker").describe_endpoint(EndpointName=endpoint)
        assert desc["EndpointConfigName"] == created.outputs["endpointConfigName"]
        create_call = next(c for c in created.calls if c.operation == "create_endpoint")
        assert (
            create_call.params["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"][
                "Type"
            ]
            == "CANARY"
        )
        assert {c.action for c in created.changes if c.type.startswith("aws:sagemaker/endpoint")} == {
            "create"
        }

        promoted = deploy(
            emu,
            previous=created.state,
            config_overrides=_churn_endpoint(v2),
        )
        by_type: dict[str, set[str]] = {}
        for change in promoted.changed():
            by_type.setdefault(change.type.rsplit(":", 1)[1], set()).add(change.action)
        # Replaced (create the new one) and the old one retained in AWS, so a rollback can return to it.
        assert by_type["Model"] == by_type["EndpointConfiguration"] == {"replace", "retain"}
        assert by_type["Endpoint"] == {"update"}
        ops = [c.operation for c in promoted.calls]
        assert ops.index("create_model") < ops.index("create_endpoint_config") < ops.index("update_endpoint")
        assert "delete_endpoint" not in ops
        assert "create_endpoint" not in ops
        assert emu.client("sagemaker").describe_endpoint_config(
            EndpointConfigName=created.outputs["endpointConfigName"]
        )
        request = fake.requests[-1]
        assert request["EndpointName"] == endpoint
        assert (
            request["EndpointConfigName"]
            == promoted.outputs["endpointConfigName"]
            != created.outputs["endpointConfigName"]
        )
        policy = request["DeploymentConfig"]["BlueGreenUpdatePolicy"]
        assert policy["TrafficRoutingConfiguration"]["CanarySize"] == {
            "Type": "CAPACITY_PERCENT",
            "Value": 20,
        }
        assert request["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
        live = emu.client("sagemaker").describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
        assert live == promoted.outputs["endpointConfigName"]

        fake.roll_back = True
        with pytest.raises(
            GuardrailRollbackError, match=rf"endpoint {endpoint}: .*rolled back; {live} is still live.*alarm"
        ) as rolled_back:
            deploy(
                emu,
                previous=promoted.state,
                config_overrides=_churn_endpoint(v3),
            )

        # The error carries what the emulator holds: the endpoint keeps its previous state entry.
        after = rolled_back.value.state
        assert after is not None
        key = next(k for k in after.resources if k.startswith("aws:sagemaker/endpoint:Endpoint::"))
        assert after.resources[key] == promoted.state.resources[key]

        # Removing the endpoint from the config deletes it (its retained models and configs stay).
        removed = deploy(emu, previous=after)
        assert ("delete", "aws:sagemaker/endpoint:Endpoint") in {(c.action, c.type) for c in removed.changes}
        names = [e["EndpointName"] for e in emu.client("sagemaker").list_endpoints()["Endpoints"]]
        assert endpoint not in names
