"""Airflow (MWAA) under the recording mock and in the stacks: trust, the MWAA guide's permissions,
the platform permissions, private subnets, logging, KMS, and the DAG paths in the artifacts bucket."""

from __future__ import annotations

from typing import Any

import pytest

from components.airflow import LOG_TYPES, Airflow, AirflowArgs
from stacks.synth import RecordedResource, SynthResult, run_program
from tests.conftest import BASE_CONFIG
from tests.unit.components._helpers import policy, statements

ARTIFACTS = "arn:aws:s3:::lake-artifacts"
ML_KEY = "arn:aws:kms:us-east-1:123456789012:key/ml"
SM_ROLE = "arn:aws:iam::123456789012:role/mlops-test-sagemaker-execution"
EMR_ROLE = "arn:aws:iam::123456789012:role/mlops-test-features-emr-job"
ENV = "aws:mwaa/environment:Environment"


def _args(**overrides: Any) -> AirflowArgs:
    values: dict[str, Any] = {
        "name_prefix": "mlops-test",
        "region": "us-east-1",
        "vpc_id": "vpc-1",
        "subnet_ids": ["subnet-a", "subnet-b"],
        "source_bucket_arn": ARTIFACTS,
        "kms_key_arn": ML_KEY,
        "data_key_arns": [ML_KEY],
        "read_bucket_arns": [ARTIFACTS],
        "write_locations": [(ARTIFACTS, "models/")],
        "emr_virtual_cluster_ids": ["vc123"],
        "emr_job_role_arns": [EMR_ROLE],
        "passable_role_arns": {"sagemaker.amazonaws.com": [SM_ROLE]},
        "model_package_group_names": ["mlops-test-churn"],
        "glue_database_name": "mlops_test_lake",
        "athena_workgroup_name": "mlops-test-analytics",
        "tags": {"project": "mlops-platform"},
    }
    values.update(overrides)
    return AirflowArgs(**values)


@pytest.fixture(scope="module")
def result() -> SynthResult:
    def program() -> dict[str, Any]:
        af = Airflow("af", _args())
        return {"url": af.webserver_url, "dags": af.dags_s3_uri, "name": af.environment_name}

    return run_program(program, BASE_CONFIG)


def _sids(r: RecordedResource) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in statements(policy(r))}


def test_execution_role_trusts_both_mwaa_principals(result: SynthResult) -> None:
    (role,) = result.of_type("aws:iam/role:Role")
    assert statements(policy(role, "assumeRolePolicy")) == [
        {
            "Effect": "Allow",
            "Principal": {"Service": ["airflow.amazonaws.com", "airflow-env.amazonaws.com"]},
            "Action": "sts:AssumeRole",
            # confused-deputy conditions (issue 12 item 13)
            "Condition": {
                "StringEquals": {"aws:SourceAccount": "123456789012"},
                "ArnLike": {
                    "aws:SourceArn": "arn:aws:airflow:us-east-1:123456789012:environment/mlops-test-airflow"
                },
            },
        }
    ]


def test_mwaa_guide_permissions(result: SynthResult) -> None:
    mwaa = _sids(result.named("af-execution-policy"))
    assert (
        mwaa["PublishMetrics"]["Resource"]
        == "arn:aws:airflow:us-east-1:123456789012:environment/mlops-test-airflow"
    )
    assert mwaa["DenyListAllBuckets"]["Effect"] == "Deny"
    # item 17: the bucket itself, but objects only below the DAG folder's parent
    assert mwaa["ReadSourceBucket"]["Resource"] == ARTIFACTS
    assert mwaa["ReadSourceBucket"]["Action"] == ["s3:GetBucket*", "s3:List*"]
    assert mwaa["ReadSourceObjects"]["Resource"] == f"{ARTIFACTS}/airflow/*"
    assert mwaa["ReadSourceObjects"]["Action"] == "s3:GetObject*"
    assert mwaa["EnvironmentLogs"]["Resource"] == [
        "arn:aws:logs:us-east-1:123456789012:log-group:airflow-mlops-test-airflow-*"
    ]
    assert mwaa["CeleryQueues"]["Resource"] == "arn:aws:sqs:us-east-1:*:airflow-celery-*"
    assert mwaa["CeleryQueues"]["Action"] == [
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:ReceiveMessage",
        "sqs:SendMessage",
    ]
    assert mwaa["EnvironmentKeyThroughSqsAndS3"] == {
        "Sid": "EnvironmentKeyThroughSqsAndS3",
        "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey*", "kms:Encrypt"],
        "Resource": ML_KEY,
        "Condition": {
            "StringLike": {"kms:ViaService": ["sqs.us-east-1.amazonaws.com", "s3.us-east-1.amazonaws.com"]}
        },
    }


