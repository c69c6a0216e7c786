"""`mlops synth`: the offline synth runs the real program for each stack and prints the graph."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlops_cli.main import app
from stacks.platform import OUTPUT_KEYS

runner = CliRunner()


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_synth_json_lists_resources_with_type_tokens_and_inputs(stack: str) -> None:
    result = runner.invoke(app, ["synth", "--stack", stack, "--json"])
    assert result.exit_code == 0, result.output
    resources = json.loads(result.stdout)
    assert {"urn", "type", "name", "parent", "inputs"} <= set(resources[0])
    types = {r["type"] for r in resources}
    assert {
        "aws:s3/bucket:Bucket",
        "aws:kms/key:Key",
        "aws:ec2/vpc:Vpc",
        "mlops:datalake:DataLake",
        "mlops:network:Network",
        "mlops:encryption:Encryption",
    } <= types
    urns = {r["urn"] for r in resources}
    for r in resources:
        assert r["urn"].startswith(f"urn:pulumi:{stack}::mlops-platform::")
        if r["custom"]:
            assert r["parent"] in urns, f"{r['name']} is not parented to a component"
    vpc = next(r for r in resources if r["type"] == "aws:ec2/vpc:Vpc")
    assert vpc["inputs"]["cidrBlock"].startswith("10.")


def test_synth_summary_table() -> None:
    result = runner.invoke(app, ["synth", "--stack", "prod"])
    assert result.exit_code == 0, result.output
    assert "stack prod" in result.stdout
    assert "DataLake mlops-prod" in result.stdout
    assert "aws:s3/bucket:Bucket" in result.stdout


def test_synth_outputs_are_the_documented_keys() -> None:
    result = runner.invoke(app, ["synth", "--stack", "dev", "--outputs"])
    assert result.exit_code == 0, result.output
    outputs = json.loads(result.stdout)
    assert set(outputs) == set(OUTPUT_KEYS)
    assert outputs["environment"] == "dev"
    assert outputs["rawBucket"].startswith("mlops-dev-raw-")


def test_unknown_stack_is_a_clear_error() -> None:
    result = runner.invoke(app, ["synth", "--stack", "qa"])
    assert result.exit_code == 2
    assert "no stack config Pulumi.qa.yaml" in result.output
    assert "known stacks: dev, prod, staging" in result.output


def test_invalid_stack_config_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.bad.yaml").write_text(
        "config:\n  aws:region: us-east-1\n  mlops-platform:environment: bad\n"
        "  mlops-platform:owner: x\n  mlops-platform:costCenter: y\n"
        "  mlops-platform:network:\n    cidr: 52.0.0.0/16\n"
    )
    result = runner.invoke(app, ["synth", "--stack", "bad", "--stacks-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "mlops-platform:network.cidr" in result.output
    assert "mlops-platform:environment" in result.output
