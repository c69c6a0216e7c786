"""The shipped stacks pass every mandatory rule; `mlops check` output and exit codes; the Pulumi adapter."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from pulumi_policy import PolicyResourceOptions, ResourceValidationArgs, ResourceValidationPolicy
from typer.testing import CliRunner

from mlops_cli.main import app
from policies import iam_data
from policies.check import resources_from_records
from policies.engine import evaluate, stack_environment
from policies.exceptions import EXCEPTIONS
from policies.pack import pack_environment, policies_for
from stacks.synth import STACKS_DIR, SynthResult, synthesize


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_shipped_stack_passes_every_mandatory_rule(
    stack: str, synth_stack: Callable[[str], SynthResult]
) -> None:
    resources = resources_from_records(synth_stack(stack).resources)
    env = stack_environment(resources)
    assert env == stack
    violations = evaluate(resources, env)
    blocking = [f"{v.rule.id} {v.resource.name}: {v.message}" for v in violations if v.blocking]
    assert blocking == []
    # Accepted exceptions stay visible in the report, with their reason.
    assert all(v.accepted.reason for v in violations if v.accepted)


def test_exceptions_are_named_and_reasoned() -> None:
    names = [e.name for e in EXCEPTIONS]
    assert len(names) == len(set(names))
    assert all(len(e.reason) > 40 for e in EXCEPTIONS)


@pytest.fixture(scope="module")
def insecure_stacks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stacks folder whose prod config keeps logs for 30 days (prod requires a year)."""
    folder = tmp_path_factory.mktemp("stacks")
    text = (STACKS_DIR / "Pulumi.prod.yaml").read_text()
    assert "logDays: 365" in text
    (folder / "Pulumi.prod.yaml").write_text(text.replace("logDays: 365", "logDays: 30"))
    shutil.copy(STACKS_DIR / "Pulumi.dev.yaml", folder / "Pulumi.dev.yaml")
    return folder


def test_check_fails_on_insecure_stack_json(insecure_stacks: Path) -> None:
    result = CliRunner().invoke(
        app, ["check", "--stack", "prod", "--stacks-dir", str(insecure_stacks), "--json"]
    )
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["environment"] == "prod"
    assert report["blocking"] > 0
    blocking = [v for v in report["violations"] if v["level"] == "mandatory" and not v["accepted"]]
    assert {v["rule"] for v in blocking} == {"logs-retention"}
    first = blocking[0]
    assert "365" in first["message"]
    assert first["why"]
    assert first["fix"]
    assert first["type"].endswith("LogGroup")


