"""The platform VPC: private and public subnets across AZs, NAT, VPC endpoints and flow logs."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from components._util import account_id, child_opts, partition, policy_document, service_trust_policy

# Interface endpoints the platform's workloads call from private subnets, so that SageMaker,
# EKS nodes, EMR jobs and Airflow reach AWS APIs without crossing the NAT. Service names are
# ``com.amazonaws.<region>.<suffix>``:
# https://docs.aws.amazon.com/vpc/latest/privatelink/aws-services-privatelink-support.html
DEFAULT_INTERFACE_ENDPOINTS: tuple[str, ...] = (
    "sagemaker.api",
    "sagemaker.runtime",
    "sts",
    "ecr.api",
    "ecr.dkr",
    "logs",
    "glue",
    "athena",
)


@dataclass(frozen=True, kw_only=True)
class NetworkArgs:
    """Arguments of :class:`Network`."""

    cidr: str
    """VPC IPv4 CIDR (RFC 1918, /16 to /20)."""
    availability_zones: Sequence[str]
    """AZ names to span; at least two."""
    region: str
    """Region, used for endpoint service names."""
    flow_log_key_arn: pulumi.Input[str]
    """KMS key (the platform's logs key) for the flow-log log group."""
    nat_strategy: Literal["single", "per_az"] = "per_az"
    """``single`` (one NAT gateway) or ``per_az`` (one per AZ, no cross-AZ dependency for egress)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every taggable child."""
    interface_endpoints: Sequence[str] = DEFAULT_INTERFACE_ENDPOINTS
    """Interface endpoint service suffixes; defaults to :data:`DEFAULT_INTERFACE_ENDPOINTS`."""
    flow_log_retention_days: int = 365
    """Retention of the flow-log log group."""
    flow_log_traffic: Literal["ALL", "ACCEPT", "REJECT"] = "ALL"
    """``ALL``, ``ACCEPT`` or ``REJECT``."""
    training_internet_egress: bool = True
    """Let training jobs reach HTTPS on the internet through the NAT (pip installs a job's
    ``requirements.txt``); False keeps them to S3 and the VPC endpoints only."""

    def __post_init__(self) -> None:
        if len(self.availability_zones) < 2:
            raise ValueError(
                f"NetworkArgs.availability_zones has {len(self.availability_zones)}: need at least 2 "
                "(EKS, MWAA and SageMaker VPC configs all require subnets in two AZs)"
            )
        if len(self.availability_zones) > 4:
            raise ValueError("NetworkArgs.availability_zones: at most 4 are supported by the subnet plan")
        net = ipaddress.IPv4Network(self.cidr)
        if net.prefixlen > 20:
            raise ValueError(f"NetworkArgs.cidr={self.cidr}: use /20 or larger so every subnet fits")


def subnet_plan(cidr: str, az_count: int) -> tuple[list[str], list[str]]:
    """Split the VPC CIDR into per-AZ private and public subnets.

    The VPC is cut into eight equal blocks. Private subnets take one block each (the large
    ones: EKS pods use VPC IPs); public subnets share the last block, cut into eight, because
    they hold only NAT gateways and load balancers. For a /16: private /19s, public /22s.
    """
    net = ipaddress.IPv4Network(cidr)
    blocks = list(net.subnets(prefixlen_diff=3))
    private = [str(b) for b in blocks[:az_count]]
    public = [str(b) for b in list(blocks[-1].subnets(prefixlen_diff=3))[:az_count]]
    return private, public


class Network(pulumi.ComponentResource):
    """A VPC over two or more AZs with private/public subnets, NAT, endpoints and flow logs.

    * Private subnets (one per AZ) route to the internet only through NAT; public subnets hold the
      NAT gateways. Subnets carry the EKS load-balancer role tags.
    * The default security group is emptied (no rules), so nothing uses it by accident.
    * An S3 gateway endpoint on the private route tables, and interface endpoints with private DNS
      behind a security group that allows only HTTPS from the VPC CIDR.
    * VPC flow logs to a KMS-encrypted CloudWatch log group, written by a role that only
      ``vpc-flow-logs.amazonaws.com`` in this account can assume.

    Outputs:
        vpc_id, vpc_cidr, private_subnet_ids, public_subnet_ids, endpoint_security_group_id,
        training_security_group_id, flow_log_group_name, nat_gateway_ids.
    """

    vpc_id: pulumi.Output[str]
    vpc_cidr: pulumi.Output[str]
    private_subnet_ids: list[pulumi.Output[str]]
    public_subnet_ids: list[pulumi.Output[str]]
    private_route_table_ids: list[pulumi.Output[str]]
    endpoint_security_group_id: pulumi.Output[str]
    training_security_group_id: pulumi.Output[str]
    flow_log_group_name: pulumi.Output[str]
    nat_gateway_ids: list[pulumi.Output[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:network:Network", name, None, opts)
        tags = dict(args.tags)
        azs = list(args.availability_zones)
        private_cidrs, public_cidrs = subnet_plan(args.cidr, len(azs))

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_support=True,  # required for interface endpoints' private DNS
            enable_dns_hostnames=True,
            tags={**tags, "Name": f"{name}-vpc"},
            opts=child_opts(self),
        )
        # Take over the default security group and leave it with no rules (CKV2_AWS_12).
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=vpc.id,
            tags={**tags, "Name": f"{name}-default-do-not-use"},
            opts=child_opts(self),
        )
        igw = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags={**tags, "Name": f"{name}-igw"}, opts=child_opts(self)
        )

        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt", vpc_id=vpc.id, tags={**tags, "Name": f"{name}-public"}, opts=child_opts(self)
        )
        aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_rt.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=igw.id,
            opts=child_opts(self),
        )

        public_subnets: list[aws.ec2.Subnet] = []
        private_subnets: list[aws.ec2.Subnet] = []
        for i, az in enumerate(azs):
            public = aws.ec2.Subnet(
                f"{name}-public-{i}",
                vpc_id=vpc.id,
                cidr_block=public_cidrs[i],
                availability_zone=az,
                map_public_ip_on_launch=False,  # nothing in the platform needs an auto public IP
                tags={**tags, "Name": f"{name}-public-{az}", "tier": "public", "kubernetes.io/role/elb": "1"},
                opts=child_opts(self),
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{i}-rta",
                subnet_id=public.id,
                route_table_id=public_rt.id,
                opts=child_opts(self),
            )
            public_subnets.append(public)
            private_subnets.append(
                aws.ec2.Subnet(
                    f"{name}-private-{i}",
                    vpc_id=vpc.id,
                    cidr_block=private_cidrs[i],
                    availability_zone=az,
                    tags={
                        **tags,
                        "Name": f"{name}-private-{az}",
                        "tier": "private",
                        "kubernetes.io/role/internal-elb": "1",
                    },
                    opts=child_opts(self),
                )
            )

        nat_count = len(azs) if args.nat_strategy == "per_az" else 1
        nats: list[aws.ec2.NatGateway] = []
        for i in range(nat_count):
            eip = aws.ec2.Eip(
                f"{name}-nat-{i}-eip",
                domain="vpc",
                tags={**tags, "Name": f"{name}-nat-{i}"},
                opts=child_opts(self),
            )
            nats.append(
                aws.ec2.NatGateway(
                    f"{name}-nat-{i}",
                    allocation_id=eip.id,
                    subnet_id=public_subnets[i].id,
                    connectivity_type="public",
                    tags={**tags, "Name": f"{name}-nat-{azs[i]}"},
                    opts=child_opts(self, depends_on=[igw]),
                )
            )

        private_rts: list[aws.ec2.RouteTable] = []
        for i, subnet in enumerate(private_subnets):
            rt = aws.ec2.RouteTable(
                f"{name}-private-{i}-rt",
                vpc_id=vpc.id,
                tags={**tags, "Name": f"{name}-private-{azs[i]}"},
                opts=child_opts(self),
            )
            aws.ec2.Route(
                f"{name}-private-{i}-default",
                route_table_id=rt.id,
                destination_cidr_block="0.0.0.0/0",
                # per_az: each AZ egresses through its own NAT; single: all through NAT 0
                nat_gateway_id=nats[i if args.nat_strategy == "per_az" else 0].id,
                opts=child_opts(self),
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{i}-rta", subnet_id=subnet.id, route_table_id=rt.id, opts=child_opts(self)
            )
            private_rts.append(rt)

        # --- VPC endpoints -------------------------------------------------------------------
        endpoint_sg = aws.ec2.SecurityGroup(
            f"{name}-endpoints-sg",
            vpc_id=vpc.id,
            description="Interface VPC endpoints: HTTPS from inside the VPC only",
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    description="HTTPS from the VPC",
                    protocol="tcp",
                    from_port=443,
                    to_port=443,
                    cidr_blocks=[args.cidr],
                )
            ],
            # No egress rules: endpoint network interfaces only answer requests. (The provider
            # removes the default allow-all egress rule when none is declared.)
            tags={**tags, "Name": f"{name}-endpoints"},
            opts=child_opts(self),
        )
        training_sg = self._training_security_group(name, args, vpc.id, endpoint_sg.id, tags)
        aws.ec2.VpcEndpoint(
            f"{name}-s3-gateway",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[rt.id for rt in private_rts],
            tags={**tags, "Name": f"{name}-s3"},
            opts=child_opts(self),
        )
        for service in args.interface_endpoints:
            aws.ec2.VpcEndpoint(
                f"{name}-{service.replace('.', '-')}-endpoint",
                vpc_id=vpc.id,
                service_name=f"com.amazonaws.{args.region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[s.id for s in private_subnets],
                security_group_ids=[endpoint_sg.id],
                tags={**tags, "Name": f"{name}-{service}"},
                opts=child_opts(self),
            )

        # --- flow logs -------------------------------------------------------------------------
        account = account_id(self)
        part = partition(self)
        flow_log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=f"/mlops/{name}/vpc-flow-logs",
            retention_in_days=args.flow_log_retention_days,
            kms_key_id=args.flow_log_key_arn,
            tags=tags,
            opts=child_opts(self),
        )
        # Trust and permissions from "Publish flow logs to CloudWatch Logs" (IAM role section):
        # https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html
        flow_role = aws.iam.Role(
            f"{name}-flow-logs-role",
            description="Lets VPC Flow Logs write to the platform's flow-log group",
            assume_role_policy=service_trust_policy(
                ["vpc-flow-logs.amazonaws.com"],
                source_account=account,
                source_arn_like=pulumi.Output.format(
                    "arn:{0}:ec2:{1}:{2}:vpc-flow-log/*", part, args.region, account
                ),
            ),
            tags=tags,
            opts=child_opts(self),
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs-write",
            role=flow_role.id,
            policy=policy_document(
                [
                    {
                        "Sid": "WriteFlowLogs",
                        "Effect": "Allow",
                        "Action": [
                            "logs:CreateLogStream",
                            "logs:PutLogEvents",
                            "logs:DescribeLogGroups",
                            "logs:DescribeLogStreams",
                        ],
                        "Resource": [flow_log_group.arn, pulumi.Output.concat(flow_log_group.arn, ":*")],
                    }
                ]
            ),
            opts=child_opts(self),
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=vpc.id,
            traffic_type=args.flow_log_traffic,
            log_destination_type="cloud-watch-logs",
            log_destination=flow_log_group.arn,
            iam_role_arn=flow_role.arn,
            max_aggregation_interval=60,
            tags=tags,
            opts=child_opts(self),
        )

        self.vpc_id = vpc.id
        self.vpc_cidr = vpc.cidr_block
        self.private_subnet_ids = [s.id for s in private_subnets]
        self.public_subnet_ids = [s.id for s in public_subnets]
        self.private_route_table_ids = [rt.id for rt in private_rts]
        self.endpoint_security_group_id = endpoint_sg.id
        self.training_security_group_id = training_sg.id
        self.flow_log_group_name = flow_log_group.name
        self.nat_gateway_ids = [n.id for n in nats]
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "vpc_cidr": self.vpc_cidr,
                "private_subnet_ids": self.private_subnet_ids,
                "public_subnet_ids": self.public_subnet_ids,
                "private_route_table_ids": self.private_route_table_ids,
                "endpoint_security_group_id": self.endpoint_security_group_id,
                "training_security_group_id": self.training_security_group_id,
                "flow_log_group_name": self.flow_log_group_name,
                "nat_gateway_ids": self.nat_gateway_ids,
            }
        )

    def _training_security_group(
        self,
        name: str,
        args: NetworkArgs,
        vpc_id: pulumi.Input[str],
        endpoint_sg_id: pulumi.Input[str],
        tags: Mapping[str, str],
    ) -> aws.ec2.SecurityGroup:
        """The security group of SageMaker training and processing jobs: no ingress, HTTPS out.

        A job in a VPC reaches S3 only through the gateway endpoint and the other AWS APIs only through
        the interface endpoints, so its security group must allow that egress (the endpoints' own group
        allows none, and a group with no egress rule blocks all outbound traffic). Egress: HTTPS to the
        regional S3 prefix list and to the interface endpoints' security group; HTTPS to anywhere for
        package indexes (pip) through the NAT. No ingress: distributed training between instances of one
        job would need a self-referencing rule, which the platform's single-instance jobs do not use.
        https://docs.aws.amazon.com/sagemaker/latest/dg/train-vpc.html
        """
        s3 = aws.ec2.get_prefix_list_output(
            name=f"com.amazonaws.{args.region}.s3", opts=pulumi.InvokeOptions(parent=self)
        )
        internet = [
            aws.ec2.SecurityGroupEgressArgs(
                description="HTTPS to package indexes through the NAT gateway",
                protocol="tcp",
                from_port=443,
                to_port=443,
                cidr_blocks=["0.0.0.0/0"],
            )
        ]
        return aws.ec2.SecurityGroup(
            f"{name}-training-sg",
            vpc_id=vpc_id,
            description="SageMaker training/processing jobs: no ingress; HTTPS to S3, the VPC endpoints, NAT",
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    description="HTTPS to S3 (gateway endpoint prefix list)",
                    protocol="tcp",
                    from_port=443,
                    to_port=443,
                    prefix_list_ids=[s3.id],
                ),
                aws.ec2.SecurityGroupEgressArgs(
                    description="HTTPS to the interface VPC endpoints",
                    protocol="tcp",
                    from_port=443,
                    to_port=443,
                    security_groups=[endpoint_sg_id],
                ),
                *(internet if args.training_internet_egress else []),
            ],
            tags={**tags, "Name": f"{name}-training"},
            opts=child_opts(self),
        )
