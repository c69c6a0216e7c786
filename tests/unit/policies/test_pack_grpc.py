"""The pack as the Pulumi CLI runs it: policies/__main__.py serving pulumi's Analyzer gRPC protocol.

The engine starts the pack and talks to the port it prints; here the test plays the engine over
loopback, so ``pulumi preview --policy-pack policies`` is exercised without the Pulumi CLI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from policies.engine import all_rules

ROOT = Path(__file__).resolve().parents[3]
MANDATORY = analyzer_pb2.EnforcementLevel.MANDATORY


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    env = {**os.environ, "PULUMI_STACK": "prod"}
    env.pop("MLOPS_ENVIRONMENT", None)
    proc = subprocess.Popen(
        [sys.executable, "-u", str(ROOT / "policies" / "__main__.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT / "policies",
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().decode().strip())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()


def _struct(props: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(props)
    return s


def _urn(type_token: str, name: str) -> str:
    return f"urn:pulumi:prod::mlops-platform::{type_token}::{name}"


def test_pack_lists_every_rule_at_prod_levels(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), timeout=60)
    assert info.name == "mlops-platform"
    levels = {p.name: p.enforcementLevel for p in info.policies}
    assert set(levels) == {r.id for r in all_rules()} | {"accepted-exceptions"}
    assert levels["logs-retention"] == MANDATORY
    assert levels["sagemaker-prod-deployment-guardrails"] == MANDATORY  # advisory outside prod


def test_resource_policy_over_grpc(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    token = "aws:cloudwatch/logGroup:LogGroup"
    tags = {"owner": "a", "environment": "prod", "cost-center": "c"}
    bad = analyzer_pb2.AnalyzeRequest(
        type=token,
        properties=_struct({"retentionInDays": 30, "tags": tags}),
        urn=_urn(token, "lg"),
        name="lg",
    )
    names = {d.policyName for d in analyzer.Analyze(bad, timeout=60).diagnostics}
    assert names == {"logs-kms", "logs-retention"}
    good = analyzer_pb2.AnalyzeRequest(
        type=token,
        properties=_struct(
            {"retentionInDays": 365, "kmsKeyId": "arn:aws:kms:us-east-1:1:key/k", "tags": tags}
        ),
        urn=_urn(token, "lg2"),
        name="lg2",
    )
    assert list(analyzer.Analyze(good, timeout=60).diagnostics) == []


def test_list_inputs_reach_rules_through_the_proxies(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    """pulumi-policy passes list inputs as Sequence proxies, not lists: rules must read them alike."""
    token = "aws:eks/cluster:Cluster"
    props = {
        "version": "1.35",
        "enabledClusterLogTypes": ["api", "audit", "authenticator", "controllerManager", "scheduler"],
        "vpcConfig": {"endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]},
        "encryptionConfig": {
            "resources": ["secrets"],
            "provider": {"keyArn": "arn:aws:kms:us-east-1:1:key/k"},
        },
        "tags": {"owner": "a", "environment": "prod", "cost-center": "c"},
    }
    request = analyzer_pb2.AnalyzeRequest(
        type=token, properties=_struct(props), urn=_urn(token, "c"), name="c"
    )
    assert [d.policyName for d in analyzer.Analyze(request, timeout=60).diagnostics] == []
    props["enabledClusterLogTypes"] = ["api"]
    props["vpcConfig"] = {"endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]}
    request = analyzer_pb2.AnalyzeRequest(
        type=token, properties=_struct(props), urn=_urn(token, "c"), name="c"
    )
    names = {d.policyName for d in analyzer.Analyze(request, timeout=60).diagnostics}
    assert names == {"eks-control-plane-logging", "eks-endpoint-private"}


def test_stack_policy_links_config_resources_by_dependency(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    """In a preview the bucket's name is unknown: the link is the property dependency."""
    bucket_urn = _urn("aws:s3/bucket:Bucket", "data")
    bucket = analyzer_pb2.AnalyzerResource(
        type="aws:s3/bucket:Bucket", properties=_struct({}), urn=bucket_urn, name="data"
    )
    versioning_token = "aws:s3/bucketVersioning:BucketVersioning"
    versioning = analyzer_pb2.AnalyzerResource(
        type=versioning_token,
        properties=_struct({"versioningConfiguration": {"status": "Enabled"}}),
        urn=_urn(versioning_token, "data-versioning"),
        name="data-versioning",
        propertyDependencies={"bucket": analyzer_pb2.AnalyzerPropertyDependencies(urns=[bucket_urn])},
    )
    with_versioning = analyzer.AnalyzeStack(
        analyzer_pb2.AnalyzeStackRequest(resources=[bucket, versioning]), timeout=60
    ).diagnostics
    alone = analyzer.AnalyzeStack(
        analyzer_pb2.AnalyzeStackRequest(resources=[bucket]), timeout=60
    ).diagnostics
    assert "s3-bucket-versioning" not in {d.policyName for d in with_versioning}
    flagged = [d for d in alone if d.policyName == "s3-bucket-versioning"]
    assert flagged
    assert flagged[0].urn == bucket_urn
