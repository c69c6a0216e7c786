"""VPC and EC2: flow logs, no world-open ingress, closed default security group, IMDSv2."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from policies.core import Context, Level, Resource, Stack, as_list, resource_rule, stack_rule, tags_of

VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SUBNET = "aws:ec2/subnet:Subnet"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"

WORLD = ("0.0.0.0/0", "::/0")
LOAD_BALANCER_TAG = ("exposure", "public-load-balancer")
"""A security group tagged ``exposure=public-load-balancer`` fronts a public load balancer by design."""


@stack_rule(
    "vpc-flow-logs",
    why="Flow logs are the only record of which addresses talked to the platform's subnets, for incident response.",
    fix="Add an aws.ec2.FlowLog for the VPC (the Network component does, to an encrypted log group).",
)
def flow_logs(stack: Stack, ctx: Context) -> Iterator[tuple[Resource, str]]:
    """Every VPC has flow logs.

    Mirrors: CKV2_AWS_11, vpc-flow-logs-enabled
    """
    for vpc in stack.of_type(VPC):
        if not stack.referencing(FLOW_LOG, "vpcId", vpc):
            yield vpc, "no FlowLog references this VPC"


def _world_cidrs(props: Mapping[str, Any]) -> list[str]:
    found = [c for c in as_list(props.get("cidrBlocks")) + as_list(props.get("ipv6CidrBlocks")) if c in WORLD]
    for key in ("cidrIpv4", "cidrIpv6"):
        if props.get(key) in WORLD:
            found.append(str(props[key]))
    return found


@resource_rule(
    "sg-no-world-ingress",
    [SECURITY_GROUP, INGRESS_RULE, SG_RULE],
    why="Ingress from 0.0.0.0/0 exposes the port to the whole internet; only a public load balancer needs that.",
    fix="Allow the VPC CIDR or a source security group; tag a load balancer's group exposure=public-load-balancer.",
)
def no_world_ingress(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """No security group allows ingress from anywhere, except load balancers by design.

    Mirrors: CKV_AWS_24, CKV_AWS_25, CKV_AWS_260, CKV_AWS_277
    """
    if tags_of(props).get(LOAD_BALANCER_TAG[0]) == LOAD_BALANCER_TAG[1]:
        return
    if resource_type == SECURITY_GROUP:
        for rule in as_list(props.get("ingress")):
            if isinstance(rule, Mapping) and (cidrs := _world_cidrs(rule)):
                yield f"ingress {rule.get('fromPort')}-{rule.get('toPort')} from {', '.join(cidrs)}"
    elif resource_type == SG_RULE and props.get("type") != "ingress":
        return
    elif cidrs := _world_cidrs(props):
        yield f"ingress from {', '.join(cidrs)}"


@resource_rule(
    "vpc-default-sg-closed",
    [DEFAULT_SG],
    why="Anything launched without a security group lands in the default one; it must allow nothing.",
    fix="Declare the DefaultSecurityGroup with no ingress and no egress rules.",
)
def default_sg_closed(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """The VPC's default security group allows no traffic.

    Mirrors: CKV2_AWS_12
    """
    if as_list(props.get("ingress")) or as_list(props.get("egress")):
        yield "the default security group has rules"


@resource_rule(
    "subnet-no-public-ip-on-launch",
    [SUBNET],
    level=Level.ADVISORY,
    why="Subnets that hand out public IPs make every instance reachable from the internet once a rule opens up.",
    fix="Set mapPublicIpOnLaunch: false; NAT gateways give private subnets egress.",
)
def no_public_ip(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Subnets do not assign public IPs on launch.

    Mirrors: CKV_AWS_130
    """
    if props.get("mapPublicIpOnLaunch") is True:
        yield "mapPublicIpOnLaunch is true"


@resource_rule(
    "ec2-imdsv2-required",
    [LAUNCH_TEMPLATE],
    why="IMDSv1 lets an SSRF in any pod read the node role's credentials; IMDSv2 with hop limit 2 stops that.",
    fix="Set metadataOptions.httpTokens: required (the Cluster component's launch templates do).",
)
def imdsv2(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Launch templates require IMDSv2 tokens.

    Mirrors: CKV_AWS_79, CKV_AWS_341
    """
    options = props.get("metadataOptions") or {}
    if options.get("httpTokens") != "required":
        yield f"metadataOptions.httpTokens is {options.get('httpTokens')!r}, not 'required'"


@resource_rule(
    "ec2-ebs-encrypted",
    [LAUNCH_TEMPLATE],
    why="Node volumes hold container images, logs and Spark shuffle data; they must be encrypted at rest.",
    fix="Set blockDeviceMappings[].ebs.encrypted: true.",
)
def ebs_encrypted(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Launch template EBS volumes are encrypted.

    Mirrors: CKV_AWS_8
    """
    for mapping in as_list(props.get("blockDeviceMappings")):
        ebs = mapping.get("ebs") if isinstance(mapping, Mapping) else None
        if isinstance(ebs, Mapping) and str(ebs.get("encrypted")).lower() != "true":
            yield f"volume {mapping.get('deviceName')} is not encrypted"
