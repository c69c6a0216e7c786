"""Promotions through the delivery's promotion pipeline, each step as the role that runs it on AWS.

On AWS an approval starts the promotion pipeline (EventBridge, as the rule's role); its deploy action is
the CodeBuild project ``promote-<stack>`` (``delivery/buildspecs/promote.yml``): CodeBuild assumes the
project's service role (trust: ``codebuild.amazonaws.com`` for this account and project), the build plans
as that role (``python -m pipelines.promotion plan``), assumes the stack's deploy role
(``DEPLOY_ROLE_ARN``) and runs ``pulumi up`` with it, then marks what it deployed (``promotion mark``).

:func:`promote` does the same against the emulator: it starts the pipeline as the EventBridge role, and
:class:`CodePipelineExtension` runs the deploy action with a CodeBuild handler that gets the project
role's session through the authorizer's trust check, plans and marks with it, calls
``sts:AssumeRole`` for the deploy role over the API (the build role's grant and the deploy role's trust
both decide) and runs the stack deploy (:func:`rehearsal.deploy.deploy`) with that session, so every
call of a promotion's ``pulumi up`` is authorized as the deploy role.

The deploy role exists before the platform (docs/first-deploy.md, step 2); the rehearsal's account
creates it as :func:`ensure_deploy_role` describes: trusted by the promote build's role, allowed what a
promotion's ``pulumi up`` calls (:func:`promotion_deploy_statements`), nothing more. The first ``pulumi
up`` (the lifecycle's ``deploy`` stage) runs as the administrator (root keys), as on a fresh account.
"""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import threading
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rehearsal.iam.identities import Credentials, authorizer_of, client_as

if TYPE_CHECKING:
    from rehearsal.codepipeline import ActionRun
    from rehearsal.deploy import DeployResult, DeployState
    from rehearsal.emulator import Emulator

CODEBUILD_SERVICE = "codebuild.amazonaws.com"
EVENTS_SERVICE = "events.amazonaws.com"
DEPLOY_POLICY_NAME = "promotion-deploy"
PIPELINE_TIMEOUT_S = 1800.0
"""Guard against a hung execution (the deploy inside waits out blue/green updates)."""
REPO = Path(__file__).resolve().parents[1]


class PromotionError(RuntimeError):
    """The promotion pipeline could not run, or its execution failed."""