def test_check_table_groups_by_severity(insecure_stacks: Path) -> None:
    result = CliRunner().invoke(
        app, ["check", "--stack", "prod", "--stacks-dir", str(insecure_stacks)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 1
    out = result.stdout
    assert "mandatory:" in out
    assert "advisory:" in out
    assert "accepted exception:" in out
    assert out.index("mandatory:") < out.index("advisory:") < out.index("accepted exception:")
    assert "logs-retention" in out
    assert "Fix:" in out
    assert "FAILED" in out


def test_check_passes_on_shipped_dev(insecure_stacks: Path) -> None:
    result = CliRunner().invoke(
        app, ["check", "--stack", "dev", "--stacks-dir", str(insecure_stacks), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["blocking"] == 0


def test_check_unknown_stack_is_bad_input(insecure_stacks: Path) -> None:
    result = CliRunner().invoke(app, ["check", "--stack", "qa", "--stacks-dir", str(insecure_stacks)])
    assert result.exit_code == 2
    assert "Pulumi.qa.yaml" in result.stderr
    assert "known stacks: dev, prod" in result.stderr


def test_check_invalid_config_is_bad_input(tmp_path: Path) -> None:
    text = (STACKS_DIR / "Pulumi.prod.yaml").read_text()
    (tmp_path / "Pulumi.prod.yaml").write_text(
        text.replace("webserverAccessMode: PRIVATE_ONLY", "webserverAccessMode: PUBLIC_ONLY")
    )
    result = CliRunner().invoke(app, ["check", "--stack", "prod", "--stacks-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "webserverAccessMode" in result.stderr


# -- the same rules through pulumi-policy ------------------------------------------------------


def _args(resource_type: str, props: dict[str, object], name: str = "r") -> ResourceValidationArgs:
    opts = PolicyResourceOptions(False, [], None, [], None, [], None)  # type: ignore[arg-type]
    return ResourceValidationArgs(
        resource_type, props, f"urn:pulumi:prod::p::{resource_type}::{name}", name, opts, None
    )


def test_pulumi_pack_levels_and_violations() -> None:
    policies = {p.name: p for p in policies_for("prod")}
    assert "accepted-exceptions" in policies
    assert policies["logs-retention"].enforcement_level is not None
    assert policies["logs-retention"].enforcement_level.value == "mandatory"
    assert {p.name: p for p in policies_for("dev")}[
        "sagemaker-data-capture"
    ].enforcement_level.value == "advisory"  # type: ignore[union-attr]
    reported: list[str] = []
    policy = policies["logs-retention"]
    assert isinstance(policy, ResourceValidationPolicy)
    policy.validate(
        _args("aws:cloudwatch/logGroup:LogGroup", {"retentionInDays": 30}),
        lambda m, u=None: reported.append(m),
    )
    assert reported
    assert "below 365" in reported[0]
    assert "Fix:" in reported[0]
    reported.clear()
    policy.validate(
        _args("aws:cloudwatch/logGroup:LogGroup", {"retentionInDays": 400}),
        lambda m, u=None: reported.append(m),
    )
    assert reported == []


def test_pack_environment_from_env() -> None:
    assert pack_environment({"MLOPS_ENVIRONMENT": "staging", "PULUMI_STACK": "prod"}) == "staging"
    assert pack_environment({"PULUMI_STACK": "dev"}) == "dev"
    assert pack_environment({"PULUMI_STACK": "feature-x"}) == "prod"


def test_pack_project_file_points_at_the_project_venv() -> None:
    text = (Path(__file__).resolve().parents[3] / "policies" / "PulumiPolicy.yaml").read_text()
    assert "runtime:" in text
    assert "virtualenv: ../.venv" in text


# -- the IAM dataset ---------------------------------------------------------------------------


def test_iam_dataset_actions_and_arns() -> None:
    assert iam_data.data_version().startswith("0.1.")
    (get_object,) = iam_data.actions_matching("s3:GetObject")
    assert any(iam_data.arn_matches_format("arn:aws:s3:::b/k/*", f) for f in get_object.arn_formats)
    assert not any(iam_data.arn_matches_format("arn:aws:s3:::b", f) for f in get_object.arn_formats)
    assert len(iam_data.actions_matching("sagemaker:Describe*")) > 10
    assert iam_data.actions_matching("sagemaker:NoSuchAction") == []
    assert not iam_data.service_exists("nosuchservice")
    (describe,) = iam_data.actions_matching("logs:DescribeLogGroups")
    assert describe.arn_formats == ()
    fmt = "arn:${Partition}:sagemaker:${Region}:${Account}:endpoint/${EndpointName}"
    assert iam_data.arn_matches_format("arn:aws:sagemaker:*:123456789012:endpoint/mlops-*", fmt)
    assert not iam_data.arn_matches_format("arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/x", fmt)


def test_prod_with_an_endpoint_passes_the_sagemaker_rules(tmp_path: Path) -> None:
    """The shipped prod config with an approved package declares the guarded endpoint; it passes."""
    text = (STACKS_DIR / "Pulumi.prod.yaml").read_text()
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-prod-churn/1"
    assert 'modelPackageArn: ""' in text
    (tmp_path / "Pulumi.prod.yaml").write_text(
        text.replace('modelPackageArn: ""', f'modelPackageArn: "{arn}"')
    )
    resources = resources_from_records(synthesize("prod", tmp_path).resources)
    assert {
        "aws:sagemaker/model:Model",
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        "aws:sagemaker/endpoint:Endpoint",
    } <= {r.type for r in resources}
    violations = evaluate(resources, "prod")
    assert [f"{v.rule.id}: {v.message}" for v in violations if v.blocking] == []
    assert not [v for v in violations if v.resource.type.startswith("aws:sagemaker/")]
