"""CodePipeline executions walk their stages; approvals wait for PutApprovalResult; failures fail."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from rehearsal.codepipeline import ActionRun, CodePipelineExtension
from rehearsal.emulator import Emulator

TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "codepipeline.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


@pytest.fixture
def emu() -> Iterator[tuple[Emulator, CodePipelineExtension]]:
    ext = CodePipelineExtension()
    with Emulator(extensions=[ext]) as emulator:
        emulator.client("iam").create_role(
            RoleName="pipeline",
            AssumeRolePolicyDocument=json.dumps(TRUST),
        )
        s3 = emulator.client("s3")
        s3.create_bucket(Bucket="artifacts")
        s3.put_object(Bucket="artifacts", Key="source.zip", Body=b"zip")
        yield emulator, ext


def _action(name: str, category: str, provider: str, config: dict[str, str] | None = None) -> dict[str, Any]:
    action: dict[str, Any] = {
        "name": name,
        "actionTypeId": {"category": category, "owner": "AWS", "provider": provider, "version": "1"},
        "configuration": config or {},
    }
    if category == "Source":
        action["outputArtifacts"] = [{"name": "source"}]
    elif category == "Build":
        action["inputArtifacts"] = [{"name": "source"}]
    return action


def _create(emu: Emulator, name: str, stages: list[dict[str, Any]], mode: str = "QUEUED") -> None:
    source = _action("Source", "Source", "S3", {"S3Bucket": "artifacts", "S3ObjectKey": "source.zip"})
    emu.client("codepipeline").create_pipeline(
        pipeline={
            "name": name,
            "roleArn": f"arn:aws:iam::{emu.account_id}:role/pipeline",
            "artifactStore": {"type": "S3", "location": "artifacts"},
            "executionMode": mode,
            "pipelineType": "V2",
            "stages": [{"name": "Source", "actions": [source]}, *stages],
        }
    )


def _approval_token(emu: Emulator, pipeline: str, stage: str) -> str:
    cp = emu.client("codepipeline")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for state in cp.get_pipeline_state(name=pipeline)["stageStates"]:
            if state["stageName"] == stage:
                latest = state["actionStates"][0].get("latestExecution", {})
                if latest.get("token"):
                    return str(latest["token"])
        time.sleep(0.05)
    raise AssertionError(f"no approval token for {stage}")


def test_an_approved_execution_runs_every_stage(emu: tuple[Emulator, CodePipelineExtension]) -> None:
    emulator, ext = emu
    deployed: list[ActionRun] = []

    def deploy(run: ActionRun) -> str:
        deployed.append(run)
        return f"deployed with {run.configuration['ProjectName']}"

    ext.set_handler(deploy, provider="CodeBuild")
    _create(
        emulator,
        "promote",
        [
            {"name": "Approve", "actions": [_action("Approve", "Approval", "Manual", {"CustomData": "ok?"})]},
            {
                "name": "Deploy",
                "actions": [_action("Deploy", "Build", "CodeBuild", {"ProjectName": "promote-prod"})],
            },
        ],
    )
    cp = emulator.client("codepipeline")
    execution_id = cp.start_pipeline_execution(name="promote")["pipelineExecutionId"]
    token = _approval_token(emulator, "promote", "Approve")
    assert (
        cp.get_pipeline_execution(pipelineName="promote", pipelineExecutionId=execution_id)[
            "pipelineExecution"
        ]["status"]
        == "InProgress"
    )
    assert deployed == []  # nothing deploys before the approval
    with pytest.raises(ClientError, match="InvalidApprovalTokenException"):
        cp.put_approval_result(
            pipelineName="promote",
            stageName="Approve",
            actionName="Approve",
            result={"summary": "x", "status": "Approved"},
            token="wrong",
        )
    cp.put_approval_result(
        pipelineName="promote",
        stageName="Approve",
        actionName="Approve",
        result={"summary": "looks good", "status": "Approved"},
        token=token,
    )
    assert ext.wait("promote", execution_id) == "Succeeded"
    assert [r.stage for r in deployed] == ["Deploy"]
    states = {s["stageName"]: s for s in cp.get_pipeline_state(name="promote")["stageStates"]}
    assert states["Deploy"]["actionStates"][0]["latestExecution"]["summary"] == "deployed with promote-prod"
    assert states["Source"]["actionStates"][0]["currentRevision"]["revisionId"]
    with pytest.raises(ClientError, match="ApprovalAlreadyCompletedException"):
        cp.put_approval_result(
            pipelineName="promote",
            stageName="Approve",
            actionName="Approve",
            result={"summary": "again", "status": "Approved"},
            token=token,
        )


def test_a_rejected_approval_fails_the_execution(emu: tuple[Emulator, CodePipelineExtension]) -> None:
    emulator, ext = emu
    ext.set_handler(lambda run: pytest.fail("must not deploy"), provider="CodeBuild")
    _create(
        emulator,
        "promote",
        [
            {"name": "Approve", "actions": [_action("Approve", "Approval", "Manual")]},
            {"name": "Deploy", "actions": [_action("Deploy", "Build", "CodeBuild", {"ProjectName": "p"})]},
        ],
    )
    cp = emulator.client("codepipeline")
    execution_id = cp.start_pipeline_execution(name="promote")["pipelineExecutionId"]
    token = _approval_token(emulator, "promote", "Approve")
    cp.put_approval_result(
        pipelineName="promote",
        stageName="Approve",
        actionName="Approve",
        result={"summary": "not this one", "status": "Rejected"},
        token=token,
    )
    assert ext.wait("promote", execution_id) == "Failed"
    execution = cp.get_pipeline_execution(pipelineName="promote", pipelineExecutionId=execution_id)
    assert "rejected: not this one" in execution["pipelineExecution"]["statusSummary"]
    states = {s["stageName"]: s for s in cp.get_pipeline_state(name="promote")["stageStates"]}
    assert states["Approve"]["latestExecution"]["status"] == "Failed"
    assert "latestExecution" not in states["Deploy"]


def test_failing_or_unregistered_actions_fail_the_execution(
    emu: tuple[Emulator, CodePipelineExtension],
) -> None:
    emulator, ext = emu

    def broken(run: ActionRun) -> None:
        raise RuntimeError("pulumi up failed: rollback detected")

    ext.set_handler(broken, pipeline="deliver", stage="Deploy", action="Deploy")
    _create(emulator, "deliver", [{"name": "Deploy", "actions": [_action("Deploy", "Build", "CodeBuild")]}])
    _create(emulator, "unknown", [{"name": "Test", "actions": [_action("Test", "Build", "CodeBuild")]}])
    cp = emulator.client("codepipeline")
    first = cp.start_pipeline_execution(name="deliver")["pipelineExecutionId"]
    second = cp.start_pipeline_execution(name="unknown")["pipelineExecutionId"]
    assert ext.wait("deliver", first) == "Failed"
    assert ext.wait("unknown", second) == "Failed"
    summary = cp.get_pipeline_execution(pipelineName="unknown", pipelineExecutionId=second)[
        "pipelineExecution"
    ]
    assert "register what it does" in summary["statusSummary"]
    state = cp.get_pipeline_state(name="deliver")["stageStates"][1]["actionStates"][0]["latestExecution"]
    assert state["status"] == "Failed"
    assert "rollback detected" in state["errorDetails"]["message"]


def test_a_missing_source_object_fails_and_unknown_pipelines_are_refused(
    emu: tuple[Emulator, CodePipelineExtension],
) -> None:
    emulator, ext = emu
    _create(emulator, "deliver", [{"name": "Approve", "actions": [_action("Approve", "Approval", "Manual")]}])
    emulator.client("s3").delete_object(Bucket="artifacts", Key="source.zip")
    cp = emulator.client("codepipeline")
    execution_id = cp.start_pipeline_execution(name="deliver")["pipelineExecutionId"]
    assert ext.wait("deliver", execution_id) == "Failed"
    with pytest.raises(ClientError, match="PipelineNotFoundException"):
        cp.start_pipeline_execution(name="nope")
    with pytest.raises(ClientError, match="PipelineNotFoundException"):
        cp.get_pipeline_state(name="nope")


def test_creating_a_pipeline_needs_its_role(emu: tuple[Emulator, CodePipelineExtension]) -> None:
    emulator, _ = emu
    with pytest.raises(ClientError, match="role"):
        emulator.client("codepipeline").create_pipeline(
            pipeline={
                "name": "x",
                "roleArn": f"arn:aws:iam::{emulator.account_id}:role/missing",
                "artifactStore": {"type": "S3", "location": "artifacts"},
                "stages": [
                    {
                        "name": "Source",
                        "actions": [_action("S", "Source", "S3", {"S3Bucket": "a", "S3ObjectKey": "k"})],
                    },
                    {"name": "Build", "actions": [_action("B", "Build", "CodeBuild")]},
                ],
            }
        )


def test_a_newer_execution_supersedes_one_waiting_for_approval(
    emu: tuple[Emulator, CodePipelineExtension],
) -> None:
    emulator, ext = emu
    _create(
        emulator,
        "deliver",
        [{"name": "Approve", "actions": [_action("Approve", "Approval", "Manual")]}],
        "SUPERSEDED",
    )
    cp = emulator.client("codepipeline")
    older = cp.start_pipeline_execution(name="deliver")["pipelineExecutionId"]
    _approval_token(emulator, "deliver", "Approve")
    newer = cp.start_pipeline_execution(name="deliver")["pipelineExecutionId"]
    assert ext.wait("deliver", older) == "Superseded"
    token = _approval_token(emulator, "deliver", "Approve")
    cp.put_approval_result(
        pipelineName="deliver",
        stageName="Approve",
        actionName="Approve",
        result={"summary": "ok", "status": "Approved"},
        token=token,
    )
    assert ext.wait("deliver", newer) == "Succeeded"