@dataclass
class PromotionRun:
    """What one promotion did: the execution, the roles, the build's plan, the deploy's result."""

    pipeline: str
    execution_id: str = ""
    status: str = ""
    build_role_arn: str = ""
    deploy_role_arn: str = ""
    events_role_arn: str = ""
    plan: dict[str, str] = field(default_factory=dict)
    marked: list[str] = field(default_factory=list)
    result: DeployResult | None = None
    error: BaseException | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready evidence (without the deploy result)."""
        return {
            "pipeline": self.pipeline,
            "execution_id": self.execution_id,
            "status": self.status,
            "build_role": self.build_role_arn,
            "deploy_role": self.deploy_role_arn,
            "started_by": self.events_role_arn,
            "plan": self.plan,
            "marked_deployed": self.marked,
        }


def promotion_deploy_statements(
    prefix: str, region: str, account: str, passable_role_arns: list[str], vpc_ids: list[str]
) -> list[dict[str, Any]]:
    """What a promotion's ``pulumi up`` calls: a model's SageMaker model, endpoint config and endpoint
    (create, blue/green update, the old ones' deletes), the model's alarms, dashboard and endpoint log
    group (declared with its endpoint), and passing the SageMaker execution role to SageMaker. Names are
    the platform's (``<prefix>-*``); what the rehearsal's promotions call is in docs/iam-roles.md."""
    sm = f"arn:aws:sagemaker:{region}:{account}:"
    return [
        {
            "Sid": "ModelsAndEndpoints",
            "Effect": "Allow",
            "Action": [
                "sagemaker:CreateModel",
                "sagemaker:DescribeModel",
                "sagemaker:DeleteModel",
                "sagemaker:CreateEndpointConfig",
                "sagemaker:DescribeEndpointConfig",
                "sagemaker:DeleteEndpointConfig",
                "sagemaker:CreateEndpoint",
                "sagemaker:UpdateEndpoint",
                "sagemaker:DescribeEndpoint",
                "sagemaker:AddTags",
            ],
            "Resource": [
                f"{sm}model/{prefix}-*",
                f"{sm}endpoint-config/{prefix}-*",
                f"{sm}endpoint/{prefix}-*",
            ],
        },
        {
            # the provider reads an alarm back after writing it (DescribeAlarms)
            "Sid": "ModelAlarms",
            "Effect": "Allow",
            "Action": ["cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"],
            "Resource": f"arn:aws:cloudwatch:{region}:{account}:alarm:{prefix}-*",
        },
        {
            "Sid": "ModelDashboards",
            "Effect": "Allow",
            "Action": ["cloudwatch:PutDashboard", "cloudwatch:DeleteDashboards"],
            "Resource": f"arn:aws:cloudwatch::{account}:dashboard/{prefix}-*",
        },
        {
            # the endpoint's log group, pre-created with the logs key and retention (SageMaker would create
            # it without either)
            "Sid": "EndpointLogGroups",
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogGroup",
                "logs:PutRetentionPolicy",
                "logs:DeleteRetentionPolicy",
                "logs:AssociateKmsKey",
                "logs:DeleteLogGroup",
            ],
            "Resource": f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/{prefix}-*",
        },
        {
            # the model's endpoint security group (its ID is unknown until created: security-group/*)
            "Sid": "EndpointSecurityGroup",
            "Effect": "Allow",
            "Action": [
                "ec2:CreateSecurityGroup",
                "ec2:DeleteSecurityGroup",
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:AuthorizeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupEgress",
            ],
            "Resource": [
                f"arn:aws:ec2:{region}:{account}:security-group/*",
                *(f"arn:aws:ec2:{region}:{account}:vpc/{v}" for v in vpc_ids),
            ],
        },
        {
            "Sid": "TagNewSecurityGroups",
            "Effect": "Allow",
            "Action": "ec2:CreateTags",
            "Resource": f"arn:aws:ec2:{region}:{account}:security-group/*",
            "Condition": {"StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"}},
        },
        {
            "Sid": "PassSageMakerRole",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": passable_role_arns,
            "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        },
    ]


def ensure_deploy_role(
    emulator: Emulator, deploy_role_arn: str, build_role_arn: str, statements: list[dict[str, Any]]
) -> None:
    """Create (or update) the deploy role as the account's administrator: trusted by the promote build's
    role only, with ``statements`` as its one inline policy."""
    iam = emulator.client("iam")
    name = deploy_role_arn.rsplit("/", 1)[-1]
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": build_role_arn}, "Action": "sts:AssumeRole"}],
    }
    try:
        iam.get_role(RoleName=name)
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
    except iam.exceptions.NoSuchEntityException:
        iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(trust),
            Description="Runs pulumi up for the promotion build (docs/first-deploy.md, the deploy role)",
        )
    iam.put_role_policy(
        RoleName=name,
        PolicyName=DEPLOY_POLICY_NAME,
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )


def _revision() -> str:
    try:
        found = subprocess.run(  # noqa: S603 - fixed git invocation
            ["git", "-C", str(REPO), "rev-parse", "HEAD"],  # noqa: S607
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return found.stdout.strip() or "unknown"


def ensure_source(emulator: Emulator, declaration: Mapping[str, Any]) -> None:
    """Upload the pipeline's S3 source object if missing (as the platform team does before the first
    release): a zip naming the repository revision the rehearsal deploys from."""
    s3 = emulator.client("s3")
    for stage in declaration.get("stages", []):
        for action in stage.get("actions", []):
            type_id = action.get("actionTypeId", {})
            if type_id.get("category") != "Source" or type_id.get("provider") != "S3":
                continue
            bucket = action["configuration"]["S3Bucket"]
            key = action["configuration"]["S3ObjectKey"]
            try:
                s3.head_object(Bucket=bucket, Key=key)
                continue
            except s3.exceptions.ClientError:
                pass
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as archive:
                archive.writestr("REVISION", _revision() + "\n")
            s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())


def _state_resource(state: DeployState, type_token: str, **match: Any) -> Any:
    for resource in state.resources.values():
        if resource.type != type_token:
            continue
        values = {**resource.inputs, **resource.outputs}
        if all(values.get(k) == v for k, v in match.items()):
            return resource
    return None


def _build_env(project: Mapping[str, Any]) -> dict[str, str]:
    variables = project.get("environment", {}).get("environmentVariables") or []
    return {str(v["name"]): str(v.get("value", "")) for v in variables}


class Promoter:
    """Runs promotions of one deployed stack through its promotion pipeline (one at a time)."""

    def __init__(self, emulator: Emulator, stack: str) -> None:
        self.emulator = emulator
        self.stack = stack
        self._lock = threading.Lock()

    def _find(self, outputs: Mapping[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """The pipeline, its declaration and the promote project of this stack."""
        pipeline = outputs.get("promotionPipelineName")
        if not pipeline:
            raise PromotionError(
                f"stack {self.stack} has no promotion pipeline (stack output promotionPipelineName is empty): "
                "set delivery.enabled and delivery.promotionTargets in its stack file"
            )
        declaration = self.emulator.client("codepipeline").get_pipeline(name=pipeline)["pipeline"]
        codebuild = self.emulator.client("codebuild")
        for stage in declaration["stages"]:
            for action in stage["actions"]:
                if action["actionTypeId"].get("provider") != "CodeBuild":
                    continue
                name = action["configuration"]["ProjectName"]
                projects = codebuild.batch_get_projects(names=[name])["projects"]
                if projects and _build_env(projects[0]).get("TARGET_STACK") == self.stack:
                    return str(pipeline), declaration, projects[0]
        raise PromotionError(
            f"promotion pipeline {pipeline} has no CodeBuild action deploying stack {self.stack}"
        )

    def promote(
        self,
        previous: DeployResult,
        config_overrides: Mapping[str, Any],
        *,
        packages: list[str],
        out_dir: Path | None = None,
        timeout_s: float = PIPELINE_TIMEOUT_S,
    ) -> PromotionRun:
        """Start the promotion pipeline as the approval rule's role and wait for it; its CodeBuild action
        deploys ``config_overrides`` as the deploy role. ``packages``: the package ARNs this promotion
        deploys (marked deployed after a successful update).

        Raises the deploy's own error (:class:`rehearsal.deploy.DeployError`,
        :class:`rehearsal.deploy.GuardrailRollbackError`) when the update failed, and
        :class:`PromotionError` when the execution failed elsewhere.
        """
        from rehearsal.codepipeline import CodePipelineExtension

        with self._lock:
            pipeline, declaration, project = self._find(previous.outputs)
            extension = self.emulator.extension("codepipeline")
            assert isinstance(extension, CodePipelineExtension)
            env = _build_env(project)
            run = PromotionRun(
                pipeline, build_role_arn=str(project["serviceRole"]), deploy_role_arn=env["DEPLOY_ROLE_ARN"]
            )
            region, account = self.emulator.region, self.emulator.account_id
            prefix = pipeline.removesuffix("-promotion")
            passable = [
                str(r.outputs["arn"])
                for r in previous.state.resources.values()
                if r.type == "aws:iam/role:Role"
                and "sagemaker.amazonaws.com" in str(r.inputs.get("assumeRolePolicy"))
            ]
            ensure_deploy_role(
                self.emulator,
                run.deploy_role_arn,
                run.build_role_arn,
                promotion_deploy_statements(
                    prefix,
                    region,
                    account,
                    passable,
                    [str(r.id) for r in previous.state.resources.values() if r.type == "aws:ec2/vpc:Vpc"],
                ),
            )
            ensure_source(self.emulator, declaration)

            def build(action: ActionRun) -> str:
                return self._build(action, project, env, previous, config_overrides, packages, out_dir, run)

            extension.set_handler(build, pipeline=pipeline, provider="CodeBuild")
            codepipeline, run.events_role_arn = self._starter(previous.state)
            run.execution_id = codepipeline.start_pipeline_execution(name=pipeline)["pipelineExecutionId"]
            run.status = extension.wait(pipeline, run.execution_id, timeout_s)
        if run.error is not None:
            raise run.error
        if run.status != "Succeeded":
            summary = (
                self.emulator.client("codepipeline")
                .get_pipeline_execution(pipelineName=pipeline, pipelineExecutionId=run.execution_id)
                .get("pipelineExecution", {})
                .get("statusSummary")
            )
            raise PromotionError(
                f"promotion pipeline {pipeline} execution {run.execution_id} is {run.status}: {summary}"
            )
        return run

    def _starter(self, state: DeployState) -> tuple[Any, str]:
        """A CodePipeline client as the approval rule's EventBridge role (root without IAM or a rule)."""
        authorizer = authorizer_of(self.emulator)
        rule = next(
            (
                r
                for r in state.resources.values()
                if r.type == "aws:cloudwatch/eventRule:EventRule"
                and str(r.outputs.get("name") or r.inputs.get("name") or "").endswith("-model-approved")
            ),
            None,
        )
        if rule is None:
            return self.emulator.client("codepipeline"), ""
        rule_name = str(rule.outputs.get("name") or rule.inputs.get("name"))
        target = _state_resource(state, "aws:cloudwatch/eventTarget:EventTarget", rule=rule_name)
        role_arn = str(target.inputs.get("roleArn") or "") if target is not None else ""
        if authorizer is None or not role_arn:
            return self.emulator.client("codepipeline"), role_arn
        credentials = authorizer.issue_credentials(
            role_arn, service=EVENTS_SERVICE, source_arn=str(rule.outputs.get("arn")), session_name="events"
        )
        return client_as(self.emulator, "codepipeline", credentials), role_arn

    def _build(
        self,
        action: ActionRun,
        project: Mapping[str, Any],
        env: Mapping[str, str],
        previous: DeployResult,
        config_overrides: Mapping[str, Any],
        packages: list[str],
        out_dir: Path | None,
        run: PromotionRun,
    ) -> str:
        """The promote build: as the project's role, plan; as the deploy role, the stack deploy; mark."""
        from pipelines import promotion
        from rehearsal.deploy import deploy

        try:
            build = self._build_session(action, project)
            sm = client_as(self.emulator, "sagemaker", build)
            run.plan = promotion.plan(
                sm,
                client_as(self.emulator, "s3", build),
                env.get("OWN_MODEL_PACKAGE_GROUPS", "").split(),
                env.get("UPSTREAM_GROUPS", "").split(),
                bucket=env["ARTIFACTS_BUCKET"],
                key_arn=env["ARTIFACTS_KEY_ARN"],
            )
            deploy_session = self._assume_deploy_role(build, env["DEPLOY_ROLE_ARN"])
            # the action runs on the pipeline's thread: Pulumi's engine wants an event loop of its own there
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                run.result = deploy(
                    self.emulator,
                    stack=self.stack,
                    config_overrides=config_overrides,
                    previous=previous.state,
                    out_dir=out_dir,
                    credentials=deploy_session,
                )
            finally:
                asyncio.set_event_loop(None)
                loop.close()
            for arn in packages:
                if promotion.mark_deployed(sm, arn):
                    run.marked.append(arn)
        except BaseException as exc:
            run.error = exc
            raise
        return f"deployed {sorted(packages)} to stack {self.stack} as {env['DEPLOY_ROLE_ARN']}"

    def _build_session(self, action: ActionRun, project: Mapping[str, Any]) -> Credentials | None:
        """CodeBuild starts the build (as the pipeline's role) and assumes the project's service role;
        the build's log writes go to the project's log group as that role."""
        authorizer = authorizer_of(self.emulator)
        if authorizer is None:
            return None
        pipeline_role = str(
            self.emulator.client("codepipeline").get_pipeline(name=action.pipeline)["pipeline"]["roleArn"]
        )
        for operation, params in (
            ("StartBuild", {"projectName": project["name"]}),
            ("BatchGetBuilds", {"ids": [f"{project['name']}:{action.execution_id}"]}),
        ):
            denial = authorizer.authorize_call(pipeline_role, "codebuild", operation, params)
            if denial is not None and authorizer.enforce:
                raise PromotionError(f"CodePipeline could not run the build: {denial}")
        credentials = authorizer.issue_credentials(
            str(project["serviceRole"]),
            service=CODEBUILD_SERVICE,
            source_arn=str(project["arn"]),
            session_name=f"codebuild-{project['name']}",
        )
        group = ((project.get("logsConfig") or {}).get("cloudWatchLogs") or {}).get("groupName")
        if group:
            role = str(project["serviceRole"])
            for operation in ("CreateLogStream", "PutLogEvents"):
                denial = authorizer.authorize_call(
                    role, "logs", operation, {"logGroupName": group, "logStreamName": action.execution_id}
                )
                if denial is not None and authorizer.enforce:
                    raise PromotionError(f"the build could not write its logs: {denial}")
        return credentials

    def _assume_deploy_role(self, build: Credentials | None, deploy_role_arn: str) -> Credentials | None:
        """``aws sts assume-role --role-arn $DEPLOY_ROLE_ARN`` as the build (None: no IAM, root keys)."""
        if build is None:
            return None
        found = client_as(self.emulator, "sts", build).assume_role(
            RoleArn=deploy_role_arn, RoleSessionName=f"promote-{self.stack.rsplit('/', 1)[-1]}"
        )["Credentials"]
        return {
            "AWS_ACCESS_KEY_ID": found["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": found["SecretAccessKey"],
            "AWS_SESSION_TOKEN": found["SessionToken"],
        }
