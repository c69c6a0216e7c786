"""Deploy a stack into the emulator: the real stack program, run under Pulumi's mock engine.

The mock engine resolves every resource's inputs before it registers the resource, so registrations
arrive in dependency order. :class:`EmulatorMocks` (a :class:`stacks.synth.RecordingMocks`, so the
synth recording keeps working) creates each resource of a type in :data:`HANDLERS` in the emulator
through boto3 and returns the emulator's real IDs and ARNs as the resource's state: dependent
resources and the stack outputs carry them. Resources of any other type are recorded only and listed
in :attr:`DeployResult.recorded` (never half-created).

A second :func:`deploy` with the previous :class:`DeployState` is an update, as ``pulumi up`` would
run it: per resource, unchanged inputs make no call; changed inputs update in place through the call
a real update makes (for an endpoint: ``UpdateEndpoint`` with the new config and its
``DeploymentConfig``), or replace (create the new, then delete the old unless it is retained);
resources the program no longer declares are deleted. After an endpoint update the deploy checks
which endpoint config is live (``DescribeEndpoint``) and fails when the guardrail rolled the update
back, which the Terraform provider reports as a success (hashicorp/terraform-provider-aws#48997).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rehearsal.moto_fixes import apply_moto_fixes
from stacks.synth import RecordingMocks, SynthResult, read_stack_config, run_program, stack_config_file

if TYPE_CHECKING:
    from pulumi.runtime.mocks import MockResourceArgs

    from rehearsal.emulator import Emulator

OUTPUTS_FILE = "outputs.json"
RESOURCES_FILE = "resources.json"

# Endpoint states that are still moving; the deploy waits them out (as the provider's waiter does).
_ENDPOINT_TRANSITIONS = {"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"}


class DeployError(RuntimeError):
    """The deploy could not apply a resource; the message names the resource and the AWS error.

    ``state`` (set by :func:`deploy`) is what the emulator holds after the failure: the resources
    applied before it, and the previous state of the rest (the failed resource keeps its old entry),
    so a later deploy can continue from it.
    """

    state: DeployState | None = None


class GuardrailRollbackError(DeployError):
    """An endpoint update was rolled back by its deployment guardrail: the old config is still live."""


# --------------------------------------------------------------------------------------------
# State and results
# --------------------------------------------------------------------------------------------


@dataclass
class ResourceState:
    """What the deploy knows about one resource after applying it (Pulumi's state entry)."""

    key: str
    type: str
    name: str
    id: str | None
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    in_emulator: bool
    retain_on_delete: bool = False


@dataclass
class DeployState:
    """The resources of the last deploy in registration order, keyed ``<type>::<name>``."""

    stack: str
    resources: dict[str, ResourceState] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-friendly copy (written as ``resources.json``)."""
        return {"stack": self.stack, "resources": [asdict(r) for r in self.resources.values()]}


@dataclass(frozen=True)
class Change:
    """One step of a deploy: what happened to a resource and the AWS calls it took."""

    action: str
    """create, update, replace, delete, retain (left in AWS on delete), same or record."""
    type: str
    name: str
    calls: tuple[str, ...] = ()


@dataclass(frozen=True)
class AwsCall:
    """One AWS API call the deploy made (service, operation and its parameters)."""

    resource: str
    service: str
    operation: str
    params: dict[str, Any]


@dataclass
class DeployResult:
    """What a deploy did: outputs (with the emulator's endpoint URLs), state, changes and calls."""

    stack: str
    outputs: dict[str, Any]
    state: DeployState
    changes: list[Change]
    calls: list[AwsCall]
    synth: SynthResult
    outputs_file: Path | None = None

    @property
    def recorded(self) -> list[tuple[str, str]]:
        """(type, name) of every resource recorded but not created: no emulator mapping for its type."""
        return [(r.type, r.name) for r in self.state.resources.values() if not r.in_emulator]

    @property
    def unsupported_types(self) -> list[str]:
        """The resource types of this stack the emulator mapping does not create, sorted."""
        return sorted({t for t, _ in self.recorded})

    def changed(self) -> list[Change]:
        """Changes that touched the emulator (not ``same`` or ``record``)."""
        return [c for c in self.changes if c.action not in ("same", "record")]


# --------------------------------------------------------------------------------------------
# Shape conversion: Pulumi's camelCase inputs -> the AWS APIs' parameters
# --------------------------------------------------------------------------------------------


def _num(value: Any) -> Any:
    """Pulumi serialises numbers as floats; AWS integer fields need ints."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def pascal(value: Any, renames: Mapping[str, str] | None = None) -> Any:
    """Convert camelCase keys to PascalCase recursively (``renames`` maps a camelCase key to its AWS name)."""
    renames = renames or {}
    if isinstance(value, Mapping):
        return {
            renames.get(k, k[:1].upper() + k[1:]): pascal(v, renames)
            for k, v in value.items()
            if v is not None
        }
    if isinstance(value, list):
        return [pascal(v, renames) for v in value]
    return _num(value)


def camel(value: Any, renames: Mapping[str, str] | None = None) -> Any:
    """Keep camelCase keys (APIs such as CodeBuild, EKS use them), dropping Nones and fixing numbers."""
    renames = renames or {}
    if isinstance(value, Mapping):
        return {renames.get(k, k): camel(v, renames) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [camel(v, renames) for v in value]
    return _num(value)


def _tag_list(tags: Mapping[str, str] | None, key: str = "Key", val: str = "Value") -> list[dict[str, str]]:
    return [{key: k, val: str(v)} for k, v in (tags or {}).items()]


def _jsonable(value: Any) -> Any:
    """Inputs as plain JSON (secrets unwrapped, unknowns None), comparable between deploys."""
    if isinstance(value, Mapping):
        if value.get("4dabf18193072939515e22adb298388d") == "1b47061264138c4ac30d75fd1eb44270":
            return _jsonable(value.get("value"))
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


# --------------------------------------------------------------------------------------------
# Handlers: one per resource type the emulator can hold
# --------------------------------------------------------------------------------------------


class Ctx:
    """What a handler works with: clients of the emulator, and a log of the calls made."""

    def __init__(
        self,
        emulator: Emulator,
        calls: list[AwsCall],
        endpoint_timeout: float,
        credentials: Mapping[str, str] | None = None,
    ) -> None:
        self.emulator = emulator
        self.calls = calls
        self.endpoint_timeout = endpoint_timeout
        self.credentials = dict(credentials) if credentials else None
        """The deployer's session (``AWS_ACCESS_KEY_ID``/...); None: the account's root keys."""
        self.resource = ""
        self.logical_name = ""
        self._clients: dict[str, Any] = {}

    def autoname(self, inputs: Mapping[str, Any]) -> str:
        """The ``name`` input, the ``namePrefix`` plus a unique suffix (as the provider does), or Pulumi's
        auto-name: the logical name plus a random-looking suffix."""
        import hashlib

        if inputs.get("name"):
            return str(inputs["name"])
        suffix = hashlib.sha256(self.resource.encode()).hexdigest()
        if inputs.get("namePrefix"):
            return f"{inputs['namePrefix']}{suffix[:26]}"
        return f"{self.logical_name}-{suffix[:7]}"

    def call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        """Call ``service.operation(**params)`` on the emulator and log it."""
        if service not in self._clients:
            if self.credentials is None:
                self._clients[service] = self.emulator.client(service)
            else:
                from rehearsal.iam.identities import client_as

                self._clients[service] = client_as(self.emulator, service, self.credentials)
        self.calls.append(AwsCall(self.resource, service, operation, params))
        return getattr(self._clients[service], operation)(**params)


Outputs = dict[str, Any]
CreateFn = Callable[[Ctx, dict[str, Any], Outputs], tuple[str, Outputs]]
UpdateFn = Callable[[Ctx, dict[str, Any], Outputs, ResourceState], tuple[str, Outputs]]
DeleteFn = Callable[[Ctx, ResourceState], object]


@dataclass(frozen=True)
class Handler:
    """How one resource type is created, updated and deleted in the emulator.

    ``replace_on`` lists the inputs whose change forces a replacement (the provider's ForceNew
    properties); with no ``update`` every change replaces.
    """

    create: CreateFn
    delete: DeleteFn
    update: UpdateFn | None = None
    replace_on: tuple[str, ...] = ()


def _put(create: CreateFn) -> UpdateFn:
    """An update that repeats an idempotent ``Put*`` create, keeping the resource's ID."""

    def update(ctx: Ctx, inputs: dict[str, Any], synth: Outputs, old: ResourceState) -> tuple[str, Outputs]:
        _, outputs = create(ctx, inputs, synth)
        return old.id or "", outputs

    return update


# --- S3 ---------------------------------------------------------------------------------------


def _bucket_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    name = synth["bucket"]
    params: dict[str, Any] = {"Bucket": name}
    if ctx.emulator.region != "us-east-1":
        params["CreateBucketConfiguration"] = {"LocationConstraint": ctx.emulator.region}
    ctx.call("s3", "create_bucket", **params)
    _bucket_tags(ctx, name, inputs)
    return name, {"arn": f"arn:aws:s3:::{name}", "bucket": name}


def _bucket_tags(ctx: Ctx, name: str, inputs: dict[str, Any]) -> None:
    if inputs.get("tags"):
        ctx.call("s3", "put_bucket_tagging", Bucket=name, Tagging={"TagSet": _tag_list(inputs["tags"])})


def _bucket_update(
    ctx: Ctx, inputs: dict[str, Any], synth: Outputs, old: ResourceState
) -> tuple[str, Outputs]:
    _bucket_tags(ctx, synth["bucket"], inputs)
    return old.id or synth["bucket"], {}


def _bucket_delete(ctx: Ctx, old: ResourceState) -> None:
    name = old.id or ""
    if old.inputs.get("forceDestroy"):
        versions = ctx.call("s3", "list_object_versions", Bucket=name)
        doomed = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in [*versions.get("Versions", []), *versions.get("DeleteMarkers", [])]
        ]
        if doomed:
            ctx.call("s3", "delete_objects", Bucket=name, Delete={"Objects": doomed})
    ctx.call("s3", "delete_bucket", Bucket=name)


def _s3_sub(op: str, build: Callable[[dict[str, Any]], dict[str, Any]], delete_op: str | None) -> Handler:
    def create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
        ctx.call("s3", op, Bucket=inputs["bucket"], **build(inputs))
        return inputs["bucket"], {}

    def delete(ctx: Ctx, old: ResourceState) -> None:
        if delete_op == "suspend-versioning":
            ctx.call(
                "s3",
                "put_bucket_versioning",
                Bucket=old.inputs["bucket"],
                VersioningConfiguration={"Status": "Suspended"},
            )
        elif delete_op == "disable-logging":
            ctx.call("s3", "put_bucket_logging", Bucket=old.inputs["bucket"], BucketLoggingStatus={})
        elif delete_op:
            ctx.call("s3", delete_op, Bucket=old.inputs["bucket"])

    return Handler(create=create, update=_put(create), delete=delete, replace_on=("bucket",))


def _lifecycle_rules(inputs: dict[str, Any]) -> dict[str, Any]:
    rules = pascal(inputs.get("rules") or [], {"id": "ID"})
    return {"LifecycleConfiguration": {"Rules": rules}}


def _logging(inputs: dict[str, Any]) -> dict[str, Any]:
    enabled: dict[str, Any] = {
        "TargetBucket": inputs["targetBucket"],
        "TargetPrefix": inputs.get("targetPrefix", ""),
    }
    if inputs.get("targetObjectKeyFormat"):
        enabled["TargetObjectKeyFormat"] = pascal(inputs["targetObjectKeyFormat"])
    return {"BucketLoggingStatus": {"LoggingEnabled": enabled}}


# --- KMS --------------------------------------------------------------------------------------


def _key_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    params: dict[str, Any] = {
        "Description": inputs.get("description", ""),
        "KeyUsage": inputs.get("keyUsage", "ENCRYPT_DECRYPT"),
        "KeySpec": inputs.get("customerMasterKeySpec", "SYMMETRIC_DEFAULT"),
        "Tags": _tag_list(inputs.get("tags"), "TagKey", "TagValue"),
    }
    if inputs.get("policy"):
        params["Policy"] = inputs["policy"]
    meta = ctx.call("kms", "create_key", **params)["KeyMetadata"]
    if inputs.get("enableKeyRotation"):
        ctx.call("kms", "enable_key_rotation", KeyId=meta["KeyId"])
    return meta["KeyId"], {"arn": meta["Arn"], "keyId": meta["KeyId"]}


def _key_update(ctx: Ctx, inputs: dict[str, Any], synth: Outputs, old: ResourceState) -> tuple[str, Outputs]:
    key_id = old.id or ""
    if inputs.get("policy") != old.inputs.get("policy") and inputs.get("policy"):
        ctx.call("kms", "put_key_policy", KeyId=key_id, PolicyName="default", Policy=inputs["policy"])
    if inputs.get("description") != old.inputs.get("description"):
        ctx.call("kms", "update_key_description", KeyId=key_id, Description=inputs.get("description", ""))
    if bool(inputs.get("enableKeyRotation")) != bool(old.inputs.get("enableKeyRotation")):
        op = "enable_key_rotation" if inputs.get("enableKeyRotation") else "disable_key_rotation"
        ctx.call("kms", op, KeyId=key_id)
    return key_id, {"arn": old.outputs.get("arn"), "keyId": key_id}


def _key_delete(ctx: Ctx, old: ResourceState) -> None:
    days = _num(old.inputs.get("deletionWindowInDays", 30))
    ctx.call("kms", "schedule_key_deletion", KeyId=old.id, PendingWindowInDays=days)


def _alias_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    ctx.call("kms", "create_alias", AliasName=inputs["name"], TargetKeyId=inputs["targetKeyId"])
    region, acct = ctx.emulator.region, ctx.emulator.account_id
    return inputs["name"], {"arn": f"arn:aws:kms:{region}:{acct}:{inputs['name']}"}


def _alias_update(
    ctx: Ctx, inputs: dict[str, Any], synth: Outputs, old: ResourceState
) -> tuple[str, Outputs]:
    ctx.call("kms", "update_alias", AliasName=inputs["name"], TargetKeyId=inputs["targetKeyId"])
    return inputs["name"], {}


# --- IAM --------------------------------------------------------------------------------------


def _role_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    params: dict[str, Any] = {
        "RoleName": synth["name"],
        "AssumeRolePolicyDocument": inputs["assumeRolePolicy"],
        "Description": inputs.get("description", ""),
        "Tags": _tag_list(inputs.get("tags")),
        "Path": inputs.get("path", "/"),
    }
    if inputs.get("maxSessionDuration"):
        params["MaxSessionDuration"] = _num(inputs["maxSessionDuration"])
    if inputs.get("permissionsBoundary"):
        params["PermissionsBoundary"] = inputs["permissionsBoundary"]
    role = ctx.call("iam", "create_role", **params)["Role"]
    return role["RoleName"], {"arn": role["Arn"], "name": role["RoleName"], "uniqueId": role["RoleId"]}


def _role_update(ctx: Ctx, inputs: dict[str, Any], synth: Outputs, old: ResourceState) -> tuple[str, Outputs]:
    name = old.id or synth["name"]
    if inputs.get("assumeRolePolicy") != old.inputs.get("assumeRolePolicy"):
        ctx.call("iam", "update_assume_role_policy", RoleName=name, PolicyDocument=inputs["assumeRolePolicy"])
    if inputs.get("description") != old.inputs.get("description"):
        ctx.call("iam", "update_role", RoleName=name, Description=inputs.get("description", ""))
    if inputs.get("tags") != old.inputs.get("tags") and inputs.get("tags"):
        ctx.call("iam", "tag_role", RoleName=name, Tags=_tag_list(inputs["tags"]))
    return name, {}


def _role_policy_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    name = synth["name"]
    ctx.call(
        "iam", "put_role_policy", RoleName=inputs["role"], PolicyName=name, PolicyDocument=inputs["policy"]
    )
    return f"{inputs['role']}:{name}", {"name": name}


def _attachment_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    ctx.call("iam", "attach_role_policy", RoleName=inputs["role"], PolicyArn=inputs["policyArn"])
    return f"{inputs['role']}/{inputs['policyArn']}", {}


def _policy_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    policy = ctx.call(
        "iam",
        "create_policy",
        PolicyName=synth["name"],
        PolicyDocument=inputs["policy"],
        Path=inputs.get("path", "/"),
        Description=inputs.get("description", ""),
        Tags=_tag_list(inputs.get("tags")),
    )["Policy"]
    return policy["Arn"], {"arn": policy["Arn"], "name": policy["PolicyName"], "policyId": policy["PolicyId"]}


def _policy_update(
    ctx: Ctx, inputs: dict[str, Any], synth: Outputs, old: ResourceState
) -> tuple[str, Outputs]:
    if inputs.get("policy") != old.inputs.get("policy"):
        ctx.call(
            "iam",
            "create_policy_version",
            PolicyArn=old.id,
            PolicyDocument=inputs["policy"],
            SetAsDefault=True,
        )
    return old.id or "", {}


def _profile_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    name = synth["name"]
    profile = ctx.call(
        "iam", "create_instance_profile", InstanceProfileName=name, Path=inputs.get("path", "/")
    )["InstanceProfile"]
    if inputs.get("role"):
        ctx.call("iam", "add_role_to_instance_profile", InstanceProfileName=name, RoleName=inputs["role"])
    return name, {"arn": profile["Arn"], "name": name, "uniqueId": profile["InstanceProfileId"]}


def _profile_delete(ctx: Ctx, old: ResourceState) -> None:
    if old.inputs.get("role"):
        ctx.call(
            "iam",
            "remove_role_from_instance_profile",
            InstanceProfileName=old.id,
            RoleName=old.inputs["role"],
        )
    ctx.call("iam", "delete_instance_profile", InstanceProfileName=old.id)


def _oidc_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    params: dict[str, Any] = {
        "Url": inputs["url"],
        "ClientIDList": inputs.get("clientIdLists", []),
        "Tags": _tag_list(inputs.get("tags")),
    }
    if inputs.get("thumbprintLists"):
        params["ThumbprintList"] = inputs["thumbprintLists"]
    arn = ctx.call("iam", "create_open_id_connect_provider", **params)["OpenIDConnectProviderArn"]
    return arn, {"arn": arn}


# --- Glue / Athena ----------------------------------------------------------------------------


def _glue_db_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    db: dict[str, Any] = {"Name": inputs["name"], "Description": inputs.get("description", "")}
    if inputs.get("locationUri"):
        db["LocationUri"] = inputs["locationUri"]
    ctx.call("glue", "create_database", DatabaseInput=db, Tags=inputs.get("tags") or {})
    region, acct = ctx.emulator.region, ctx.emulator.account_id
    return f"{acct}:{inputs['name']}", {"arn": f"arn:aws:glue:{region}:{acct}:database/{inputs['name']}"}


def _glue_db_update(
    ctx: Ctx, inputs: dict[str, Any], synth: Outputs, old: ResourceState
) -> tuple[str, Outputs]:
    db = {"Name": inputs["name"], "Description": inputs.get("description", "")}
    ctx.call("glue", "update_database", Name=inputs["name"], DatabaseInput=db)
    return old.id or "", {}


def _table_input(inputs: dict[str, Any]) -> dict[str, Any]:
    keep = ("name", "description", "tableType", "parameters", "partitionKeys", "storageDescriptor", "owner")
    shaped = pascal({k: inputs[k] for k in keep if k in inputs}, {"serDeInfo": "SerdeInfo"})
    if "Parameters" in shaped:  # parameter keys are data, not field names
        shaped["Parameters"] = dict(inputs["parameters"])
    sd = shaped.get("StorageDescriptor") or {}
    if sd.get("SerdeInfo") and "parameters" in (inputs["storageDescriptor"].get("serDeInfo") or {}):
        sd["SerdeInfo"]["Parameters"] = dict(inputs["storageDescriptor"]["serDeInfo"]["parameters"])
    if sd.get("Parameters") is not None:
        sd["Parameters"] = dict(inputs["storageDescriptor"]["parameters"])
    return shaped


def _glue_table_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    ctx.call("glue", "create_table", DatabaseName=inputs["databaseName"], TableInput=_table_input(inputs))
    region, acct = ctx.emulator.region, ctx.emulator.account_id
    db, name = inputs["databaseName"], inputs["name"]
    return f"{acct}:{db}:{name}", {"arn": f"arn:aws:glue:{region}:{acct}:table/{db}/{name}"}


def _glue_table_update(
    ctx: Ctx, inputs: dict[str, Any], synth: Outputs, old: ResourceState
) -> tuple[str, Outputs]:
    ctx.call("glue", "update_table", DatabaseName=inputs["databaseName"], TableInput=_table_input(inputs))
    return old.id or "", {}


_WORKGROUP_RENAMES = {
    "kmsKeyArn": "KmsKey",
    "enforceWorkgroupConfiguration": "EnforceWorkGroupConfiguration",
    "publishCloudwatchMetricsEnabled": "PublishCloudWatchMetricsEnabled",
}


def _workgroup_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    ctx.call(
        "athena",
        "create_work_group",
        Name=inputs["name"],
        Description=inputs.get("description", ""),
        Configuration=pascal(inputs.get("configuration") or {}, _WORKGROUP_RENAMES),
        Tags=_tag_list(inputs.get("tags")),
    )
    region, acct = ctx.emulator.region, ctx.emulator.account_id
    return inputs["name"], {"arn": f"arn:aws:athena:{region}:{acct}:workgroup/{inputs['name']}"}


def _workgroup_update(
    ctx: Ctx, inputs: dict[str, Any], synth: Outputs, old: ResourceState
) -> tuple[str, Outputs]:
    config = pascal(inputs.get("configuration") or {}, _WORKGROUP_RENAMES)
    result = config.pop("ResultConfiguration", None)
    updates: dict[str, Any] = dict(config)
    if result is not None:
        updates["ResultConfigurationUpdates"] = result
    ctx.call(
        "athena",
        "update_work_group",
        WorkGroup=inputs["name"],
        Description=inputs.get("description", ""),
        ConfigurationUpdates=updates,
        State=inputs.get("state", "ENABLED"),
    )
    return old.id or "", {}


def _named_query_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    params = {
        "Name": inputs["name"],
        "Database": inputs["database"],
        "QueryString": inputs["query"],
        "Description": inputs.get("description", ""),
    }
    if inputs.get("workgroup"):
        params["WorkGroup"] = inputs["workgroup"]
    qid = ctx.call("athena", "create_named_query", **params)["NamedQueryId"]
    return qid, {}


# --- SageMaker ----------------------------------------------------------------------------------


def _mpg_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    name = inputs["modelPackageGroupName"]
    arn = ctx.call(
        "sagemaker",
        "create_model_package_group",
        ModelPackageGroupName=name,
        ModelPackageGroupDescription=inputs.get("modelPackageGroupDescription", ""),
        Tags=_tag_list(inputs.get("tags")),
    )["ModelPackageGroupArn"]
    return name, {"arn": arn}


def _model_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    name = synth["name"]
    params: dict[str, Any] = {
        "ModelName": name,
        "ExecutionRoleArn": inputs["executionRoleArn"],
        "EnableNetworkIsolation": bool(inputs.get("enableNetworkIsolation")),
        "Tags": _tag_list(inputs.get("tags")),
    }
    if inputs.get("primaryContainer"):
        container = dict(inputs["primaryContainer"])
        env = container.pop("environment", None)
        params["PrimaryContainer"] = pascal(container)
        if env:
            params["PrimaryContainer"]["Environment"] = dict(env)
    if inputs.get("containers"):
        params["Containers"] = pascal(inputs["containers"])
    if inputs.get("vpcConfig"):
        params["VpcConfig"] = pascal(inputs["vpcConfig"], {"subnets": "Subnets"})
    arn = ctx.call("sagemaker", "create_model", **params)["ModelArn"]
    return name, {"arn": arn, "name": name}


def _feature_group_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    """CreateFeatureGroup with every input the component sets (record identifier, event time, feature
    definitions, offline store with its key, Glue table and Iceberg format, online store, role)."""
    name = inputs["featureGroupName"]
    params: dict[str, Any] = {
        "FeatureGroupName": name,
        "RecordIdentifierFeatureName": inputs["recordIdentifierFeatureName"],
        "EventTimeFeatureName": inputs["eventTimeFeatureName"],
        "FeatureDefinitions": pascal(inputs["featureDefinitions"]),
        "RoleArn": inputs["roleArn"],
        "Tags": _tag_list(inputs.get("tags")),
    }
    if inputs.get("offlineStoreConfig"):
        params["OfflineStoreConfig"] = pascal(inputs["offlineStoreConfig"])
    if inputs.get("onlineStoreConfig"):
        params["OnlineStoreConfig"] = pascal(inputs["onlineStoreConfig"])
    if inputs.get("description"):
        params["Description"] = inputs["description"]
    arn = ctx.call("sagemaker", "create_feature_group", **params)["FeatureGroupArn"]
    # CreateFeatureGroup returns before the group is made; the provider waits for Created and fails
    # on CreateFailed (an Iceberg group whose role may not create its Glue table, for one).
    described = ctx.call("sagemaker", "describe_feature_group", FeatureGroupName=name)
    if described.get("FeatureGroupStatus") == "CreateFailed":
        raise DeployError(f"feature group {name} is CreateFailed: {described.get('FailureReason', '')}")
    return name, {"arn": arn, "featureGroupName": name}


_CONFIG_RENAMES = {"memorySizeInMb": "MemorySizeInMB"}


def _endpoint_config_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    name = synth["name"]
    params: dict[str, Any] = {
        "EndpointConfigName": name,
        "ProductionVariants": pascal(inputs["productionVariants"], _CONFIG_RENAMES),
        "Tags": _tag_list(inputs.get("tags")),
    }
    if inputs.get("shadowProductionVariants"):
        params["ShadowProductionVariants"] = pascal(inputs["shadowProductionVariants"], _CONFIG_RENAMES)
    if inputs.get("dataCaptureConfig"):
        params["DataCaptureConfig"] = pascal(inputs["dataCaptureConfig"])
    if inputs.get("kmsKeyArn"):
        params["KmsKeyId"] = inputs["kmsKeyArn"]
    arn = ctx.call("sagemaker", "create_endpoint_config", **params)["EndpointConfigArn"]
    return name, {"arn": arn, "name": name}


def deployment_config(inputs: dict[str, Any]) -> dict[str, Any] | None:
    """The ``DeploymentConfig`` parameter of Create/UpdateEndpoint from the endpoint's inputs."""
    if not inputs.get("deploymentConfig"):
        return None
    return pascal(inputs["deploymentConfig"])


def _wait_endpoint(ctx: Ctx, name: str) -> dict[str, Any]:
    deadline = time.monotonic() + ctx.endpoint_timeout
    while True:
        desc = ctx.call("sagemaker", "describe_endpoint", EndpointName=name)
        if desc["EndpointStatus"] not in _ENDPOINT_TRANSITIONS:
            return desc
        if time.monotonic() > deadline:
            raise DeployError(
                f"endpoint {name} still {desc['EndpointStatus']} after {ctx.endpoint_timeout:.0f} s"
            )
        time.sleep(0.2)


def _endpoint_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    name = synth["name"]
    params: dict[str, Any] = {
        "EndpointName": name,
        "EndpointConfigName": inputs["endpointConfigName"],
        "Tags": _tag_list(inputs.get("tags")),
    }
    dc = deployment_config(inputs)
    if dc is not None:
        params["DeploymentConfig"] = dc
    arn = ctx.call("sagemaker", "create_endpoint", **params)["EndpointArn"]
    desc = _wait_endpoint(ctx, name)
    if desc["EndpointStatus"] != "InService":
        raise DeployError(
            f"endpoint {name} is {desc['EndpointStatus']}, not InService: {desc.get('FailureReason', 'no reason given')}"
        )
    return name, {"arn": arn, "name": name}


def _endpoint_update(
    ctx: Ctx, inputs: dict[str, Any], synth: Outputs, old: ResourceState
) -> tuple[str, Outputs]:
    """UpdateEndpoint with the new config and the guardrail, then check which config is live."""
    name = old.id or synth["name"]
    wanted = inputs["endpointConfigName"]
    if wanted != old.inputs.get("endpointConfigName") or inputs.get("deploymentConfig") != old.inputs.get(
        "deploymentConfig"
    ):
        params: dict[str, Any] = {"EndpointName": name, "EndpointConfigName": wanted}
        dc = deployment_config(inputs)
        if dc is not None:
            params["DeploymentConfig"] = dc
        ctx.call("sagemaker", "update_endpoint", **params)
        desc = _wait_endpoint(ctx, name)
        live = desc.get("EndpointConfigName")
        if live != wanted:
            raise GuardrailRollbackError(
                f"endpoint {name}: the update to endpoint config {wanted} was rolled back; {live} is still "
                f"live (status {desc['EndpointStatus']}, reason: {desc.get('FailureReason') or 'none given'}). "
                "A Pulumi/Terraform update reports this as a success (hashicorp/terraform-provider-aws#48997); "
                "the rehearsal treats it as a failed deploy"
            )
        if desc["EndpointStatus"] != "InService":
            raise DeployError(
                f"endpoint {name} is {desc['EndpointStatus']} after the update: {desc.get('FailureReason', '')}"
            )
    if inputs.get("tags") != old.inputs.get("tags") and inputs.get("tags"):
        ctx.call("sagemaker", "add_tags", ResourceArn=old.outputs["arn"], Tags=_tag_list(inputs["tags"]))
    return name, {"arn": old.outputs.get("arn"), "name": name}


# --- CloudWatch, Logs, SNS, EventBridge --------------------------------------------------------


def _alarm_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    name = synth["name"]
    params: dict[str, Any] = {
        "AlarmName": name,
        "ComparisonOperator": inputs["comparisonOperator"],
        "EvaluationPeriods": _num(inputs["evaluationPeriods"]),
        "AlarmDescription": inputs.get("alarmDescription", ""),
        "ActionsEnabled": inputs.get("actionsEnabled", True),
        "AlarmActions": inputs.get("alarmActions", []),
        "OKActions": inputs.get("okActions", []),
        "InsufficientDataActions": inputs.get("insufficientDataActions", []),
        "TreatMissingData": inputs.get("treatMissingData", "missing"),
        "Tags": _tag_list(inputs.get("tags")),
    }
    for key, aws_key in (
        ("namespace", "Namespace"),
        ("metricName", "MetricName"),
        ("statistic", "Statistic"),
        ("extendedStatistic", "ExtendedStatistic"),
        ("period", "Period"),
        ("threshold", "Threshold"),
        ("datapointsToAlarm", "DatapointsToAlarm"),
        ("unit", "Unit"),
        ("thresholdMetricId", "ThresholdMetricId"),
    ):
        if inputs.get(key) is not None:
            params[aws_key] = _num(inputs[key])
    if inputs.get("dimensions"):
        params["Dimensions"] = [{"Name": k, "Value": str(v)} for k, v in inputs["dimensions"].items()]
    if inputs.get("metricQueries"):
        queries = []
        for q in inputs["metricQueries"]:
            metric = q.get("metric")
            shaped = pascal({k: v for k, v in q.items() if k != "metric"})
            if metric:
                stat: dict[str, Any] = {
                    "Metric": {
                        "Namespace": metric.get("namespace"),
                        "MetricName": metric["metricName"],
                        "Dimensions": [
                            {"Name": k, "Value": str(v)} for k, v in (metric.get("dimensions") or {}).items()
                        ],
                    },
                    "Period": _num(metric["period"]),
                    "Stat": metric["stat"],
                }
                if metric.get("unit"):
                    stat["Unit"] = metric["unit"]
                shaped["MetricStat"] = stat
            queries.append(shaped)
        params["Metrics"] = queries
    ctx.call("cloudwatch", "put_metric_alarm", **params)
    alarms = ctx.call("cloudwatch", "describe_alarms", AlarmNames=[name])["MetricAlarms"]
    arn = alarms[0]["AlarmArn"] if alarms else synth.get("arn")
    return name, {"arn": arn, "name": name}


def _log_group_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    name = synth["name"]
    params: dict[str, Any] = {"logGroupName": name, "tags": dict(inputs.get("tags") or {})}
    if inputs.get("kmsKeyId"):
        params["kmsKeyId"] = inputs["kmsKeyId"]
    ctx.call("logs", "create_log_group", **params)
    if inputs.get("retentionInDays"):
        ctx.call(
            "logs", "put_retention_policy", logGroupName=name, retentionInDays=_num(inputs["retentionInDays"])
        )
    region, acct = ctx.emulator.region, ctx.emulator.account_id
    return name, {"arn": f"arn:aws:logs:{region}:{acct}:log-group:{name}", "name": name}


def _log_group_update(
    ctx: Ctx, inputs: dict[str, Any], synth: Outputs, old: ResourceState
) -> tuple[str, Outputs]:
    name = old.id or synth["name"]
    if inputs.get("retentionInDays"):
        ctx.call(
            "logs", "put_retention_policy", logGroupName=name, retentionInDays=_num(inputs["retentionInDays"])
        )
    else:
        ctx.call("logs", "delete_retention_policy", logGroupName=name)
    if inputs.get("kmsKeyId") != old.inputs.get("kmsKeyId"):
        if inputs.get("kmsKeyId"):
            ctx.call("logs", "associate_kms_key", logGroupName=name, kmsKeyId=inputs["kmsKeyId"])
        else:
            ctx.call("logs", "disassociate_kms_key", logGroupName=name)
    return name, {}


def _dashboard_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    name = inputs["dashboardName"]
    ctx.call("cloudwatch", "put_dashboard", DashboardName=name, DashboardBody=inputs["dashboardBody"])
    return name, {"dashboardArn": f"arn:aws:cloudwatch::{ctx.emulator.account_id}:dashboard/{name}"}


def _topic_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    attributes = {
        aws: str(inputs[key])
        for key, aws in (
            ("displayName", "DisplayName"),
            ("kmsMasterKeyId", "KmsMasterKeyId"),
            ("policy", "Policy"),
            ("deliveryPolicy", "DeliveryPolicy"),
        )
        if inputs.get(key)
    }
    if inputs.get("fifoTopic"):
        attributes["FifoTopic"] = "true"
    arn = ctx.call(
        "sns", "create_topic", Name=synth["name"], Attributes=attributes, Tags=_tag_list(inputs.get("tags"))
    )["TopicArn"]
    return arn, {"arn": arn, "name": synth["name"]}


def _topic_update(
    ctx: Ctx, inputs: dict[str, Any], synth: Outputs, old: ResourceState
) -> tuple[str, Outputs]:
    for key, aws in (("displayName", "DisplayName"), ("kmsMasterKeyId", "KmsMasterKeyId")):
        if inputs.get(key) != old.inputs.get(key):
            ctx.call(
                "sns",
                "set_topic_attributes",
                TopicArn=old.id,
                AttributeName=aws,
                AttributeValue=inputs.get(key) or "",
            )
    return old.id or "", {}


def _topic_policy_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    ctx.call(
        "sns",
        "set_topic_attributes",
        TopicArn=inputs["arn"],
        AttributeName="Policy",
        AttributeValue=inputs["policy"],
    )
    return inputs["arn"], {}


def _topic_policy_delete(ctx: Ctx, old: ResourceState) -> None:
    # Deleting a TopicPolicy restores the topic's default policy; the topic may already be gone.
    topics = [t["TopicArn"] for t in ctx.call("sns", "list_topics").get("Topics", [])]
    if old.inputs["arn"] in topics:
        ctx.call(
            "sns",
            "set_topic_attributes",
            TopicArn=old.inputs["arn"],
            AttributeName="Policy",
            AttributeValue="",
        )


def _subscription_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    arn = ctx.call(
        "sns",
        "subscribe",
        TopicArn=inputs["topic"],
        Protocol=inputs["protocol"],
        Endpoint=inputs["endpoint"],
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    return arn, {"arn": arn}


def _rule_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    name = synth["name"]
    params: dict[str, Any] = {
        "Name": name,
        "Description": inputs.get("description", ""),
        "Tags": _tag_list(inputs.get("tags")),
    }
    for key, aws in (
        ("eventPattern", "EventPattern"),
        ("scheduleExpression", "ScheduleExpression"),
        ("roleArn", "RoleArn"),
        ("eventBusName", "EventBusName"),
        ("state", "State"),
    ):
        if inputs.get(key):
            params[aws] = inputs[key]
    if "state" not in inputs and inputs.get("isEnabled") is False:
        params["State"] = "DISABLED"
    arn = ctx.call("events", "put_rule", **params)["RuleArn"]
    return name, {"arn": arn, "name": name}


def _target_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    target_id = inputs.get("targetId") or synth.get("targetId") or synth["id"]
    target: dict[str, Any] = {"Id": target_id, "Arn": inputs["arn"]}
    for key, aws in (("roleArn", "RoleArn"), ("input", "Input"), ("inputPath", "InputPath")):
        if inputs.get(key):
            target[aws] = inputs[key]
    params: dict[str, Any] = {"Rule": inputs["rule"], "Targets": [target]}
    if inputs.get("eventBusName"):
        params["EventBusName"] = inputs["eventBusName"]
    result = ctx.call("events", "put_targets", **params)
    if result.get("FailedEntryCount"):
        raise DeployError(f"put_targets failed: {result.get('FailedEntries')}")
    return f"{inputs['rule']}-{target_id}", {"targetId": target_id}


# --- CodeBuild / CodePipeline ---------------------------------------------------------------------


def _codebuild_params(inputs: dict[str, Any], name: str) -> dict[str, Any]:
    params: dict[str, Any] = {
        "name": name,
        "source": camel(inputs["source"]),
        "artifacts": camel(inputs["artifacts"]),
        "environment": camel(inputs["environment"]),
        "serviceRole": inputs["serviceRole"],
        "tags": _tag_list(inputs.get("tags"), "key", "value"),
    }
    for key, aws in (
        ("description", "description"),
        ("encryptionKey", "encryptionKey"),
        ("buildTimeout", "timeoutInMinutes"),
        ("queuedTimeout", "queuedTimeoutInMinutes"),
    ):
        if inputs.get(key) is not None:
            params[aws] = _num(inputs[key])
    if inputs.get("logsConfig"):
        params["logsConfig"] = camel(inputs["logsConfig"], {"cloudwatchLogs": "cloudWatchLogs"})
    if inputs.get("vpcConfig"):
        params["vpcConfig"] = camel(inputs["vpcConfig"])
    return params


def _codebuild_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    project = ctx.call("codebuild", "create_project", **_codebuild_params(inputs, synth["name"]))["project"]
    return project["arn"], {"arn": project["arn"], "name": project["name"]}


def _codebuild_update(
    ctx: Ctx, inputs: dict[str, Any], synth: Outputs, old: ResourceState
) -> tuple[str, Outputs]:
    ctx.call("codebuild", "update_project", **_codebuild_params(inputs, synth["name"]))
    return old.id or "", {}


def _pipeline_declaration(inputs: dict[str, Any], name: str) -> dict[str, Any]:
    stages = []
    for stage in inputs["stages"]:
        actions = []
        for action in stage["actions"]:
            shaped: dict[str, Any] = {
                "name": action["name"],
                "actionTypeId": {
                    "category": action["category"],
                    "owner": action["owner"],
                    "provider": action["provider"],
                    "version": action["version"],
                },
                "runOrder": _num(action.get("runOrder", 1)),
                "configuration": {k: str(v) for k, v in (action.get("configuration") or {}).items()},
                "outputArtifacts": [{"name": a} for a in action.get("outputArtifacts") or []],
                "inputArtifacts": [{"name": a} for a in action.get("inputArtifacts") or []],
            }
            for key in ("roleArn", "region", "namespace"):
                if action.get(key):
                    shaped[key] = action[key]
            actions.append(shaped)
        stages.append({"name": stage["name"], "actions": actions})
    declaration: dict[str, Any] = {"name": name, "roleArn": inputs["roleArn"], "stages": stages}
    stores = inputs.get("artifactStores") or []
    if len(stores) == 1 and not stores[0].get("region"):
        declaration["artifactStore"] = camel(stores[0])
    else:
        declaration["artifactStores"] = {
            s["region"]: camel({k: v for k, v in s.items() if k != "region"}) for s in stores
        }
    if inputs.get("pipelineType"):
        declaration["pipelineType"] = inputs["pipelineType"]
    if inputs.get("executionMode"):
        declaration["executionMode"] = inputs["executionMode"]
    if inputs.get("variables"):
        declaration["variables"] = camel(inputs["variables"])
    return declaration


def _pipeline_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    name = synth["name"]
    ctx.call(
        "codepipeline",
        "create_pipeline",
        pipeline=_pipeline_declaration(inputs, name),
        tags=_tag_list(inputs.get("tags"), "key", "value"),
    )
    arn = ctx.call("codepipeline", "get_pipeline", name=name)["metadata"]["pipelineArn"]
    return name, {"arn": arn, "name": name}


def _pipeline_update(
    ctx: Ctx, inputs: dict[str, Any], synth: Outputs, old: ResourceState
) -> tuple[str, Outputs]:
    ctx.call("codepipeline", "update_pipeline", pipeline=_pipeline_declaration(inputs, synth["name"]))
    return old.id or "", {}


# --- EMR on EKS, EKS --------------------------------------------------------------------------------


def _virtual_cluster_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    result = ctx.call(
        "emr-containers",
        "create_virtual_cluster",
        name=synth["name"],
        containerProvider=camel(inputs["containerProvider"]),
        tags=dict(inputs.get("tags") or {}),
    )
    return result["id"], {"arn": result["arn"], "name": result["name"]}


def _eks_cluster_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    name = synth["name"]
    vpc = camel(inputs.get("vpcConfig") or {})
    params: dict[str, Any] = {
        "name": name,
        "roleArn": inputs["roleArn"],
        "resourcesVpcConfig": vpc,
        "tags": dict(inputs.get("tags") or {}),
    }
    if inputs.get("version"):
        params["version"] = inputs["version"]
    if inputs.get("enabledClusterLogTypes"):
        params["logging"] = {"clusterLogging": [{"types": inputs["enabledClusterLogTypes"], "enabled": True}]}
    if inputs.get("encryptionConfig"):
        params["encryptionConfig"] = [camel(inputs["encryptionConfig"])]
    if inputs.get("accessConfig"):
        params["accessConfig"] = camel(inputs["accessConfig"])
    if inputs.get("kubernetesNetworkConfig"):
        params["kubernetesNetworkConfig"] = camel(inputs["kubernetesNetworkConfig"])
    cluster = ctx.call("eks", "create_cluster", **params)["cluster"]
    outputs: Outputs = {"arn": cluster["arn"], "name": name, "status": cluster.get("status", "ACTIVE")}
    if cluster.get("endpoint"):
        outputs["endpoint"] = cluster["endpoint"]
    if (cluster.get("certificateAuthority") or {}).get("data"):
        outputs["certificateAuthority"] = {"data": cluster["certificateAuthority"]["data"]}
    issuer = ((cluster.get("identity") or {}).get("oidc") or {}).get("issuer")
    if issuer:
        outputs["identities"] = [{"oidcs": [{"issuer": issuer}]}]
    outputs["vpcConfig"] = {
        **dict(synth.get("vpcConfig") or {}),
        **_eks_cluster_security_group(ctx, name, vpc),
    }
    return name, outputs


def _eks_cluster_security_group(ctx: Ctx, name: str, vpc: dict[str, Any]) -> dict[str, str]:
    """The cluster security group EKS creates with a cluster (moto's EKS does not): in the cluster's VPC,
    named ``eks-cluster-sg-<name>-<id>``, admitting itself, all egress; rules that reference it then work
    as on AWS (https://docs.aws.amazon.com/eks/latest/userguide/sec-group-reqs.html)."""
    subnets = vpc.get("subnetIds") or []
    if not subnets:
        return {}
    vpc_id = ctx.call("ec2", "describe_subnets", SubnetIds=[subnets[0]])["Subnets"][0]["VpcId"]
    group_id = ctx.call(
        "ec2",
        "create_security_group",
        GroupName=f"eks-cluster-sg-{name}-{int(hashlib.sha256(name.encode()).hexdigest()[:8], 16):010d}",
        Description="EKS created security group applied to ENI that is attached to EKS Control Plane master nodes",
        VpcId=vpc_id,
    )["GroupId"]
    ctx.call(
        "ec2",
        "authorize_security_group_ingress",
        GroupId=group_id,
        IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": group_id}]}],
    )
    return {"clusterSecurityGroupId": group_id, "vpcId": vpc_id}


def _nodegroup_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    name = inputs.get("nodeGroupName") or synth.get("name") or synth["id"]
    params: dict[str, Any] = {
        "clusterName": inputs["clusterName"],
        "nodegroupName": name,
        "nodeRole": inputs["nodeRoleArn"],
        "subnets": inputs["subnetIds"],
        "scalingConfig": camel(inputs["scalingConfig"]),
        "tags": dict(inputs.get("tags") or {}),
    }
    for key, aws in (
        ("instanceTypes", "instanceTypes"),
        ("amiType", "amiType"),
        ("capacityType", "capacityType"),
        ("diskSize", "diskSize"),
        ("labels", "labels"),
        ("releaseVersion", "releaseVersion"),
        ("version", "version"),
    ):
        if inputs.get(key) is not None:
            params[aws] = camel(inputs[key])
    if inputs.get("launchTemplate"):
        lt = camel(inputs["launchTemplate"])
        params["launchTemplate"] = {k: str(v) for k, v in lt.items()}
    if inputs.get("updateConfig"):
        params["updateConfig"] = camel(inputs["updateConfig"])
    if inputs.get("taints"):
        params["taints"] = camel(inputs["taints"])
    group = ctx.call("eks", "create_nodegroup", **params)["nodegroup"]
    return f"{inputs['clusterName']}:{name}", {"arn": group["nodegroupArn"], "nodeGroupName": name}


# --- EC2 / VPC ----------------------------------------------------------------------------------------


def _tag_spec(resource_type: str, inputs: dict[str, Any]) -> list[dict[str, Any]]:
    tags = _tag_list(inputs.get("tags"))
    return [{"ResourceType": resource_type, "Tags": tags}] if tags else []


def _ec2_arn(ctx: Ctx, kind: str, rid: str) -> str:
    return f"arn:aws:ec2:{ctx.emulator.region}:{ctx.emulator.account_id}:{kind}/{rid}"


def _vpc_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    vpc = ctx.call(
        "ec2", "create_vpc", CidrBlock=inputs["cidrBlock"], TagSpecifications=_tag_spec("vpc", inputs)
    )["Vpc"]
    vid = vpc["VpcId"]
    for key, attr in (("enableDnsSupport", "EnableDnsSupport"), ("enableDnsHostnames", "EnableDnsHostnames")):
        if key in inputs:
            ctx.call("ec2", "modify_vpc_attribute", VpcId=vid, **{attr: {"Value": bool(inputs[key])}})
    groups = ctx.call(
        "ec2",
        "describe_security_groups",
        Filters=[{"Name": "vpc-id", "Values": [vid]}, {"Name": "group-name", "Values": ["default"]}],
    )["SecurityGroups"]
    outputs: Outputs = {"arn": _ec2_arn(ctx, "vpc", vid)}
    if groups:
        outputs["defaultSecurityGroupId"] = groups[0]["GroupId"]
    return vid, outputs


def _subnet_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    params: dict[str, Any] = {
        "VpcId": inputs["vpcId"],
        "CidrBlock": inputs["cidrBlock"],
        "TagSpecifications": _tag_spec("subnet", inputs),
    }
    if inputs.get("availabilityZone"):
        params["AvailabilityZone"] = inputs["availabilityZone"]
    subnet = ctx.call("ec2", "create_subnet", **params)["Subnet"]
    sid = subnet["SubnetId"]
    if inputs.get("mapPublicIpOnLaunch"):
        ctx.call("ec2", "modify_subnet_attribute", SubnetId=sid, MapPublicIpOnLaunch={"Value": True})
    return sid, {"arn": _ec2_arn(ctx, "subnet", sid), "availabilityZone": subnet["AvailabilityZone"]}


def _permissions(rules: list[dict[str, Any]], self_id: str) -> list[dict[str, Any]]:
    perms = []
    for rule in rules:
        perm: dict[str, Any] = {"IpProtocol": str(rule.get("protocol", "-1"))}
        if perm["IpProtocol"] not in ("-1", "all"):
            perm.update(FromPort=_num(rule.get("fromPort", 0)), ToPort=_num(rule.get("toPort", 0)))
        desc = {"Description": rule["description"]} if rule.get("description") else {}
        if rule.get("cidrBlocks"):
            perm["IpRanges"] = [{"CidrIp": c, **desc} for c in rule["cidrBlocks"]]
        if rule.get("ipv6CidrBlocks"):
            perm["Ipv6Ranges"] = [{"CidrIpv6": c, **desc} for c in rule["ipv6CidrBlocks"]]
        if rule.get("prefixListIds"):
            perm["PrefixListIds"] = [{"PrefixListId": p, **desc} for p in rule["prefixListIds"]]
        groups = list(rule.get("securityGroups") or []) + ([self_id] if rule.get("self") else [])
        if groups:
            perm["UserIdGroupPairs"] = [{"GroupId": g, **desc} for g in groups]
        perms.append(perm)
    return perms


def _sg_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    params: dict[str, Any] = {
        "GroupName": ctx.autoname(inputs),
        "Description": inputs.get("description", "Managed by Pulumi"),
        "TagSpecifications": _tag_spec("security-group", inputs),
    }
    if inputs.get("vpcId"):
        params["VpcId"] = inputs["vpcId"]
    gid = ctx.call("ec2", "create_security_group", **params)["GroupId"]
    # Like the provider: the default allow-all egress goes; only the declared rules stay.
    ctx.call(
        "ec2",
        "revoke_security_group_egress",
        GroupId=gid,
        IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    if inputs.get("ingress"):
        ctx.call(
            "ec2",
            "authorize_security_group_ingress",
            GroupId=gid,
            IpPermissions=_permissions(inputs["ingress"], gid),
        )
    if inputs.get("egress"):
        ctx.call(
            "ec2",
            "authorize_security_group_egress",
            GroupId=gid,
            IpPermissions=_permissions(inputs["egress"], gid),
        )
    return gid, {"arn": _ec2_arn(ctx, "security-group", gid), "name": ctx.autoname(inputs)}


def _sg_rule(direction: str) -> CreateFn:
    def create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
        perm: dict[str, Any] = {"IpProtocol": str(inputs.get("ipProtocol", "-1"))}
        if perm["IpProtocol"] != "-1":
            perm.update(FromPort=_num(inputs.get("fromPort")), ToPort=_num(inputs.get("toPort")))
        desc = {"Description": inputs["description"]} if inputs.get("description") else {}
        if inputs.get("cidrIpv4"):
            perm["IpRanges"] = [{"CidrIp": inputs["cidrIpv4"], **desc}]
        if inputs.get("prefixListId"):
            perm["PrefixListIds"] = [{"PrefixListId": inputs["prefixListId"], **desc}]
        if inputs.get("referencedSecurityGroupId"):
            perm["UserIdGroupPairs"] = [{"GroupId": inputs["referencedSecurityGroupId"], **desc}]
        op = f"authorize_security_group_{direction}"
        rules = ctx.call("ec2", op, GroupId=inputs["securityGroupId"], IpPermissions=[perm]).get(
            "SecurityGroupRules", []
        )
        rid = rules[0]["SecurityGroupRuleId"] if rules else synth["id"]
        return rid, {"securityGroupRuleId": rid, "arn": _ec2_arn(ctx, "security-group-rule", rid)}

    return create


def _sg_rule_delete(direction: str) -> DeleteFn:
    def delete(ctx: Ctx, old: ResourceState) -> None:
        ctx.call(
            "ec2",
            f"revoke_security_group_{direction}",
            GroupId=old.inputs["securityGroupId"],
            SecurityGroupRuleIds=[old.id],
        )

    return delete


def _igw_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    gid = ctx.call("ec2", "create_internet_gateway", TagSpecifications=_tag_spec("internet-gateway", inputs))[
        "InternetGateway"
    ]["InternetGatewayId"]
    if inputs.get("vpcId"):
        ctx.call("ec2", "attach_internet_gateway", InternetGatewayId=gid, VpcId=inputs["vpcId"])
    return gid, {"arn": _ec2_arn(ctx, "internet-gateway", gid)}


def _igw_delete(ctx: Ctx, old: ResourceState) -> None:
    if old.inputs.get("vpcId"):
        ctx.call("ec2", "detach_internet_gateway", InternetGatewayId=old.id, VpcId=old.inputs["vpcId"])
    ctx.call("ec2", "delete_internet_gateway", InternetGatewayId=old.id)


def _route_table_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    rid = ctx.call(
        "ec2", "create_route_table", VpcId=inputs["vpcId"], TagSpecifications=_tag_spec("route-table", inputs)
    )["RouteTable"]["RouteTableId"]
    return rid, {"arn": _ec2_arn(ctx, "route-table", rid)}


_ROUTE_TARGETS = (
    ("gatewayId", "GatewayId"),
    ("natGatewayId", "NatGatewayId"),
    ("vpcEndpointId", "VpcEndpointId"),
    ("transitGatewayId", "TransitGatewayId"),
    ("networkInterfaceId", "NetworkInterfaceId"),
    ("vpcPeeringConnectionId", "VpcPeeringConnectionId"),
)


def _route_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    params: dict[str, Any] = {"RouteTableId": inputs["routeTableId"]}
    if inputs.get("destinationCidrBlock"):
        params["DestinationCidrBlock"] = inputs["destinationCidrBlock"]
    if inputs.get("destinationPrefixListId"):
        params["DestinationPrefixListId"] = inputs["destinationPrefixListId"]
    for key, aws in _ROUTE_TARGETS:
        if inputs.get(key):
            params[aws] = inputs[key]
    ctx.call("ec2", "create_route", **params)
    dest = inputs.get("destinationCidrBlock") or inputs.get("destinationPrefixListId", "")
    return f"r-{inputs['routeTableId']}{dest}", {}


def _route_delete(ctx: Ctx, old: ResourceState) -> None:
    params: dict[str, Any] = {"RouteTableId": old.inputs["routeTableId"]}
    if old.inputs.get("destinationCidrBlock"):
        params["DestinationCidrBlock"] = old.inputs["destinationCidrBlock"]
    if old.inputs.get("destinationPrefixListId"):
        params["DestinationPrefixListId"] = old.inputs["destinationPrefixListId"]
    ctx.call("ec2", "delete_route", **params)


def _rta_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    params: dict[str, Any] = {"RouteTableId": inputs["routeTableId"]}
    if inputs.get("subnetId"):
        params["SubnetId"] = inputs["subnetId"]
    if inputs.get("gatewayId"):
        params["GatewayId"] = inputs["gatewayId"]
    aid = ctx.call("ec2", "associate_route_table", **params)["AssociationId"]
    return aid, {}


def _eip_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    addr = ctx.call(
        "ec2",
        "allocate_address",
        Domain=inputs.get("domain", "vpc"),
        TagSpecifications=_tag_spec("elastic-ip", inputs),
    )
    aid = addr["AllocationId"]
    return aid, {"allocationId": aid, "publicIp": addr["PublicIp"], "arn": _ec2_arn(ctx, "elastic-ip", aid)}


def _nat_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    params: dict[str, Any] = {
        "SubnetId": inputs["subnetId"],
        "ConnectivityType": inputs.get("connectivityType", "public"),
        "TagSpecifications": _tag_spec("natgateway", inputs),
    }
    if inputs.get("allocationId"):
        params["AllocationId"] = inputs["allocationId"]
    nid = ctx.call("ec2", "create_nat_gateway", **params)["NatGateway"]["NatGatewayId"]
    return nid, {"arn": _ec2_arn(ctx, "natgateway", nid)}


def _vpce_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    params: dict[str, Any] = {
        "VpcId": inputs["vpcId"],
        "ServiceName": inputs["serviceName"],
        "VpcEndpointType": inputs.get("vpcEndpointType", "Gateway"),
        "TagSpecifications": _tag_spec("vpc-endpoint", inputs),
    }
    for key, aws in (
        ("routeTableIds", "RouteTableIds"),
        ("subnetIds", "SubnetIds"),
        ("securityGroupIds", "SecurityGroupIds"),
        ("policy", "PolicyDocument"),
    ):
        if inputs.get(key):
            params[aws] = inputs[key]
    if "privateDnsEnabled" in inputs:
        params["PrivateDnsEnabled"] = bool(inputs["privateDnsEnabled"])
    endpoint = ctx.call("ec2", "create_vpc_endpoint", **params)["VpcEndpoint"]
    vid = endpoint["VpcEndpointId"]
    dns = [
        {"dnsName": d.get("DnsName"), "hostedZoneId": d.get("HostedZoneId")}
        for d in endpoint.get("DnsEntries", [])
    ]
    return vid, {"arn": _ec2_arn(ctx, "vpc-endpoint", vid), "dnsEntries": dns or synth.get("dnsEntries", [])}


def _launch_template_create(ctx: Ctx, inputs: dict[str, Any], synth: Outputs) -> tuple[str, Outputs]:
    keep = (
        "blockDeviceMappings",
        "metadataOptions",
        "tagSpecifications",
        "imageId",
        "instanceType",
        "userData",
    )
    data = pascal({k: inputs[k] for k in keep if k in inputs})
    for spec in data.get("TagSpecifications", []):
        spec["Tags"] = _tag_list(spec.get("Tags"))
    for mapping in data.get("BlockDeviceMappings", []):
        ebs = mapping.get("Ebs") or {}
        for flag in ("DeleteOnTermination", "Encrypted"):
            if isinstance(ebs.get(flag), str):
                ebs[flag] = ebs[flag] == "true"
    params: dict[str, Any] = {"LaunchTemplateName": ctx.autoname(inputs), "LaunchTemplateData": data}
    if inputs.get("description"):
        params["VersionDescription"] = inputs["description"][:255]
    lt = ctx.call("ec2", "create_launch_template", **params)["LaunchTemplate"]
    lid = lt["LaunchTemplateId"]
    return lid, {
        "arn": _ec2_arn(ctx, "launch-template", lid),
        "latestVersion": lt["LatestVersionNumber"],
        "defaultVersion": lt["DefaultVersionNumber"],
        "name": lt["LaunchTemplateName"],
    }


def _call_delete(
    service: str, operation: str, param: str, value: Callable[[ResourceState], Any] | None = None
) -> DeleteFn:
    def delete(ctx: Ctx, old: ResourceState) -> None:
        ctx.call(service, operation, **{param: value(old) if value else old.id})

    return delete


def _handlers() -> dict[str, Handler]:
    s3 = "aws:s3/"
    return {
        # S3
        f"{s3}bucket:Bucket": Handler(
            _bucket_create, _bucket_delete, _bucket_update, ("bucket", "bucketPrefix")
        ),
        f"{s3}bucketV2:BucketV2": Handler(
            _bucket_create, _bucket_delete, _bucket_update, ("bucket", "bucketPrefix")
        ),
        f"{s3}bucketPolicy:BucketPolicy": _s3_sub(
            "put_bucket_policy", lambda i: {"Policy": i["policy"]}, "delete_bucket_policy"
        ),
        f"{s3}bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": _s3_sub(
            "put_bucket_encryption",
            lambda i: {
                "ServerSideEncryptionConfiguration": {
                    "Rules": pascal(
                        i["rules"], {"kmsMasterKeyId": "KMSMasterKeyID", "sseAlgorithm": "SSEAlgorithm"}
                    )
                }
            },
            "delete_bucket_encryption",
        ),
        f"{s3}bucketVersioning:BucketVersioning": _s3_sub(
            "put_bucket_versioning",
            lambda i: {"VersioningConfiguration": pascal(i["versioningConfiguration"])},
            "suspend-versioning",
        ),
        f"{s3}bucketPublicAccessBlock:BucketPublicAccessBlock": _s3_sub(
            "put_public_access_block",
            lambda i: {
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": bool(i.get("blockPublicAcls")),
                    "IgnorePublicAcls": bool(i.get("ignorePublicAcls")),
                    "BlockPublicPolicy": bool(i.get("blockPublicPolicy")),
                    "RestrictPublicBuckets": bool(i.get("restrictPublicBuckets")),
                }
            },
            "delete_public_access_block",
        ),
        f"{s3}bucketOwnershipControls:BucketOwnershipControls": _s3_sub(
            "put_bucket_ownership_controls",
            lambda i: {"OwnershipControls": {"Rules": [pascal(i["rule"])]}},
            "delete_bucket_ownership_controls",
        ),
        f"{s3}bucketLifecycleConfiguration:BucketLifecycleConfiguration": _s3_sub(
            "put_bucket_lifecycle_configuration", _lifecycle_rules, "delete_bucket_lifecycle"
        ),
        f"{s3}bucketLogging:BucketLogging": _s3_sub("put_bucket_logging", _logging, "disable-logging"),
        # KMS
        "aws:kms/key:Key": Handler(
            _key_create, _key_delete, _key_update, ("customerMasterKeySpec", "keyUsage")
        ),
        "aws:kms/alias:Alias": Handler(
            _alias_create, _call_delete("kms", "delete_alias", "AliasName"), _alias_update, ("name",)
        ),
        # IAM
        "aws:iam/role:Role": Handler(
            _role_create,
            _call_delete("iam", "delete_role", "RoleName"),
            _role_update,
            ("name", "namePrefix", "path"),
        ),
        "aws:iam/rolePolicy:RolePolicy": Handler(
            _role_policy_create,
            lambda ctx, old: ctx.call(
                "iam", "delete_role_policy", RoleName=old.inputs["role"], PolicyName=old.outputs["name"]
            ),
            _put(_role_policy_create),
            ("name", "namePrefix", "role"),
        ),
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment": Handler(
            _attachment_create,
            lambda ctx, old: ctx.call(
                "iam", "detach_role_policy", RoleName=old.inputs["role"], PolicyArn=old.inputs["policyArn"]
            ),
            None,
            ("role", "policyArn"),
        ),
        "aws:iam/policy:Policy": Handler(
            _policy_create,
            _call_delete("iam", "delete_policy", "PolicyArn"),
            _policy_update,
            ("name", "namePrefix", "path"),
        ),
        "aws:iam/instanceProfile:InstanceProfile": Handler(_profile_create, _profile_delete),
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider": Handler(
            _oidc_create, _call_delete("iam", "delete_open_id_connect_provider", "OpenIDConnectProviderArn")
        ),
        # Glue / Athena
        "aws:glue/catalogDatabase:CatalogDatabase": Handler(
            _glue_db_create,
            lambda ctx, old: ctx.call("glue", "delete_database", Name=old.inputs["name"]),
            _glue_db_update,
            ("name", "catalogId"),
        ),
        "aws:glue/catalogTable:CatalogTable": Handler(
            _glue_table_create,
            lambda ctx, old: ctx.call(
                "glue", "delete_table", DatabaseName=old.inputs["databaseName"], Name=old.inputs["name"]
            ),
            _glue_table_update,
            ("name", "databaseName", "catalogId"),
        ),
        "aws:athena/workgroup:Workgroup": Handler(
            _workgroup_create,
            lambda ctx, old: ctx.call(
                "athena",
                "delete_work_group",
                WorkGroup=old.id,
                RecursiveDeleteOption=bool(old.inputs.get("forceDestroy")),
            ),
            _workgroup_update,
            ("name",),
        ),
        "aws:athena/namedQuery:NamedQuery": Handler(
            _named_query_create, _call_delete("athena", "delete_named_query", "NamedQueryId")
        ),
        # SageMaker
        "aws:sagemaker/modelPackageGroup:ModelPackageGroup": Handler(
            _mpg_create,
            _call_delete("sagemaker", "delete_model_package_group", "ModelPackageGroupName"),
            None,
            ("modelPackageGroupName",),
        ),
        "aws:sagemaker/model:Model": Handler(
            _model_create, _call_delete("sagemaker", "delete_model", "ModelName")
        ),
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration": Handler(
            _endpoint_config_create, _call_delete("sagemaker", "delete_endpoint_config", "EndpointConfigName")
        ),
        "aws:sagemaker/endpoint:Endpoint": Handler(
            _endpoint_create,
            _call_delete("sagemaker", "delete_endpoint", "EndpointName"),
            _endpoint_update,
            ("name",),
        ),
        # CloudWatch, Logs, SNS, EventBridge
        "aws:cloudwatch/metricAlarm:MetricAlarm": Handler(
            _alarm_create,
            lambda ctx, old: ctx.call("cloudwatch", "delete_alarms", AlarmNames=[old.id]),
            _put(_alarm_create),
            ("name",),
        ),
        "aws:cloudwatch/logGroup:LogGroup": Handler(
            _log_group_create,
            _call_delete("logs", "delete_log_group", "logGroupName"),
            _log_group_update,
            ("name", "namePrefix"),
        ),
        "aws:cloudwatch/dashboard:Dashboard": Handler(
            _dashboard_create,
            lambda ctx, old: ctx.call("cloudwatch", "delete_dashboards", DashboardNames=[old.id]),
            _put(_dashboard_create),
            ("dashboardName",),
        ),
        "aws:sns/topic:Topic": Handler(
            _topic_create,
            _call_delete("sns", "delete_topic", "TopicArn"),
            _topic_update,
            ("name", "namePrefix", "fifoTopic"),
        ),
        "aws:sns/topicPolicy:TopicPolicy": Handler(
            _topic_policy_create, _topic_policy_delete, _put(_topic_policy_create), ("arn",)
        ),
        "aws:sns/topicSubscription:TopicSubscription": Handler(
            _subscription_create, _call_delete("sns", "unsubscribe", "SubscriptionArn")
        ),
        "aws:cloudwatch/eventRule:EventRule": Handler(
            _rule_create,
            lambda ctx, old: ctx.call("events", "delete_rule", Name=old.id),
            _put(_rule_create),
            ("name", "namePrefix", "eventBusName"),
        ),
        "aws:cloudwatch/eventTarget:EventTarget": Handler(
            _target_create,
            lambda ctx, old: ctx.call(
                "events", "remove_targets", Rule=old.inputs["rule"], Ids=[old.outputs["targetId"]]
            ),
            _put(_target_create),
            ("rule", "targetId", "eventBusName"),
        ),
        # Delivery
        "aws:codebuild/project:Project": Handler(
            _codebuild_create,
            lambda ctx, old: ctx.call("codebuild", "delete_project", name=old.outputs["name"]),
            _codebuild_update,
            ("name",),
        ),
        "aws:codepipeline/pipeline:Pipeline": Handler(
            _pipeline_create,
            _call_delete("codepipeline", "delete_pipeline", "name"),
            _pipeline_update,
            ("name",),
        ),
        # EMR on EKS, EKS
        "aws:emrcontainers/virtualCluster:VirtualCluster": Handler(
            _virtual_cluster_create, _call_delete("emr-containers", "delete_virtual_cluster", "id")
        ),
        "aws:eks/cluster:Cluster": Handler(
            _eks_cluster_create, _call_delete("eks", "delete_cluster", "name")
        ),
        "aws:sagemaker/featureGroup:FeatureGroup": Handler(
            _feature_group_create,
            _call_delete("sagemaker", "delete_feature_group", "FeatureGroupName"),
        ),
        "aws:eks/nodeGroup:NodeGroup": Handler(
            _nodegroup_create,
            lambda ctx, old: ctx.call(
                "eks",
                "delete_nodegroup",
                clusterName=old.inputs["clusterName"],
                nodegroupName=old.outputs["nodeGroupName"],
            ),
        ),
        # EC2 / VPC
        "aws:ec2/vpc:Vpc": Handler(_vpc_create, _call_delete("ec2", "delete_vpc", "VpcId")),
        "aws:ec2/subnet:Subnet": Handler(_subnet_create, _call_delete("ec2", "delete_subnet", "SubnetId")),
        "aws:ec2/securityGroup:SecurityGroup": Handler(
            _sg_create, _call_delete("ec2", "delete_security_group", "GroupId")
        ),
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": Handler(
            _sg_rule("ingress"), _sg_rule_delete("ingress")
        ),
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": Handler(
            _sg_rule("egress"), _sg_rule_delete("egress")
        ),
        "aws:ec2/internetGateway:InternetGateway": Handler(_igw_create, _igw_delete),
        "aws:ec2/routeTable:RouteTable": Handler(
            _route_table_create, _call_delete("ec2", "delete_route_table", "RouteTableId")
        ),
        "aws:ec2/route:Route": Handler(_route_create, _route_delete),
        "aws:ec2/routeTableAssociation:RouteTableAssociation": Handler(
            _rta_create, _call_delete("ec2", "disassociate_route_table", "AssociationId")
        ),
        "aws:ec2/eip:Eip": Handler(_eip_create, _call_delete("ec2", "release_address", "AllocationId")),
        "aws:ec2/natGateway:NatGateway": Handler(
            _nat_create, _call_delete("ec2", "delete_nat_gateway", "NatGatewayId")
        ),
        "aws:ec2/vpcEndpoint:VpcEndpoint": Handler(
            _vpce_create, _call_delete("ec2", "delete_vpc_endpoints", "VpcEndpointIds", lambda old: [old.id])
        ),
        "aws:ec2/launchTemplate:LaunchTemplate": Handler(
            _launch_template_create, _call_delete("ec2", "delete_launch_template", "LaunchTemplateId")
        ),
    }


