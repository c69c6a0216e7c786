"""The committed staging/prod files' example accounts and keys are refused in a real account."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from stacks.config import load_config
from stacks.config.placeholders import PlaceholderConfigError, placeholder_paths, refuse_placeholders
from stacks.synth import RecordingMocks, read_stack_config, run_program, stack_config_file


def _config(stack: str) -> Any:
    from pulumi.runtime import config as runtime_config

    runtime_config.set_all_config(read_stack_config(stack_config_file(stack)), [])
    return load_config()


def test_the_committed_files_name_their_placeholders() -> None:
    assert placeholder_paths(_config("dev")) == []
    for stack in ("staging", "prod"):
        found = placeholder_paths(_config(stack))
        assert "cluster.adminRoleArns[0]" in found
    prod = placeholder_paths(_config("prod"))
    assert {"delivery.promoteFrom.mlKeyArn", "delivery.promoteFrom.artifactsBucketName"} <= set(prod)


def test_placeholders_pass_in_the_documentation_account_and_fail_elsewhere() -> None:
    assert refuse_placeholders("prod", "123456789012", ["cluster.adminRoleArns[0]"]) == "123456789012"
    assert refuse_placeholders("prod", "210987654321", []) == "210987654321"
    with pytest.raises(
        PlaceholderConfigError, match=r"Pulumi\.prod\.yaml .*cluster\.adminRoleArns\[0\].*210987654321"
    ):
        refuse_placeholders("prod", "210987654321", ["cluster.adminRoleArns[0]"])


def _synth(stack: str, account_id: str) -> Mapping[str, Any]:
    from stacks.platform import build

    config = read_stack_config(stack_config_file(stack))
    mocks = RecordingMocks(region=config.get("aws:region", "us-east-1"), account_id=account_id)
    return run_program(lambda: build(load_config()).outputs, config, stack=stack, mocks=mocks).outputs


def test_applying_the_staging_file_to_a_real_account_is_refused_naming_the_keys() -> None:
    with pytest.raises(Exception, match=r"cluster\.adminRoleArns\[0\]") as info:
        _synth("staging", "210987654321")
    assert "docs/first-deploy.md" in str(info.value)
