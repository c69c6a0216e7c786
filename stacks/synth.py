"""Offline synthesis: run the real stack program under Pulumi's mock engine and record the graph.

No Pulumi CLI, provider plugin, AWS credentials or network is involved. The program is the same
``stacks.platform.build`` that ``pulumi up`` runs; the config comes from the same
``stacks/Pulumi.<stack>.yaml`` file. Every resource registration is recorded with its type token,
URN, parent, resource options that matter for safety (``protect``, ``retainOnDelete``) and its
inputs exactly as the provider would receive them.

The recording mock is also what the component tests use (``tests/conftest.py``), and what the
offline rehearsal extends to create resources in an AWS emulator.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.sync_await import _sync_await

from stacks.config import PROJECT

ACCOUNT_ID = "123456789012"
"""The account the mock engine pretends to be (AWS's documentation account ID)."""

STACKS_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class RecordedResource:
    """One resource registration as the engine saw it."""

    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    protect: bool = False
    retain_on_delete: bool = False
    provider: str | None = None
    dependencies: tuple[str, ...] = ()
    """URNs of the resources in its ``depends_on`` (and of the inputs' resources)."""
    delete_before_replace: bool = False
    """The ``delete_before_replace`` option."""
    property_dependencies: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Per input (camelCase), the URNs of the resources its value came from (what the engine uses to
    find the dependents a delete-before-replace must delete first)."""

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape printed by ``mlops synth --json``."""
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "custom": self.custom,
            "protect": self.protect,
            "retainOnDelete": self.retain_on_delete,
            "inputs": self.inputs,
        }


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _stable_suffix(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:7]