def test_platform_permissions_are_scoped(result: SynthResult) -> None:
    platform = _sids(result.named("af-platform-policy"))
    vc = "arn:aws:emr-containers:us-east-1:123456789012:/virtualclusters/vc123"
    assert platform["StartSparkJobs"] == {
        "Sid": "StartSparkJobs",
        "Effect": "Allow",
        "Action": "emr-containers:StartJobRun",
        "Resource": [vc],
        "Condition": {"ArnEquals": {"emr-containers:ExecutionRoleArn": [EMR_ROLE]}},
    }
    assert platform["DescribeSparkClusters"]["Resource"] == [vc]
    assert platform["WatchSparkJobs"]["Resource"] == [f"{vc}/jobruns/*"]
    assert platform["RegisterModels"]["Resource"] == [
        "arn:aws:sagemaker:us-east-1:123456789012:model-package-group/mlops-test-churn",
        "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-test-churn/*",
    ]
    # model cards: only the cards of the model's packages (<group>-<version>, pipelines/model_card.py)
    assert platform["ModelCards"] == {
        "Sid": "ModelCards",
        "Effect": "Allow",
        "Action": ["sagemaker:CreateModelCard", "sagemaker:DescribeModelCard", "sagemaker:UpdateModelCard"],
        "Resource": ["arn:aws:sagemaker:us-east-1:123456789012:model-card/mlops-test-churn-*"],
    }
    assert all(
        r.split(":")[5].split("/")[1].startswith("mlops-test-")
        for r in platform["SageMakerJobsAndModels"]["Resource"]
    )
    assert (
        platform["QueryAthena"]["Resource"]
        == "arn:aws:athena:us-east-1:123456789012:workgroup/mlops-test-analytics"
    )
    assert (
        "arn:aws:glue:us-east-1:123456789012:table/mlops_test_lake/*"
        in platform["ReadWriteCatalog"]["Resource"]
    )
    assert platform["WriteLakePrefixes"]["Resource"] == [f"{ARTIFACTS}/models/*"]
    passes = [s for s in platform.values() if s["Action"] == "iam:PassRole"]
    # EMR on EKS job roles are authorized by StartJobRun's condition, never passed
    assert [(s["Resource"], s["Condition"]) for s in passes] == [
        ([SM_ROLE], {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}),
    ]


def test_emr_job_roles_are_required_and_never_passed() -> None:
    with pytest.raises(ValueError, match="emr_job_role_arns"):
        _args(emr_job_role_arns=[])
    with pytest.raises(ValueError, match="does not take iam:PassRole"):
        _args(passable_role_arns={"emr-containers.amazonaws.com": [EMR_ROLE]})


def test_environment_private_logged_encrypted(result: SynthResult) -> None:
    (env,) = result.of_type(ENV)
    (sg,) = result.of_type("aws:ec2/securityGroup:SecurityGroup")
    i = env.inputs
    assert i["name"] == "mlops-test-airflow"
    assert i["airflowVersion"].startswith("3.")
    assert i["webserverAccessMode"] == "PRIVATE_ONLY"
    assert i["kmsKey"] == ML_KEY
    assert i["networkConfiguration"] == {
        "subnetIds": ["subnet-a", "subnet-b"],
        "securityGroupIds": [sg.outputs["id"]],
    }
    assert i["executionRoleArn"] == result.of_type("aws:iam/role:Role")[0].outputs["arn"]
    assert set(i["loggingConfiguration"]) == {
        "dagProcessingLogs",
        "schedulerLogs",
        "taskLogs",
        "webserverLogs",
        "workerLogs",
    }
    assert len(LOG_TYPES) == 5
    assert all(v == {"enabled": True, "logLevel": "INFO"} for v in i["loggingConfiguration"].values())
    assert i["sourceBucketArn"] == ARTIFACTS
    assert i["dagS3Path"] == "airflow/dags"
    assert "requirementsS3Path" not in i or i["requirementsS3Path"] is None
    assert result.outputs["dags"] == "s3://lake-artifacts/airflow/dags"
    # the security group only admits itself
    ingress = result.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert [r.inputs["referencedSecurityGroupId"] for r in ingress] == [sg.outputs["id"]]


