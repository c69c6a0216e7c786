"""An EKS cluster with a tainted GPU node group beside the system nodes, and a public endpoint for one office.

Only pods that tolerate the ``nvidia.com/gpu`` taint land on the GPU nodes; Spot keeps them cheap.
"""

from __future__ import annotations

from typing import Any

from components.cluster import Cluster, ClusterArgs, NodeGroupSpec, Taint

ACCOUNT = "123456789012"


def main() -> dict[str, Any]:
    """Declare the cluster; return its name and OIDC provider ARN."""
    # --8<-- [start:cluster]
    cluster = Cluster(
        "vision",
        ClusterArgs(
            kubernetes_version="1.35",
            subnet_ids=["subnet-0a1b2c3d", "subnet-1a2b3c4d"],
            secrets_key_arn=f"arn:aws:kms:us-east-1:{ACCOUNT}:key/ml",
            log_key_arn=f"arn:aws:kms:us-east-1:{ACCOUNT}:key/logs",
            region="us-east-1",
            endpoint_public_access=True,
            public_access_cidrs=["203.0.113.0/28"],  # the office egress range only
            admin_role_arns=[f"arn:aws:iam::{ACCOUNT}:role/platform-admin"],
            node_groups=[
                NodeGroupSpec(name="system", instance_types=["m6i.large"], min_size=2, desired_size=2),
                NodeGroupSpec(
                    name="gpu",
                    instance_types=["g5.xlarge", "g5.2xlarge"],
                    capacity_type="SPOT",
                    min_size=0,
                    desired_size=0,
                    max_size=4,
                    disk_size_gib=200,
                    ami_type="AL2023_x86_64_NVIDIA",
                    labels={"workload": "gpu"},
                    taints=[Taint(key="nvidia.com/gpu", value="true", effect="NO_SCHEDULE")],
                ),
            ],
        ),
    )
    # --8<-- [end:cluster]
    return {"cluster": cluster.cluster_name, "oidc": cluster.oidc_provider_arn}