class RecordingMocks(pulumi_mocks.Mocks):
    """Pulumi mocks that return realistic AWS identifiers (ARNs, IDs, names) for each resource.

    Outputs echo the inputs plus what AWS would compute: ``id``, ``arn`` and, where the resource
    auto-names, a physical name derived from the logical name. Identifiers are deterministic so
    two synths of the same stack are identical.
    """

    def __init__(self, region: str = "us-east-1", account_id: str = ACCOUNT_ID) -> None:
        self.region = region
        self.account_id = account_id

    # -- resources -------------------------------------------------------------------------
    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        """Return the ID and outputs AWS would give this resource (components get none)."""
        if not args.custom:
            return None, {}
        outputs = dict(args.inputs)
        type_token = args.typ
        module = type_token.split(":")[1].split("/")[0] if ":" in type_token else ""
        suffix = _stable_suffix(type_token, args.name)
        physical = f"{args.name}-{suffix}"
        rid = f"{args.name}-{suffix}"
        acct, region = self.account_id, self.region
        arn = f"arn:aws:{module}:{region}:{acct}:{args.name}/{rid}"

        if type_token == "aws:s3/bucket:Bucket":
            physical = outputs.get("bucket") or physical
            rid, arn = physical, f"arn:aws:s3:::{physical}"
            outputs.update(
                bucket=physical,
                bucketDomainName=f"{physical}.s3.amazonaws.com",
                bucketRegionalDomainName=f"{physical}.s3.{region}.amazonaws.com",
            )
        elif type_token == "aws:kms/key:Key":
            rid = str(uuid.UUID(hashlib.md5(args.name.encode()).hexdigest()))  # noqa: S324 - not security
            arn = f"arn:aws:kms:{region}:{acct}:key/{rid}"
            outputs["keyId"] = rid
        elif type_token == "aws:kms/alias:Alias":
            arn = f"arn:aws:kms:{region}:{acct}:{outputs.get('name', 'alias/' + physical)}"
        elif module == "iam" and type_token.endswith(("Role", "Policy", "InstanceProfile", "User")):
            kind = type_token.rsplit(":", 1)[1].lower().replace("instanceprofile", "instance-profile")
            physical = outputs.get("name") or physical
            rid, arn = physical, f"arn:aws:iam::{acct}:{kind}/{physical}"
            outputs.setdefault("name", physical)
            outputs.setdefault("uniqueId", f"AROA{suffix.upper()}")
        elif type_token == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            url = str(outputs.get("url", "")).removeprefix("https://")
            arn = f"arn:aws:iam::{acct}:oidc-provider/{url}"
        elif type_token == "aws:eks/cluster:Cluster":
            # What EKS computes: API endpoint, CA bundle and the cluster's OIDC issuer (for IRSA).
            physical = outputs.get("name") or physical
            oidc_id = hashlib.sha256(physical.encode()).hexdigest()[:32].upper()
            rid, arn = physical, f"arn:aws:eks:{region}:{acct}:cluster/{physical}"
            outputs.update(
                name=physical,
                endpoint=f"https://{oidc_id}.gr7.{region}.eks.amazonaws.com",
                certificateAuthority={
                    "data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1PQ0sKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="
                },
                identities=[{"oidcs": [{"issuer": f"https://oidc.eks.{region}.amazonaws.com/id/{oidc_id}"}]}],
                vpcConfig={
                    **(outputs.get("vpcConfig") or {}),
                    "clusterSecurityGroupId": f"sg-{oidc_id[:17].lower()}",
                },
                status="ACTIVE",
            )
        elif type_token == "aws:emr/studio:Studio":
            rid = f"es-{suffix.upper()}"
            arn = f"arn:aws:elasticmapreduce:{region}:{acct}:studio/{rid}"
            outputs["url"] = f"https://{rid}.emrstudio-prod.{region}.amazonaws.com"
        elif type_token == "aws:cloudwatch/logGroup:LogGroup":
            physical = outputs.get("name") or physical
            rid, arn = physical, f"arn:aws:logs:{region}:{acct}:log-group:{physical}"
            outputs.setdefault("name", physical)
        elif type_token.startswith("aws:ec2/"):
            prefix = {
                "vpc:Vpc": "vpc",
                "subnet:Subnet": "subnet",
                "securityGroup:SecurityGroup": "sg",
                "natGateway:NatGateway": "nat",
                "internetGateway:InternetGateway": "igw",
                "routeTable:RouteTable": "rtb",
                "eip:Eip": "eipalloc",
                "vpcEndpoint:VpcEndpoint": "vpce",
                "flowLog:FlowLog": "fl",
                "launchTemplate:LaunchTemplate": "lt",
            }.get(type_token.split("/", 1)[1], "res")
            rid = f"{prefix}-{hashlib.sha256(args.name.encode()).hexdigest()[:17]}"
            arn = f"arn:aws:ec2:{region}:{acct}:{prefix}/{rid}"
            if type_token == "aws:ec2/vpcEndpoint:VpcEndpoint":
                outputs.setdefault("dnsEntries", [{"dnsName": f"{rid}.{region}.vpce.amazonaws.com"}])
            if type_token == "aws:ec2/launchTemplate:LaunchTemplate":
                outputs.setdefault("latestVersion", 1)
                outputs.setdefault("defaultVersion", 1)
        elif module in ("sagemaker", "mwaa", "codepipeline", "codebuild", "sns") or type_token in (
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            "aws:cloudwatch/eventRule:EventRule",
        ):
            # ML services: the ARN formats AWS documents for each (names are given by the components).
            key = {
                "ModelPackageGroup": "modelPackageGroupName",
                "Domain": "domainName",
                "UserProfile": "userProfileName",
                "FeatureGroup": "featureGroupName",
                "MlflowTrackingServer": "trackingServerName",
            }.get(type_token.rsplit(":", 1)[1], "name")
            physical = outputs.get(key) or physical
            outputs.setdefault(key, physical)
            kind = type_token.rsplit(":", 1)[1]
            rid = physical
            arn = {
                "Model": f"arn:aws:sagemaker:{region}:{acct}:model/{physical}",
                "EndpointConfiguration": f"arn:aws:sagemaker:{region}:{acct}:endpoint-config/{physical}",
                "Endpoint": f"arn:aws:sagemaker:{region}:{acct}:endpoint/{physical}",
                "ModelPackageGroup": f"arn:aws:sagemaker:{region}:{acct}:model-package-group/{physical}",
                "Environment": f"arn:aws:airflow:{region}:{acct}:environment/{physical}",
                "Pipeline": f"arn:aws:codepipeline:{region}:{acct}:{physical}",
                "Project": f"arn:aws:codebuild:{region}:{acct}:project/{physical}",
                "Topic": f"arn:aws:sns:{region}:{acct}:{physical}",
                "MetricAlarm": f"arn:aws:cloudwatch:{region}:{acct}:alarm:{physical}",
                "EventRule": f"arn:aws:events:{region}:{acct}:rule/{physical}",
                # SageMaker AI domain, Studio and Feature Store ARNs (Service Authorization Reference)
                "Domain": f"arn:aws:sagemaker:{region}:{acct}:domain/d-{suffix}",
                "FeatureGroup": f"arn:aws:sagemaker:{region}:{acct}:feature-group/{physical}",
                "MlflowApp": f"arn:aws:sagemaker:{region}:{acct}:mlflow-app/app-{suffix.upper()}",
                "MlflowTrackingServer": f"arn:aws:sagemaker:{region}:{acct}:mlflow-tracking-server/{physical}",
            }.get(kind, arn)
            if kind == "Domain":
                rid = f"d-{suffix}"  # a domain's ID is d-<alphanumerics>; its URL is per domain
                outputs.setdefault("url", f"https://{rid}.studio.{region}.sagemaker.aws")
                outputs.setdefault("homeEfsFileSystemId", f"fs-{suffix}")
            if kind == "UserProfile":
                domain = str(outputs.get("domainId", "d-unknown"))
                arn = f"arn:aws:sagemaker:{region}:{acct}:user-profile/{domain}/{physical}"
            if kind == "MlflowTrackingServer":
                outputs.setdefault(
                    "trackingServerUrl", f"https://{physical}.{region}.experiments.sagemaker.aws"
                )
            if kind == "Environment":
                outputs.setdefault(
                    "webserverUrl",
                    f"{suffix}-{hashlib.sha256(physical.encode()).hexdigest()[:8]}"
                    f".c2.{region}.airflow.amazonaws.com",
                )
            if kind == "Topic":
                rid = arn  # an SNS topic's ID is its ARN
        else:
            if "name" in _input_names(type_token) and not outputs.get("name"):
                outputs["name"] = physical
            physical = outputs.get("name") or physical
        outputs.setdefault("arn", arn)
        outputs.setdefault("id", rid)
        outputs.setdefault("tagsAll", outputs.get("tags", {}))
        return rid, outputs

    # -- data sources ------------------------------------------------------------------------
    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """Answer the data sources the program calls (caller identity, partition, region, AZs)."""
        type_token, region, acct = args.token, self.region, self.account_id
        if type_token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": acct,
                "arn": f"arn:aws:iam::{acct}:user/synth",
                "userId": "AIDASYNTH",
                "id": acct,
            }, []
        if type_token == "aws:index/getPartition:getPartition":
            return {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "id": "aws",
                "reverseDnsPrefix": "com.amazonaws",
            }, []
        if type_token == "aws:index/getRegion:getRegion":
            return {
                "name": region,
                "region": region,
                "id": region,
                "endpoint": f"ec2.{region}.amazonaws.com",
            }, []
        if type_token == "aws:ec2/getPrefixList:getPrefixList":
            name = str(args.args.get("name") or f"com.amazonaws.{region}.s3")
            return {"id": "pl-63a5400a", "prefixListId": "pl-63a5400a", "name": name, "cidrBlocks": []}, []
        if type_token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{region}{c}" for c in "abcdef"]
            return {"names": names, "zoneIds": [f"use1-az{i}" for i in range(1, 7)], "id": region}, []
        return {}, []