def test_requirements_and_plugins_need_a_version() -> None:
    with pytest.raises(ValueError, match="requirements_version"):
        _args(requirements_path="airflow/requirements.txt")
    with pytest.raises(ValueError, match="exactly two private subnets"):
        _args(subnet_ids=["a", "b", "c"])
    with pytest.raises(ValueError, match="Airflow 3"):
        _args(airflow_version="2.10.3")


def test_stacks_put_mwaa_in_two_private_subnets_reading_the_artifacts_bucket(each_stack: SynthResult) -> None:
    (env,) = each_stack.of_type(ENV)
    private = each_stack.outputs["privateSubnetIds"]
    assert env.inputs["networkConfiguration"]["subnetIds"] == private[:2]
    assert env.inputs["sourceBucketArn"] == each_stack.outputs["artifactsBucketArn"]
    assert env.inputs["kmsKey"] == each_stack.outputs["mlKeyArn"]
    assert env.inputs["webserverAccessMode"] == "PRIVATE_ONLY"
    assert (
        each_stack.outputs["airflowDagsS3Uri"] == f"s3://{each_stack.outputs['artifactsBucket']}/airflow/dags"
    )
    assert each_stack.outputs["airflowWebserverUrl"].endswith(".airflow.amazonaws.com")
    # the ML key lets CloudWatch Logs encrypt this environment's log groups only
    ml_key = next(k for k in each_stack.of_type("aws:kms/key:Key") if k.inputs["tags"]["data-domain"] == "ml")
    logs = [
        s for s in statements(policy(ml_key)) if s["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}
    ]
    assert logs[0]["Condition"] == {
        "ArnLike": {
            "kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:123456789012:log-group:"
            f"airflow-mlops-{each_stack.stack}-airflow-*"
        }
    }
    # the DAGs may pass exactly the platform's SageMaker role, and start Spark jobs with the EMR job roles
    platform = _sids(each_stack.named(f"mlops-{each_stack.stack}-platform-policy"))
    passed = sorted(r for s in platform.values() if s["Action"] == "iam:PassRole" for r in s["Resource"])
    assert passed == [each_stack.outputs["sagemakerExecutionRoleArn"]]
    job_roles = platform["StartSparkJobs"]["Condition"]["ArnEquals"]["emr-containers:ExecutionRoleArn"]
    assert sorted(job_roles) == sorted(each_stack.outputs["emrJobExecutionRoleArns"].values())


def test_environment_waits_for_the_role_policies(result: SynthResult) -> None:
    """MWAA checks the role's S3/logs access at creation: both policies must exist first (item 2)."""
    (env,) = result.of_type(ENV)
    for policy_name in ("af-execution-policy", "af-platform-policy"):
        assert result.named(policy_name).urn in env.dependencies


def test_platform_grants_match_what_the_dags_call(result: SynthResult) -> None:
    """Grants derived from the boto3 calls of pipelines/ and dags/ (issue 12 item 7)."""
    from fnmatch import fnmatchcase

    from platform_contract.naming import model_names

    sids = _sids(result.named("af-platform-policy"))
    # ListModelPackages has no resource-level permissions: "*" only
    assert sids["ListModelPackages"] == {
        "Sid": "ListModelPackages",
        "Effect": "Allow",
        "Action": "sagemaker:ListModelPackages",
        "Resource": "*",
    }
    assert all(
        "sagemaker:ListModelPackages" not in s["Action"] for k, s in sids.items() if k != "ListModelPackages"
    )
    assert sids["TriggerDagRuns"]["Action"] == "airflow:InvokeRestApi"
    assert (
        sids["TriggerDagRuns"]["Resource"]
        == "arn:aws:airflow:us-east-1:123456789012:role/mlops-test-airflow/User"
    )
    assert set(sids["ReadEndpoints"]["Action"]) == {
        "sagemaker:DescribeEndpoint",
        "sagemaker:DescribeEndpointConfig",
        "sagemaker:DescribeModel",
    }
    # the training job names the DAGs use fall under the grant
    job = model_names("mlops-test", "my_dataset").training_job_name("20261201-083700")
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{job}"
    assert any(fnmatchcase(arn, r) for r in sids["SageMakerJobsAndModels"]["Resource"])
    # dev may approve (no deny by default)
    assert "DenyPackageApproval" not in sids


def test_approval_is_denied_when_asked() -> None:
    def program() -> None:
        Airflow("af", _args(deny_package_approval=True))

    sids = _sids(run_program(program, BASE_CONFIG).named("af-platform-policy"))
    assert sids["DenyPackageApproval"] == {
        "Sid": "DenyPackageApproval",
        "Effect": "Deny",
        "Action": "sagemaker:UpdateModelPackage",
        "Resource": "*",
        "Condition": {"StringEquals": {"sagemaker:ModelApprovalStatus": "Approved"}},
    }


def test_stacks_grant_the_features_and_athena_writes_and_deny_approval_outside_dev(
    each_stack: SynthResult,
) -> None:
    platform = _sids(each_stack.named(f"mlops-{each_stack.stack}-platform-policy"))
    artifacts = each_stack.outputs["artifactsBucketArn"]
    features = next(
        b.outputs["arn"]
        for b in each_stack.of_type("aws:s3/bucket:Bucket")
        if b.inputs["tags"]["bucket-role"] == "features"
    )
    writes = platform["WriteLakePrefixes"]["Resource"]
    for location in (
        f"{artifacts}/code/features/*",
        f"{artifacts}/code/monitoring/*",  # the Spark drift job's script
        f"{features}/features/*",
        f"{artifacts}/athena-results/*",
    ):
        assert location in writes
    assert ("DenyPackageApproval" in platform) is (each_stack.stack != "dev")


def test_source_files_must_sit_in_the_readable_folder() -> None:
    with pytest.raises(ValueError, match="outside 'airflow/'"):
        _args(plugins_path="other/plugins.zip", plugins_version="v1")
    with pytest.raises(ValueError, match="startup_script_version"):
        _args(startup_script_path="airflow/startup.sh")


def _stack_with_mwaa_artifacts(stack: str, **airflow: str) -> SynthResult:
    import json

    from stacks.config import load_config
    from stacks.platform import build
    from stacks.synth import read_stack_config, stack_config_file

    config = read_stack_config(stack_config_file(stack))
    section = json.loads(config["mlops-platform:airflow"])
    section.update(airflow)
    config["mlops-platform:airflow"] = json.dumps(section)
    return run_program(lambda: build(load_config()).outputs, config, stack=stack)


def test_stack_installs_what_the_deploy_stage_publishes() -> None:
    """MWAA reads requirements.txt, plugins.zip and startup.sh (with the versions the deploy stage
    prints) from the keys the deploy buildspec writes: ``${AIRFLOW_PREFIX}<file>``."""
    from components.delivery import read_buildspec

    result = _stack_with_mwaa_artifacts(
        "staging", requirementsVersion="r1", pluginsVersion="p1", startupScriptVersion="s1"
    )
    (env,) = result.of_type(ENV)
    deploy = next(
        p for p in result.of_type("aws:codebuild/project:Project") if p.inputs["name"].endswith("-deploy")
    )
    variables = {v["name"]: v["value"] for v in deploy.inputs["environment"]["environmentVariables"]}
    prefix = variables["AIRFLOW_PREFIX"]
    buildspec = read_buildspec("deploy")
    assert "for f in requirements.txt plugins.zip startup.sh" in buildspec
    assert '"s3://${ARTIFACTS_BUCKET}/${AIRFLOW_PREFIX}$f"' in buildspec
    assert (env.inputs["requirementsS3Path"], env.inputs["requirementsS3ObjectVersion"]) == (
        f"{prefix}requirements.txt",
        "r1",
    )
    assert (env.inputs["pluginsS3Path"], env.inputs["pluginsS3ObjectVersion"]) == (
        f"{prefix}plugins.zip",
        "p1",
    )
    assert (env.inputs["startupScriptS3Path"], env.inputs["startupScriptS3ObjectVersion"]) == (
        f"{prefix}startup.sh",
        "s1",
    )
    assert env.inputs["dagS3Path"] == f"{prefix}dags"


def test_config_refuses_paths_the_deploy_stage_does_not_write() -> None:
    from stacks.config.ml import AirflowConfig

    with pytest.raises(ValueError, match=r"startupScriptPath = 'scripts/startup.sh'.*'airflow/startup.sh'"):
        AirflowConfig(startup_script_path="scripts/startup.sh")


def test_stacks_declare_the_airflow_line_the_dags_are_tested_on(each_stack: SynthResult) -> None:
    """Item 23 (MWAA): one version fact, in platform_contract.versions; stacks and packaging agree."""
    from delivery import mwaa
    from platform_contract.versions import MWAA_AIRFLOW_VERSION

    (env,) = each_stack.of_type(ENV)
    assert env.inputs["airflowVersion"] == MWAA_AIRFLOW_VERSION == mwaa.MWAA_AIRFLOW_VERSION == "3.3.1"
    assert f"constraints-{MWAA_AIRFLOW_VERSION}/" in mwaa.constraints_url()


def test_stack_reads_only_the_artifacts_prefixes_the_tasks_use(each_stack: SynthResult) -> None:
    """Item 17: no statement of the execution role reads every object of the artifacts bucket."""
    artifacts = each_stack.outputs["artifactsBucketArn"]
    stack = each_stack.stack
    resources: list[str] = []
    for name in (f"mlops-{stack}-execution-policy", f"mlops-{stack}-platform-policy"):
        for s in statements(policy(each_stack.named(name))):
            if s["Effect"] == "Allow":
                resources += s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
    assert f"{artifacts}/*" not in resources
    assert f"{artifacts}/airflow/*" in resources
    platform = _sids(each_stack.named(f"mlops-{stack}-platform-policy"))
    assert platform["ReadLakePrefixes"]["Resource"] == [
        f"{artifacts}/{p}*" for p in ("models/", "monitoring/", "code/", "athena-results/")
    ]


def test_start_job_run_is_allowed_only_with_a_platform_job_role(result: SynthResult) -> None:
    """Item 20, through the rehearsal's IAM evaluator: StartJobRun passes with the job role in
    ``executionRoleArn`` and fails with any other role; no iam:PassRole is consulted for it."""
    from rehearsal.iam.evaluate import evaluate
    from rehearsal.iam.policy import Policy, Principal

    platform = Policy.parse("platform", policy(result.named("af-platform-policy")))
    role = "arn:aws:iam::123456789012:role/mlops-test-airflow-execution"
    who = Principal(kind="AWS", arn=role, account="123456789012")
    cluster = "arn:aws:emr-containers:us-east-1:123456789012:/virtualclusters/vc123"

    def start(job_role: str) -> bool:
        context = {"emr-containers:ExecutionRoleArn": job_role}
        return evaluate(who, "emr-containers:StartJobRun", cluster, context, [platform]).allowed

    assert start(EMR_ROLE)
    assert not start("arn:aws:iam::123456789012:role/someone-else")
    assert not evaluate(who, "iam:PassRole", EMR_ROLE, {"iam:PassedToService": "emr-containers.amazonaws.com"},
                        [platform]).allowed  # fmt: skip


def test_tuning_grants_cover_the_models_tuning_jobs_and_trials_only() -> None:
    from fnmatch import fnmatchcase

    from platform_contract.naming import model_names

    churn, other = model_names("mlops-test", "churn"), model_names("mlops-test", "housing")

    def program() -> None:
        Airflow("af", _args(tuning_job_prefixes=[churn.tuning_job_prefix]))

    sids = _sids(run_program(program, BASE_CONFIG).named("af-platform-policy"))
    tuning = sids["HyperparameterTuning"]
    assert set(tuning["Action"]) == {
        "sagemaker:CreateHyperParameterTuningJob",
        "sagemaker:DescribeHyperParameterTuningJob",
        "sagemaker:StopHyperParameterTuningJob",
        "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
        "sagemaker:AddTags",
    }
    sm = "arn:aws:sagemaker:us-east-1:123456789012:"
    job = churn.tuning_job_name("261201-083700")
    assert any(fnmatchcase(f"{sm}hyper-parameter-tuning-job/{job}", r) for r in tuning["Resource"])
    assert not any(
        fnmatchcase(f"{sm}hyper-parameter-tuning-job/{other.tuning_job_name('261201-083700')}", r)
        for r in tuning["Resource"]
    )
    assert all("*" not in r.split("/", 1)[1][:-1] for r in tuning["Resource"])  # one trailing wildcard
    trial = f"{sm}training-job/{job}-001-1a2b3c4d"
    assert any(fnmatchcase(trial, r) for r in sids["ReadTuningTrials"]["Resource"])
    assert sids["ReadTuningTrials"]["Action"] == ["sagemaker:DescribeTrainingJob"]


def test_no_tuning_grant_without_tuning_prefixes(result: SynthResult) -> None:
    sids = _sids(result.named("af-platform-policy"))
    assert "HyperparameterTuning" not in sids
    assert "ReadTuningTrials" not in sids
