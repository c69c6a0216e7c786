"""Replacements that would collide on a fixed physical name (issue 12 item 22).

Pulumi replaces create-before-delete by default: the new resource exists while the old one still
holds its name. A security group's name is unique per VPC, so a fixed ``name`` makes any replacement
of the group (a new VPC, a new description) fail; the platform gives groups a ``namePrefix``. Where
the name must stay (the MWAA environment, whose ARN the execution role's trust names), the resource
is deleted before it is replaced.
"""

from __future__ import annotations

from stacks.synth import SynthResult

SG = "aws:ec2/securityGroup:SecurityGroup"


def test_no_security_group_has_a_fixed_name(each_stack: SynthResult) -> None:
    groups = each_stack.of_type(SG)
    assert groups
    fixed = [g.name for g in groups if g.inputs.get("name")]
    assert fixed == [], f"security groups with a fixed name collide when replaced: {fixed}"


def test_prefixed_groups_keep_a_readable_prefix(each_stack: SynthResult) -> None:
    prefixes = sorted(g.inputs["namePrefix"] for g in each_stack.of_type(SG) if g.inputs.get("namePrefix"))
    env = f"mlops-{each_stack.stack}"
    assert f"{env}-airflow-" in prefixes
    # every prefix stays short enough for the provider's 26-character unique suffix (255 in all)
    assert all(p.startswith(env) and len(p) <= 255 - 26 for p in prefixes)


def test_mwaa_environment_is_deleted_before_it_is_replaced(each_stack: SynthResult) -> None:
    (env,) = each_stack.of_type("aws:mwaa/environment:Environment")
    assert env.inputs["name"] == f"mlops-{each_stack.stack}-airflow"
    assert env.delete_before_replace