HANDLERS: dict[str, Handler] = _handlers()
"""Resource types the deploy creates in the emulator; every other type is recorded only."""


# --------------------------------------------------------------------------------------------
# The mock engine that applies
# --------------------------------------------------------------------------------------------


def _key(type_token: str, name: str) -> str:
    return f"{type_token}::{name}"


class EmulatorMocks(RecordingMocks):
    """Recording mocks that apply each supported resource to the emulator and return its real state."""

    def __init__(
        self,
        emulator: Emulator,
        previous: DeployState | None = None,
        *,
        endpoint_timeout: float = 300.0,
        handlers: Mapping[str, Handler] | None = None,
        credentials: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(region=emulator.region, account_id=emulator.account_id)
        self.emulator = emulator
        self.previous = previous.resources if previous else {}
        self.handlers = dict(HANDLERS if handlers is None else handlers)
        self.calls: list[AwsCall] = []
        self.ctx = Ctx(emulator, self.calls, endpoint_timeout, credentials)
        self.state: dict[str, ResourceState] = {}
        self.changes: list[Change] = []
        self.deferred_deletes: list[ResourceState] = []
        self.failure: DeployError | None = None
        self._lock = threading.Lock()

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        """Apply the resource to the emulator (create, update, replace or nothing) and return its state."""
        rid, synth = super().new_resource(args)
        if not args.custom:
            return rid, synth
        inputs = _jsonable(args.inputs)
        key = _key(args.typ, args.name)
        with self._lock:
            handler = self.handlers.get(args.typ)
            if handler is None:
                self.state[key] = ResourceState(
                    key, args.typ, args.name, rid, inputs, _jsonable(synth), False
                )
                self.changes.append(Change("record", args.typ, args.name))
                return rid, synth
            if self.failure is not None:  # stop applying after the first failure; keep the program going
                return rid, synth
            start = len(self.calls)
            self.ctx.resource = key
            self.ctx.logical_name = args.name
            try:
                action, real_id, outputs = self._apply(key, handler, inputs, synth)
            except Exception as exc:  # boto3 ClientError/ParamValidationError, DeployError
                error = exc if isinstance(exc, DeployError) else None
                message = f"deploy failed at {args.typ} {args.name!r}: {exc}"
                self.failure = type(error)(message) if error is not None else DeployError(message)
                self.failure.__cause__ = exc
                return rid, synth
            state = ResourceState(key, args.typ, args.name, real_id, inputs, _jsonable(outputs), True)
            self.state[key] = state
            calls = tuple(f"{c.service}:{c.operation}" for c in self.calls[start:])
            self.changes.append(Change(action, args.typ, args.name, calls))
            return real_id, outputs

    def _apply(
        self, key: str, handler: Handler, inputs: dict[str, Any], synth: dict[str, Any]
    ) -> tuple[str, str, dict[str, Any]]:
        old = self.previous.get(key)
        if old is not None and old.in_emulator and old.inputs == inputs:
            return "same", old.id or "", {**synth, **old.outputs}
        if old is None or not old.in_emulator:
            real_id, real = handler.create(self.ctx, inputs, synth)
            return "create", real_id, {**synth, **real, "id": real_id}
        forces_new = any(inputs.get(k) != old.inputs.get(k) for k in handler.replace_on)
        if handler.update is not None and not forces_new:
            real_id, real = handler.update(self.ctx, inputs, synth, old)
            return "update", real_id, {**synth, **old.outputs, **real, "id": real_id}
        # Replace. A new physical name: create the new first, delete the old at the end (Pulumi's
        # default create-before-delete); the same name: the old must go first.
        same_name = old.id == rid_hint(synth, old)
        if same_name:
            handler.delete(self.ctx, old)
        real_id, real = handler.create(self.ctx, inputs, synth)
        if not same_name:
            self.deferred_deletes.append(old)
        return "replace", real_id, {**synth, **real, "id": real_id}


def rid_hint(synth: Mapping[str, Any], old: ResourceState) -> str | None:
    """The physical name the new resource will take, when it names itself like the old one."""
    for key in ("bucket", "name", "modelPackageGroupName", "dashboardName"):
        if synth.get(key) and old.outputs.get(key):
            return old.id if synth[key] == old.outputs[key] else None
    return None


# --------------------------------------------------------------------------------------------
# deploy()
# --------------------------------------------------------------------------------------------


def merge_config(base: Mapping[str, str], overrides: Mapping[str, Any] | None) -> dict[str, str]:
    """Apply ``overrides`` (``{"mlops-platform:endpoint": {"modelPackageArn": ...}}``) to a flat config.

    Object values are merged key by key into the existing JSON object; other values replace.
    """
    config = dict(base)
    for key, value in (overrides or {}).items():
        if isinstance(value, Mapping) and key in config:
            try:
                current = json.loads(config[key])
            except json.JSONDecodeError:
                current = None
            if isinstance(current, dict):
                config[key] = json.dumps(_deep_merge(current, value))
                continue
        config[key] = value if isinstance(value, str) else json.dumps(value)
    return config


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in extra.items():
        merged[k] = (
            _deep_merge(merged[k], v) if isinstance(v, Mapping) and isinstance(merged.get(k), dict) else v
        )
    return merged


def emulator_endpoint_urls(emulator: Emulator) -> dict[str, str]:
    """Per-service endpoint URLs that differ from the emulator's main URL (from its extensions).

    An extension that serves a service on its own address (e.g. ``sagemaker-runtime``) says so with
    an ``endpoint_urls`` mapping attribute.
    """
    urls: dict[str, str] = {}
    for ext in emulator.extensions:
        extra = getattr(ext, "endpoint_urls", None)
        if isinstance(extra, Mapping):
            urls.update({str(k): str(v) for k, v in extra.items()})
    return urls


def deploy(
    emulator: Emulator,
    *,
    stack: str = "dev",
    config_overrides: Mapping[str, Any] | None = None,
    previous: DeployState | None = None,
    out_dir: Path | None = None,
    stacks_dir: Path | None = None,
    endpoint_timeout: float = 300.0,
    credentials: Mapping[str, str] | None = None,
) -> DeployResult:
    """Deploy ``stack`` into the running ``emulator`` (an update when ``previous`` is given).

    ``credentials``: the session every AWS call of the deploy is signed with (a promotion's deploy role,
    authorized by the emulator's IAM); None: the account's root keys (an administrator's ``pulumi up``).

    Writes ``outputs.json`` (the stack outputs, as ``pulumi stack output --json`` prints them, plus
    ``endpointUrl``/``endpointUrls`` for the emulator) and ``resources.json`` into ``out_dir`` when
    given. Raises :class:`DeployError` (or :class:`GuardrailRollbackError`) naming the resource and
    the AWS error when a resource cannot be applied.
    """
    import os

    from stacks.config import load_config
    from stacks.platform import build

    # AWS's managed policies (AmazonEKSClusterPolicy, ...) exist in every account; moto loads them only
    # when asked. Read when moto's IAM backend first starts for the account.
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    apply_moto_fixes()
    path = stack_config_file(stack, stacks_dir) if stacks_dir else stack_config_file(stack)
    config = merge_config(read_stack_config(path), config_overrides)
    mocks = EmulatorMocks(emulator, previous, endpoint_timeout=endpoint_timeout, credentials=credentials)

    def program() -> Mapping[str, Any]:
        return build(load_config()).outputs

    synth = run_program(program, config, stack=stack, region=emulator.region, mocks=mocks)
    retained = {_key(r.type, r.name): r.retain_on_delete for r in synth.resources}
    for key, state in mocks.state.items():
        state.retain_on_delete = retained.get(key, False)
    if mocks.failure is not None:
        known = dict(previous.resources) if previous else {}
        known.update(mocks.state)
        mocks.failure.state = DeployState(stack=stack, resources=known)
        raise mocks.failure

    # Deletes: replaced resources' old copies, then resources no longer declared (last created first).
    gone = [
        old
        for k, old in reversed(list((previous.resources if previous else {}).items()))
        if k not in mocks.state
    ]
    for old in [*mocks.deferred_deletes, *gone]:
        mocks.ctx.resource = old.key
        if not old.in_emulator:
            continue
        if old.retain_on_delete:
            mocks.changes.append(Change("retain", old.type, old.name))
            continue
        start = len(mocks.calls)
        try:
            mocks.handlers[old.type].delete(mocks.ctx, old)
        except Exception as exc:
            raise DeployError(f"deploy failed deleting {old.type} {old.name!r}: {exc}") from exc
        calls = tuple(f"{c.service}:{c.operation}" for c in mocks.calls[start:])
        if old.key not in mocks.state:
            mocks.changes.append(Change("delete", old.type, old.name, calls))

    outputs = dict(synth.outputs)
    outputs["endpointUrl"] = emulator.endpoint_url
    outputs["endpointUrls"] = emulator_endpoint_urls(emulator)
    state = DeployState(stack=stack, resources=mocks.state)
    result = DeployResult(stack, outputs, state, mocks.changes, mocks.calls, synth)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        result.outputs_file = write_outputs(outputs, out_dir / OUTPUTS_FILE)
        (out_dir / RESOURCES_FILE).write_text(json.dumps(state.to_json(), indent=2, default=str))
    return result


def write_outputs(outputs: Mapping[str, Any], path: Path) -> Path:
    """Write stack outputs as ``pulumi stack output --json`` does (a JSON object, 2-space indent)."""
    path.write_text(json.dumps(dict(outputs), indent=2) + "\n")
    return path
