"""Delivery under the recording mock and in the stacks: stage order, manual approval before prod,
the EventBridge pattern, build specs read from files, encrypted artifact store, least-privilege roles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from components.delivery import (
    BUILDSPEC_DIR,
    MODEL_PACKAGE_EVENT,
    Delivery,
    DeliveryArgs,
    PromotionTarget,
    Source,
    Upstream,
    approval_event_pattern,
    read_buildspec,
)
from stacks.synth import SynthResult, run_program
from tests.conftest import BASE_CONFIG
from tests.unit.components._helpers import policy, statements

ARTIFACTS = "arn:aws:s3:::lake-artifacts"
ML_KEY = "arn:aws:kms:us-east-1:123456789012:key/ml"
LOGS_KEY = "arn:aws:kms:us-east-1:123456789012:key/logs"
TOPIC = "arn:aws:sns:us-east-1:123456789012:mlops-test-alerts"
CONNECTION = "arn:aws:codeconnections:us-east-1:123456789012:connection/0d5b9d5c-1c3b-4c4e-9e62-2f6f3e0e9a11"
PIPELINE = "aws:codepipeline/pipeline:Pipeline"


def _args(**overrides: Any) -> DeliveryArgs:
    values: dict[str, Any] = {
        "name_prefix": "mlops-test",
        "region": "us-east-1",
        "source": Source(
            kind="codeconnections", connection_arn=CONNECTION, repository="acme/mlops", branch="main"
        ),
        "artifacts_bucket_name": "lake-artifacts",
        "artifacts_bucket_arn": ARTIFACTS,
        "artifacts_key_arn": ML_KEY,
        "logs_key_arn": LOGS_KEY,
        "promotion_targets": [
            PromotionTarget(stack="staging", deploy_role_arn="arn:aws:iam::123456789012:role/stg-deployer"),
            PromotionTarget(
                stack="prod",
                deploy_role_arn="arn:aws:iam::210987654321:role/prod-deployer",
                manual_approval=True,
            ),
        ],
        "watched_group_names": ["mlops-test-churn", "mlops-shared-churn"],
        "approval_topic_arn": TOPIC,
        "tags": {"project": "mlops-platform"},
    }
    values.update(overrides)
    return DeliveryArgs(**values)


@pytest.fixture(scope="module")
def result() -> SynthResult:
    def program() -> dict[str, Any]:
        d = Delivery("dl", _args())
        return {
            "pipeline": d.pipeline_name,
            "promotion": d.promotion_pipeline_name,
            "projects": d.project_names,
        }

    return run_program(program, BASE_CONFIG)


def _pipelines(result: SynthResult) -> dict[str, dict[str, Any]]:
    return {p.inputs["name"]: p.inputs for p in result.of_type(PIPELINE)}


def _stage_names(pipeline: dict[str, Any]) -> list[str]:
    return [s["name"] for s in pipeline["stages"]]


def test_code_pipeline_stages_in_order(result: SynthResult) -> None:
    code = _pipelines(result)["mlops-test-delivery"]
    assert _stage_names(code) == ["Source", "Test", "Package", "Deploy"]
    assert code["pipelineType"] == "V2"
    source = code["stages"][0]["actions"][0]
    assert source["provider"] == "CodeStarSourceConnection"
    assert source["configuration"] == {
        "ConnectionArn": CONNECTION,
        "FullRepositoryId": "acme/mlops",
        "BranchName": "main",
        "OutputArtifactFormat": "CODE_ZIP",
        "DetectChanges": "true",  # a push starts the delivery
    }
    # ... but never a promotion: only an approval does
    promotion = _pipelines(result)["mlops-test-promotion"]
    assert promotion["stages"][0]["actions"][0]["configuration"]["DetectChanges"] == "false"
    actions = [s["actions"][0] for s in code["stages"][1:]]
    assert [a["configuration"]["ProjectName"] for a in actions] == [
        "mlops-test-test",
        "mlops-test-package",
        "mlops-test-deploy",
    ]
    # deploy ships the package stage's output, not the raw source
    assert actions[1]["outputArtifacts"] == ["package_output"]
    assert actions[2]["inputArtifacts"] == ["package_output"]


def test_artifact_store_encrypted_with_customer_key(result: SynthResult) -> None:
    for pipeline in _pipelines(result).values():
        assert pipeline["artifactStores"] == [
            {"location": "lake-artifacts", "type": "S3", "encryptionKey": {"id": ML_KEY, "type": "KMS"}}
        ]


def test_promotion_stages_manual_approval_before_prod(result: SynthResult) -> None:
    promo = _pipelines(result)["mlops-test-promotion"]
    assert _stage_names(promo) == ["Source", "Deploy-staging", "Approve-prod", "Deploy-prod"]
    assert promo["executionMode"] == "QUEUED"
    approve = promo["stages"][2]["actions"][0]
    assert (approve["category"], approve["owner"], approve["provider"]) == ("Approval", "AWS", "Manual")
    assert approve["configuration"]["NotificationArn"] == TOPIC
    names = _stage_names(promo)
    assert names.index("Approve-prod") == names.index("Deploy-prod") - 1
    assert names.index("Deploy-staging") < names.index("Approve-prod")


def test_event_pattern_matches_only_platform_groups_and_approved(result: SynthResult) -> None:
    (rule,) = result.of_type("aws:cloudwatch/eventRule:EventRule")
    assert json.loads(rule.inputs["eventPattern"]) == {
        "source": ["aws.sagemaker"],
        "detail-type": [MODEL_PACKAGE_EVENT],
        "detail": {
            "ModelPackageGroupName": ["mlops-shared-churn", "mlops-test-churn"],
            "ModelApprovalStatus": ["Approved"],
        },
    }
    assert MODEL_PACKAGE_EVENT == "SageMaker Model Package State Change"
    (target,) = result.of_type("aws:cloudwatch/eventTarget:EventTarget")
    assert target.inputs["arn"] == "arn:aws:codepipeline:us-east-1:123456789012:mlops-test-promotion"
    events_role = result.named("dl-events-role")
    assert statements(policy(events_role, "assumeRolePolicy")) == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": "123456789012"},
                "ArnLike": {
                    "aws:SourceArn": "arn:aws:events:us-east-1:123456789012:rule/mlops-test-model-approved"
                },
            },
        }
    ]
    assert statements(policy(result.named("dl-events-policy"))) == [
        {
            "Sid": "StartPromotion",
            "Effect": "Allow",
            "Action": "codepipeline:StartPipelineExecution",
            "Resource": "arn:aws:codepipeline:us-east-1:123456789012:mlops-test-promotion",
        }
    ]


def test_event_pattern_rejects_other_states_and_groups() -> None:
    pattern = json.loads(approval_event_pattern(["g1"]))
    # EventBridge matches a field against a list of exact values; nothing else passes.
    assert pattern["detail"]["ModelApprovalStatus"] == ["Approved"]
    assert "PendingManualApproval" not in json.dumps(pattern)
    assert "Rejected" not in json.dumps(pattern)
    assert pattern["detail"]["ModelPackageGroupName"] == ["g1"]


def test_buildspecs_come_from_the_repository_files(result: SynthResult) -> None:
    projects = {p.inputs["name"]: p.inputs for p in result.of_type("aws:codebuild/project:Project")}
    for stage in ("test", "package", "deploy"):
        text = (BUILDSPEC_DIR / f"{stage}.yml").read_text()
        assert projects[f"mlops-test-{stage}"]["source"] == {"type": "CODEPIPELINE", "buildspec": text}
    promote_text = (BUILDSPEC_DIR / "promote.yml").read_text()
    for slug in ("staging", "prod"):
        project = projects[f"mlops-test-promote-{slug}"]
        assert project["source"]["buildspec"] == promote_text
        env = {v["name"]: v["value"] for v in project["environment"]["environmentVariables"]}
        assert env["TARGET_STACK"] == slug
        assert env["MODEL_PACKAGE_GROUPS"] == "mlops-test-churn mlops-shared-churn"
    for project in projects.values():
        assert project["encryptionKey"] == ML_KEY
        assert project["environment"]["privilegedMode"] is False


def test_read_buildspec_rejects_missing_or_invalid(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing"):
        read_buildspec("nope", tmp_path)
    (tmp_path / "bad.yml").write_text("phases: {}\n")
    with pytest.raises(ValueError, match=r"version: 0\.2"):
        read_buildspec("bad", tmp_path)


def test_build_roles_are_least_privilege(result: SynthResult) -> None:
    deploy = {s["Sid"]: s for s in statements(policy(result.named("dl-deploy-build-policy")))}
    assert deploy["DeployCodeAndDags"]["Resource"] == [f"{ARTIFACTS}/code/*", f"{ARTIFACTS}/airflow/*"]
    test = {s["Sid"]: s for s in statements(policy(result.named("dl-test-build-policy")))}
    assert "DeployCodeAndDags" not in test
    assert test["PipelineArtifacts"]["Resource"] == [
        f"{ARTIFACTS}/mlops-test-delivery/*",
        f"{ARTIFACTS}/mlops-test-promotion/*",
    ]
    promote_prod = {s["Sid"]: s for s in statements(policy(result.named("dl-promote-prod-build-policy")))}
    assert promote_prod["AssumeDeployRole"]["Resource"] == "arn:aws:iam::210987654321:role/prod-deployer"
    role = result.named("dl-test-build-role")
    assert statements(policy(role, "assumeRolePolicy"))[0]["Principal"] == {
        "Service": "codebuild.amazonaws.com"
    }
    pipeline_policy = {s["Sid"]: s for s in statements(policy(result.named("dl-pipeline-policy")))}
    assert pipeline_policy["UseConnection"]["Resource"] == CONNECTION
    assert pipeline_policy["RunBuilds"]["Resource"] == [
        f"arn:aws:codebuild:us-east-1:123456789012:project/mlops-test-{s}"
        for s in ("test", "package", "deploy")
    ]


def test_s3_source_and_no_promotion() -> None:
    def program() -> dict[str, Any]:
        d = Delivery(
            "dl", _args(source=Source(kind="s3", object_key="delivery/source.zip"), promotion_targets=[])
        )
        return {"promotion": d.promotion_pipeline_name}

    result = run_program(program, BASE_CONFIG)
    (pipeline,) = result.of_type(PIPELINE)
    assert pipeline.inputs["stages"][0]["actions"][0]["configuration"] == {
        "S3Bucket": "lake-artifacts",
        "S3ObjectKey": "delivery/source.zip",
        "PollForSourceChanges": "false",
    }
    # the S3 action does not poll: an EventBridge rule on the object's upload starts the pipeline
    (rule,) = result.of_type("aws:cloudwatch/eventRule:EventRule")
    assert json.loads(rule.inputs["eventPattern"]) == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": ["lake-artifacts"]}, "object": {"key": ["delivery/source.zip"]}},
    }
    (target,) = result.of_type("aws:cloudwatch/eventTarget:EventTarget")
    assert target.inputs["arn"] == pipeline.outputs["arn"]
    events_role = result.named("dl-start-delivery-events-role")
    assert target.inputs["roleArn"] == events_role.outputs["arn"]
    trust = statements(policy(events_role, "assumeRolePolicy"))[0]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"]["ArnLike"]["aws:SourceArn"] == rule.outputs["arn"]
    (start,) = statements(policy(result.named("dl-start-delivery-events-policy")))
    assert (start["Action"], start["Resource"]) == (
        "codepipeline:StartPipelineExecution",
        pipeline.outputs["arn"],
    )
    assert result.outputs["promotion"] is None


def test_prod_needs_a_manual_approval() -> None:
    with pytest.raises(ValueError, match="manual_approval"):
        _args(promotion_targets=[PromotionTarget(stack="prod", deploy_role_arn="arn:aws:iam::1:role/x")])
    with pytest.raises(ValueError, match="connection_arn"):
        Source(kind="codeconnections")


def test_prod_stack_deploys_itself_behind_a_person_importing_from_staging(synth_stack) -> None:
    """Item 8: each environment deploys only itself (its build reaches only its own private EKS API);
    prod imports what staging deployed, then waits for a person."""
    prod = synth_stack("prod")
    pipelines = _pipelines(prod)
    assert _stage_names(pipelines["mlops-prod-delivery"]) == ["Source", "Test", "Package", "Deploy"]
    assert _stage_names(pipelines["mlops-prod-promotion"]) == ["Source", "Approve-prod", "Deploy-prod"]
    rules = {r.inputs["name"]: r for r in prod.of_type("aws:cloudwatch/eventRule:EventRule")}
    assert json.loads(rules["mlops-prod-model-approved"].inputs["eventPattern"])["detail"] == {
        "ModelPackageGroupName": ["mlops-prod-churn", "mlops-prod-housing"],  # every model's group
        "ModelApprovalStatus": ["Approved"],
    }
    assert json.loads(rules["mlops-prod-upstream-package-changed"].inputs["eventPattern"])["detail"] == {
        "ModelPackageGroupName": ["mlops-staging-churn", "mlops-staging-housing"],
        "ModelApprovalStatus": ["Approved"],
    }
    assert "mlops-prod-source-uploaded" in rules  # the S3 source starts the delivery
    promote = next(
        p
        for p in prod.of_type("aws:codebuild/project:Project")
        if p.inputs["name"] == "mlops-prod-promote-prod"
    )
    env = {v["name"]: v["value"] for v in promote.inputs["environment"]["environmentVariables"]}
    assert env["OWN_MODEL_PACKAGE_GROUPS"] == "mlops-prod-churn mlops-prod-housing"
    # by ARN: ListModelPackages takes a name only for this account's groups
    assert env["UPSTREAM_GROUPS"] == " ".join(
        f"arn:aws:sagemaker:us-east-1:123456789012:model-package-group/mlops-staging-{m}"
        for m in ("churn", "housing")
    )
    # same account (promoteFrom.accountId empty): no bus permission for another account
    assert prod.of_type("aws:cloudwatch/eventPermission:EventPermission") == []
    assert env["ARTIFACTS_BUCKET"] == prod.outputs["artifactsBucket"]
    grants = {s["Sid"]: s for s in statements(policy(prod.named("mlops-prod-promote-prod-build-policy")))}
    assert (
        grants["ReadUpstreamModels"]["Resource"] == "arn:aws:s3:::mlops-staging-artifacts-replace-me/models/*"
    )
    assert grants["ReadUpstreamModels"]["Action"] == "s3:GetObject"
    assert grants["DecryptUpstreamModels"]["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}
    }
    assert grants["WritePromotedModels"]["Resource"] == f"{prod.outputs['artifactsBucketArn']}/models/*"
    assert all(":model-package/mlops-staging-" in r or ":model-package-group/mlops-staging-" in r
               for r in grants["DescribeUpstreamPackages"]["Resource"])  # fmt: skip
    assert "sagemaker:CreateModelPackage" not in grants["DescribeUpstreamPackages"]["Action"]
    assert all("mlops-prod-" in r for r in grants["RegisterOwnPackages"]["Resource"])
    assert grants["MarkOwnPackages"]["Action"] == [
        "sagemaker:DescribeModelPackage",
        "sagemaker:UpdateModelPackage",
    ]
    assert all(":model-package/mlops-prod-" in r for r in grants["MarkOwnPackages"]["Resource"])
    assert prod.outputs["deliveryPipelineName"] == "mlops-prod-delivery"
    assert prod.outputs["promotionPipelineName"] == "mlops-prod-promotion"
    # deploy copies into the artifacts bucket paths MWAA reads
    deploy = next(
        p for p in prod.of_type("aws:codebuild/project:Project") if p.inputs["name"] == "mlops-prod-deploy"
    )
    env = {v["name"]: v["value"] for v in deploy.inputs["environment"]["environmentVariables"]}
    assert env == {
        "ARTIFACTS_BUCKET": prod.outputs["artifactsBucket"],
        "CODE_PREFIX": "code/",
        "AIRFLOW_PREFIX": "airflow/",
        "ARTIFACTS_KEY_ARN": prod.outputs["mlKeyArn"],
    }
    assert prod.outputs["airflowDagsS3Uri"] == f"s3://{env['ARTIFACTS_BUCKET']}/{env['AIRFLOW_PREFIX']}dags"


def test_promotion_builds_run_in_the_private_subnets_with_scoped_eni_permissions(synth_stack) -> None:
    """pulumi up in the promote build must reach the private EKS endpoint: the build runs in the VPC."""
    import json

    result = synth_stack("prod")
    private = set(result.outputs["privateSubnetIds"])
    promote = [p for p in result.of_type("aws:codebuild/project:Project") if "promote" in p.name]
    assert promote
    for project in promote:
        vpc = project.inputs["vpcConfig"]
        assert vpc["vpcId"] == result.outputs["vpcId"]
        assert set(vpc["subnets"]) == private
        sg_id, api_clients = vpc["securityGroupIds"]
        # the cluster security group admits this one on 443: pulumi up reaches the private API
        assert api_clients == result.outputs["clusterApiClientSecurityGroupId"]
        admitted = [
            r.inputs
            for r in result.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
            if r.inputs.get("referencedSecurityGroupId") == api_clients
        ]
        assert [(a["fromPort"], a["toPort"]) for a in admitted] == [(443, 443)]
        sg = next(
            s for s in result.of_type("aws:ec2/securityGroup:SecurityGroup") if s.outputs["id"] == sg_id
        )
        assert not sg.inputs.get("ingress")
        assert [(e["fromPort"], e["toPort"]) for e in sg.inputs["egress"]] == [(443, 443)]
    for role_policy in result.of_type("aws:iam/rolePolicy:RolePolicy"):
        if "promote" not in role_policy.name:
            continue
        statements = {s["Sid"]: s for s in json.loads(role_policy.inputs["policy"])["Statement"]}
        permission = statements["BuildNetworkInterfacePermission"]
        assert permission["Condition"]["StringEquals"]["ec2:AuthorizedService"] == "codebuild.amazonaws.com"
        assert len(permission["Condition"]["StringEquals"]["ec2:Subnet"]) == len(private)
        assert "*" not in statements["BuildNetworkInterfaces"]["Resource"]
    # the code pipeline's builds (test, package, deploy to S3) do not need the VPC
    assert all(
        "vpcConfig" not in p.inputs or not p.inputs["vpcConfig"]
        for p in result.of_type("aws:codebuild/project:Project")
        if "promote" not in p.name
    )


def test_artifact_grants_use_the_folder_codepipeline_writes(each_stack: SynthResult) -> None:
    """Item 4: CodePipeline keeps artifacts under the first 20 characters of the pipeline name
    (``mlops-staging-delivery`` -> ``mlops-staging-delive/``); the pipeline and build roles grant that."""
    from components.delivery import artifact_store_folder

    artifacts = each_stack.outputs["artifactsBucketArn"]
    pipelines = [p.inputs["name"] for p in each_stack.of_type("aws:codepipeline/pipeline:Pipeline")]
    assert pipelines
    folders = {f"{artifacts}/{artifact_store_folder(p)}/*" for p in pipelines}
    assert all(len(f.split("/")[-2]) <= 20 for f in folders)
    granted: set[str] = set()
    for rp in each_stack.of_type("aws:iam/rolePolicy:RolePolicy"):
        for s in statements(policy(rp)):
            if s.get("Sid") in ("ArtifactStore", "PipelineArtifacts"):
                resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
                assert set(resources) <= folders, (rp.name, resources)
                granted |= set(resources)
    assert granted == folders


def test_pipelines_must_not_share_an_artifact_folder() -> None:
    with pytest.raises(ValueError, match="share the artifact folder"):
        Delivery("dl", _args(name_prefix="mlops-very-long-name"))


def test_deploy_copies_name_the_platform_key(result: SynthResult) -> None:
    """Item 15: ``--sse aws:kms`` without a key id encrypts with the aws/s3 managed key; every copy in
    the buildspecs names ARTIFACTS_KEY_ARN, which the deploy project sets to the artifacts key."""
    import re

    for stage in ("deploy", "package", "test", "promote"):
        text = read_buildspec(stage)
        for line in text.splitlines():
            copy = re.search(r"aws s3 (?:cp|sync) (\S+) (\S+)", line)
            if copy and copy.group(2).strip('"').startswith("s3://"):  # an upload
                assert '--sse aws:kms --sse-kms-key-id "$ARTIFACTS_KEY_ARN"' in line, (stage, line)
    projects = {p.inputs["name"]: p.inputs for p in result.of_type("aws:codebuild/project:Project")}
    env = {
        v["name"]: v["value"] for v in projects["mlops-test-deploy"]["environment"]["environmentVariables"]
    }
    assert env["ARTIFACTS_KEY_ARN"] == ML_KEY
    assert "--sse-kms-key-id" in read_buildspec("deploy")


def test_codecommit_source_is_started_by_a_push_rule() -> None:
    """Item 11: a CodeCommit source does not poll; an EventBridge rule on pushes to the branch starts it."""

    def program() -> dict[str, Any]:
        Delivery(
            "dl",
            _args(
                source=Source(kind="codecommit", repository="mlops", branch="release"), promotion_targets=[]
            ),
        )
        return {}

    result = run_program(program, BASE_CONFIG)
    (pipeline,) = result.of_type(PIPELINE)
    action = pipeline.inputs["stages"][0]["actions"][0]
    assert action["provider"] == "CodeCommit"
    assert action["configuration"] == {
        "RepositoryName": "mlops",
        "BranchName": "release",
        "PollForSourceChanges": "false",
        "OutputArtifactFormat": "CODE_ZIP",
    }
    repo = "arn:aws:codecommit:us-east-1:123456789012:mlops"
    (rule,) = result.of_type("aws:cloudwatch/eventRule:EventRule")
    pattern = json.loads(rule.inputs["eventPattern"])
    assert pattern["source"] == ["aws.codecommit"]
    assert pattern["resources"] == [repo]
    assert pattern["detail"]["referenceName"] == ["release"]
    pipeline_policy = {s["Sid"]: s for s in statements(policy(result.named("dl-pipeline-policy")))}
    assert pipeline_policy["ReadRepository"]["Resource"] == repo
    assert "codecommit:UploadArchive" in pipeline_policy["ReadRepository"]["Action"]
    assert "UseConnection" not in pipeline_policy
    assert "ReadSourceObject" not in pipeline_policy


def test_codeconnections_source_needs_no_rule(result: SynthResult) -> None:
    names = [r.inputs["name"] for r in result.of_type("aws:cloudwatch/eventRule:EventRule")]
    assert names == ["mlops-test-model-approved"]  # the connection itself starts the delivery


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"kind": "codecommit"}, "needs repository"),
        ({"kind": "codecommit", "repository": "acme/mlops"}, "is a name"),
    ],
)
def test_source_validation(source: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Source(**source)


def test_the_s3_source_bucket_sends_events_to_eventbridge(synth_stack) -> None:
    dev = synth_stack("dev")
    (notification,) = dev.of_type("aws:s3/bucketNotification:BucketNotification")
    assert notification.inputs["eventbridge"] is True
    assert notification.inputs["bucket"] == dev.outputs["artifactsBucket"]


def test_the_promote_build_raises_autoscaled_counts_to_the_live_ones_before_pulumi_up() -> None:
    """UpdateEndpoint restarts variants at instanceCount (no RetainAllVariantProperties in pulumi-aws):
    the build sets the live counts (stacks/config/live_counts.py) into its checkout's config first."""
    text = read_buildspec("promote")
    live = text.index("python -m stacks.config.live_counts")
    set_count = text.index('pulumi config set --path --type int "$KEY" "$COUNT"')
    up = text.index("pulumi up --yes")
    assert live < set_count < up