_INPUT_CACHE: dict[str, frozenset[str]] = {}


def _input_names(type_token: str) -> frozenset[str]:
    """camelCase input property names a pulumi-aws resource type accepts (empty if unknown)."""
    if type_token in _INPUT_CACHE:
        return _INPUT_CACHE[type_token]
    names: frozenset[str] = frozenset()
    cls = resource_class(type_token)
    if cls is not None:
        import inspect

        params = inspect.signature(cls._internal_init).parameters  # type: ignore[attr-defined]
        names = frozenset(
            _camel(p) for p in params if p not in {"self", "resource_name", "opts", "__props__"}
        )
    _INPUT_CACHE[type_token] = names
    return names


def resource_class(type_token: str) -> type | None:
    """The Python class for a ``aws:<module>/<x>:<Class>`` type token, or None."""
    import importlib

    try:
        pkg, mod_path, cls_name = type_token.split(":")
    except ValueError:
        return None
    if pkg != "aws":
        return None
    mod = mod_path.split("/")[0]
    try:
        module = importlib.import_module("pulumi_aws" if mod == "index" else f"pulumi_aws.{mod}")
    except ImportError:
        return None
    return getattr(module, cls_name, None)


def is_taggable(type_token: str) -> bool:
    """True when the pulumi-aws resource type accepts a ``tags`` input."""
    return "tags" in _input_names(type_token)


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that also records parent, protection and the provider of every resource."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.records: list[RecordedResource] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        """Register like the stock mock monitor, then record the registration."""
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        state = self.resources.get(response.urn)
        inputs = _sync_await(_deserialize(request.object))
        self.records.append(
            RecordedResource(
                urn=_real_urn(response.urn),
                type=request.type,
                name=request.name,
                parent=_real_urn(request.parent) if request.parent else None,
                custom=bool(request.custom),
                inputs=_plain(inputs),
                outputs=_plain(state.state if state else {}),
                protect=bool(getattr(request, "protect", False)),
                retain_on_delete=bool(getattr(request, "retainOnDelete", False)),
                provider=request.provider or None,
                dependencies=tuple(_real_urn(u) for u in getattr(request, "dependencies", ())),
                delete_before_replace=bool(getattr(request, "deleteBeforeReplace", False)),
                property_dependencies={
                    key: tuple(_real_urn(u) for u in deps.urns)
                    for key, deps in getattr(request, "propertyDependencies", {}).items()
                },
            )
        )
        return response


def _real_urn(urn: str) -> str:
    """The mock monitor prefixes children of the stack with the Stack type; the engine does not."""
    return urn.replace("::pulumi:pulumi:Stack$", "::")


async def _deserialize(obj: Any) -> dict[str, Any]:
    from pulumi.runtime import rpc

    return rpc.deserialize_properties(obj)


def _plain(value: Any) -> Any:
    """Make recorded values JSON-friendly (unknowns become None, secrets are unwrapped)."""
    if isinstance(value, Mapping):
        if value.get("4dabf18193072939515e22adb298388d") == "1b47061264138c4ac30d75fd1eb44270":  # secret sig
            return _plain(value.get("value"))
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


@dataclass
class SynthResult:
    """What a synth produced: the recorded resources and the resolved stack outputs."""

    stack: str
    resources: list[RecordedResource]
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_token: str) -> list[RecordedResource]:
        """All resources of one type token, in registration order."""
        return [r for r in self.resources if r.type == type_token]

    def named(self, name: str) -> RecordedResource:
        """The one resource with this logical name (raises KeyError if absent or ambiguous)."""
        found = [r for r in self.resources if r.name == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} resources named {name!r}")
        return found[0]

    def by_urn(self, urn: str) -> RecordedResource:
        """The resource with this URN."""
        for r in self.resources:
            if r.urn == urn:
                return r
        raise KeyError(urn)

    def custom(self) -> Iterator[RecordedResource]:
        """Only cloud resources (not component resources)."""
        return (r for r in self.resources if r.custom)


def stack_config_file(stack: str, stacks_dir: Path = STACKS_DIR) -> Path:
    """Path of ``Pulumi.<stack>.yaml``, with a helpful error if it does not exist."""
    path = stacks_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = sorted(
            p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in stacks_dir.glob("Pulumi.*.yaml")
        )
        raise FileNotFoundError(
            f"no stack config {path.name} in {stacks_dir}; known stacks: {', '.join(known) or 'none'}"
        )
    return path


def read_stack_config(path: Path) -> dict[str, str]:
    """Read a ``Pulumi.<stack>.yaml`` into the flat ``{"ns:key": "string"}`` map the runtime uses."""
    doc = yaml.safe_load(path.read_text()) or {}
    config = doc.get("config") or {}
    flat: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, Mapping) and set(value) == {"secure"}:
            # Encrypted values cannot be decrypted offline; give them a recognisable placeholder.
            flat[key] = "offline-synth-secret"
        elif isinstance(value, str):
            flat[key] = value
        else:
            flat[key] = json.dumps(value)
    return flat


def run_program(
    program: Callable[[], Mapping[str, Any] | None],
    config: Mapping[str, str],
    *,
    stack: str = "test",
    region: str | None = None,
    mocks: RecordingMocks | None = None,
) -> SynthResult:
    """Run ``program`` under the recording mock with ``config`` and return what it registered.

    ``program`` may return a mapping of outputs (Inputs/Outputs allowed); they are resolved.
    """
    from pulumi.runtime import config as runtime_config
    from pulumi.runtime.stack import run_pulumi_func

    region = region or config.get("aws:region", "us-east-1")
    mocks = mocks or RecordingMocks(region=region)
    monitor = RecordingMonitor(mocks)
    runtime_config.set_all_config(dict(config), [])
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    resolved: dict[str, Any] = {}

    def _body() -> None:
        outputs = program() or {}
        value = _sync_await(pulumi.Output.from_input(dict(outputs)).future(with_unknowns=True))
        resolved.update(_plain(value or {}))

    _sync_await(run_pulumi_func(_body))
    return SynthResult(stack=stack, resources=list(monitor.records), outputs=resolved)


def synthesize(stack: str, stacks_dir: Path = STACKS_DIR) -> SynthResult:
    """Synthesize a named stack (``dev``, ``staging``, ``prod`` ...) from its config file."""
    from stacks.config import load_config
    from stacks.platform import build

    config = read_stack_config(stack_config_file(stack, stacks_dir))

    def program() -> Mapping[str, Any]:
        return build(load_config()).outputs

    return run_program(program, config, stack=stack)
