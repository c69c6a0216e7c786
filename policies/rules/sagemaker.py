"""SageMaker: encrypted endpoint configs with data capture, isolated models, no internet for
notebooks/Studio, registry policies limited to named accounts, guarded prod deployments."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from policies.core import Context, Level, as_list, is_truthy, policy_statements, principals, resource_rule

MODEL = "aws:sagemaker/model:Model"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
NOTEBOOK = "aws:sagemaker/notebookInstance:NotebookInstance"
DOMAIN = "aws:sagemaker/domain:Domain"
GROUP_POLICY = "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy"

# Instance families with local NVMe instance storage: AWS rejects a KmsKeyId on their endpoint
# configs (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpointConfig.html).
_LOCAL_NVME = re.compile(r"^ml\.(?:[a-z]+\d+[a-z]*d[a-z]*|g5|g6|g6e|p5|p5e|trn1|trn1n)\.")
_ACCOUNT_ROOT = re.compile(r"^(?:\d{12}|arn:aws[a-z-]*:iam::\d{12}:root)$")


def _variants(props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [v for v in as_list(props.get("productionVariants")) if isinstance(v, Mapping)]


@resource_rule(
    "sagemaker-endpoint-config-kms",
    [ENDPOINT_CONFIG],
    why="The ML storage volume of every endpoint instance holds the model artifact; a customer key keeps it under the key policy.",
    fix="Set kmsKeyArn to the ML key (not for instance types with local NVMe storage, which AWS encrypts and rejects a key for).",
)
def endpoint_config_kms(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Endpoint configs encrypt instance storage with a KMS key, except NVMe or serverless variants.

    Mirrors: CKV_AWS_98
    """
    variants = _variants(props)
    exempt = all(
        v.get("serverlessConfig") or _LOCAL_NVME.match(str(v.get("instanceType", ""))) for v in variants
    )
    if variants and not exempt and not props.get("kmsKeyArn"):
        yield "no kmsKeyArn for the endpoint's ML storage volumes"


@resource_rule(
    "sagemaker-data-capture",
    [ENDPOINT_CONFIG],
    level=Level.ADVISORY,
    staging=Level.MANDATORY,
    prod=Level.MANDATORY,
    why="Drift monitoring and retraining read captured requests; without capture a degrading model goes unnoticed.",
    fix="Set endpoint.captureEnabled: true in the stack config (capture is encrypted with the ML key).",
)
def data_capture(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Endpoints capture requests and responses, encrypted with KMS (mandatory in staging and prod).

    Mirrors: none (ML-specific; DataCaptureConfig.KmsKeyId in the API reference)
    """
    capture = props.get("dataCaptureConfig") or {}
    if not is_truthy(capture.get("enableCapture")):
        yield "data capture is not enabled"
    elif not capture.get("kmsKeyId"):
        yield "data capture is not encrypted with a KMS key"


@resource_rule(
    "sagemaker-prod-multi-instance",
    [ENDPOINT_CONFIG],
    level=Level.ADVISORY,
    prod=Level.MANDATORY,
    why="A single instance is a single point of failure: an AZ outage or instance replacement takes the endpoint down.",
    fix="Set endpoint.instanceCount to 2 or more in the prod stack config.",
)
def multi_instance(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Prod production variants run on more than one instance.

    Mirrors: Security Hub SageMaker.4
    """
    if not ctx.is_prod:
        return
    for v in _variants(props):
        count = v.get("initialInstanceCount")
        if not v.get("serverlessConfig") and (count is None or float(count) < 2):
            yield f"variant {v.get('variantName')!r} has {count!r} instance(s)"


@resource_rule(
    "sagemaker-model-isolation-or-vpc",
    [MODEL],
    why="A model container with internet access can exfiltrate data or pull code; isolate it or keep it in the VPC.",
    fix="Set enableNetworkIsolation: true, or give the model a vpcConfig in the private subnets.",
)
def model_isolation(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Models run with network isolation or inside the VPC.

    Mirrors: CKV_AWS_370
    """
    if not is_truthy(props.get("enableNetworkIsolation")) and not props.get("vpcConfig"):
        yield "neither enableNetworkIsolation nor vpcConfig is set"


@resource_rule(
    "sagemaker-no-direct-internet",
    [NOTEBOOK, DOMAIN],
    why="Notebooks and Studio apps with direct internet access bypass the VPC's egress controls and endpoints.",
    fix="Set directInternetAccess: Disabled (notebooks) or appNetworkAccessType: VpcOnly (Studio domains).",
)
def no_direct_internet(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Notebook instances and Studio domains have no direct internet access.

    Mirrors: CKV_AWS_122
    """
    if resource_type == NOTEBOOK and props.get("directInternetAccess") != "Disabled":
        yield f"directInternetAccess is {props.get('directInternetAccess') or 'Enabled (default)'!r}"
    if resource_type == DOMAIN and props.get("appNetworkAccessType") != "VpcOnly":
        yield f"appNetworkAccessType is {props.get('appNetworkAccessType') or 'PublicInternetOnly (default)'!r}"


@resource_rule(
    "sagemaker-package-group-policy-named-accounts",
    [GROUP_POLICY],
    why="A model package group shared with * lets any account deploy (and read the artifacts of) the platform's models.",
    fix="List the consuming accounts in registry.crossAccountIds; the policy names each account root.",
)
def group_policy_named(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Model package group policies grant only named accounts.

    Mirrors: none (ML-specific)
    """
    for s in policy_statements(props.get("resourcePolicy")):
        if s.get("Effect") != "Allow":
            continue
        for kind, value in principals(s):
            if kind != "AWS" or not _ACCOUNT_ROOT.match(value):
                yield f"statement {s.get('Sid', '(no Sid)')!r} grants {kind} {value}, not a named account"


@resource_rule(
    "sagemaker-prod-deployment-guardrails",
    [ENDPOINT],
    level=Level.ADVISORY,
    prod=Level.MANDATORY,
    why="An all-at-once update without rollback alarms puts a bad model in front of every prod request.",
    fix="Use endpoint.strategy CANARY or LINEAR with rollback alarms (the ModelEndpoint component wires them).",
)
def deployment_guardrails(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Prod endpoints update blue/green with auto-rollback on CloudWatch alarms.

    Mirrors: none (ML-specific; AWS ML Lens MLREL-11)
    """
    cfg = props.get("deploymentConfig") or {}
    if not cfg.get("blueGreenUpdatePolicy"):
        yield "no blue/green update policy"
    alarms = as_list((cfg.get("autoRollbackConfiguration") or {}).get("alarms"))
    if not alarms:
        yield "no auto-rollback alarms"