def test_an_upstream_in_another_account_may_put_its_package_events_on_this_bus() -> None:
    """The upstream registry forwards its package events here (ModelRegistry cross_account_ids); the
    default bus takes them only once its policy admits that account."""
    upstream = Upstream(
        group_names=["mlops-staging-churn"],
        account_id="210987654321",
        artifacts_bucket_name="mlops-staging-artifacts",
        ml_key_arn="arn:aws:kms:us-east-1:210987654321:key/00000000-1111-2222-3333-444444444444",
        cross_account=True,
    )

    def program() -> dict[str, Any]:
        d = Delivery("dl", _args(source=Source(kind="s3", object_key="source.zip"), upstream=upstream))
        return {"promotion": d.promotion_pipeline_name}

    result = run_program(program, BASE_CONFIG)
    (permission,) = result.of_type("aws:cloudwatch/eventPermission:EventPermission")
    assert permission.inputs["principal"] == "210987654321"
    assert permission.inputs["action"] == "events:PutEvents"
    assert permission.inputs["eventBusName"] == "default"
    promote = next(
        p for p in result.of_type("aws:codebuild/project:Project") if "promote" in p.inputs["name"]
    )
    env = {v["name"]: v["value"] for v in promote.inputs["environment"]["environmentVariables"]}
    assert (
        env["UPSTREAM_GROUPS"]
        == "arn:aws:sagemaker:us-east-1:210987654321:model-package-group/mlops-staging-churn"
    )


def test_only_a_buildspec_with_reports_gets_the_test_report_grants() -> None:
    from components.delivery import BUILDSPEC_DIR, _has_reports, read_buildspec  # pyright: ignore[reportPrivateUsage]

    assert _has_reports(read_buildspec("test", BUILDSPEC_DIR))
    for stage in ("package", "deploy", "promote"):
        assert not _has_reports(read_buildspec(stage, BUILDSPEC_DIR)), stage
