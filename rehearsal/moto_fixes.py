"""Fixes for moto crashes on requests AWS accepts (the emulator must not refuse what AWS allows).

Each fix is a narrow replacement of one moto function, applied once per process by
:func:`apply_moto_fixes`; each names the moto behaviour it corrects.
"""

from __future__ import annotations

import json
import threading
from typing import Any

_applied = False
_lock = threading.Lock()


def _principal_service(principal: Any) -> Any:
    return principal.get("Service") if isinstance(principal, dict) else None


def apply_moto_fixes() -> None:
    """Apply every fix (idempotent)."""
    global _applied
    with _lock:
        if _applied:
            return
        _fix_logging_policy_principal()
        _fix_codebuild_codepipeline_location()
        _fix_bucket_policy_conditions()
        _fix_update_model_package()
        _fix_glue_update_table_version()
        _applied = True


def _fix_logging_policy_principal() -> None:
    """PutBucketLogging: moto 5.2 crashes (HTTP 500) when the target bucket's policy has a statement
    with ``"Principal": "*"`` (a deny-insecure-transport statement, which AWS accepts). Same check as
    moto's, reading the principal only when it is an object.
    """
    from moto.s3.models import FakeBucket
    from moto.s3.utils import LOGGING_SERVICE_PRINCIPAL

    def _log_permissions_enabled_policy(target_bucket: Any, target_prefix: str | None) -> bool:
        raw = target_bucket.policy
        if not raw:
            return False
        prefix = target_prefix or ""
        base = f"arn:{target_bucket.partition}:s3:::{target_bucket.name}"
        for stmt in json.loads(raw.decode())["Statement"]:
            if _principal_service(stmt.get("Principal", {})) != LOGGING_SERVICE_PRINCIPAL:
                continue
            if stmt.get("Effect", "") != "Allow":
                continue
            actions = stmt.get("Action", [])
            if "s3:PutObject" not in ([actions] if isinstance(actions, str) else actions):
                continue
            resources = stmt.get("Resource")
            resources = [resources] if isinstance(resources, str) else list(resources or [])
            if not {f"{base}/{prefix}*", f"{base}/*", base} & set(resources):
                continue
            return True
        return False

    FakeBucket._log_permissions_enabled_policy = staticmethod(_log_permissions_enabled_policy)  # type: ignore[method-assign]


# Types whose location CodePipeline (or nothing) supplies: AWS takes no location for them.
_NO_LOCATION = {"CODEPIPELINE", "NO_SOURCE", "NO_ARTIFACTS"}


def _fix_codebuild_codepipeline_location() -> None:
    """CreateProject: moto 5.2 requires ``source.location`` and ``artifacts.location`` even for
    ``CODEPIPELINE``, where AWS says location "should not be specified" (the pipeline's source action
    supplies it): https://docs.aws.amazon.com/codebuild/latest/APIReference/API_ProjectSource.html
    The type checks and every other type keep moto's validation.
    """
    from moto.codebuild import responses

    original_source = responses._validate_required_params_source
    original_artifacts = responses._validate_required_params_artifacts

    def source(source: dict[str, Any]) -> None:
        if source.get("type") in _NO_LOCATION:
            return
        original_source(source)

    def artifacts(artifacts: dict[str, Any]) -> None:
        if artifacts.get("type") == "CODEPIPELINE":
            return
        original_artifacts(artifacts)

    responses._validate_required_params_source = source  # type: ignore[assignment]
    responses._validate_required_params_artifacts = artifacts  # type: ignore[assignment]


BUCKET_POLICY_CONTEXT: dict[str, str] = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}
"""Request context for bucket-policy conditions. The emulator listens on plain HTTP on loopback; it
stands for the TLS connection every AWS SDK makes, so ``aws:SecureTransport`` is true (a documented
difference from AWS: a plain-HTTP client would be denied there)."""


def _values(value: Any) -> list[str]:
    return [
        str(v).lower() if isinstance(v, bool) else str(v)
        for v in (value if isinstance(value, list) else [value])
    ]


def _condition_holds(operator: str, expected: Any, actual: str | None) -> bool | None:
    """One condition key under IAM's rules; None when the operator is not known here."""
    import fnmatch

    if_exists = operator.endswith("IfExists")
    op = operator.removesuffix("IfExists")
    if op == "Null":
        return (actual is None) == (_values(expected)[0].lower() == "true")
    if actual is None:
        return if_exists
    wanted = _values(expected)
    negated = op.startswith(("StringNot", "ArnNot", "NumericNot"))
    if op in ("StringEquals", "StringNotEquals", "ArnEquals", "ArnNotEquals"):
        match = actual in wanted
    elif op in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        match = actual.lower() in [w.lower() for w in wanted]
    elif op in ("StringLike", "StringNotLike", "ArnLike", "ArnNotLike"):
        match = any(fnmatch.fnmatchcase(actual, w) for w in wanted)
    elif op == "Bool":
        match = actual.lower() in [w.lower() for w in wanted]
    elif op.startswith("Numeric"):
        compare = {
            "NumericEquals": float.__eq__,
            "NumericNotEquals": float.__eq__,
            "NumericLessThan": float.__lt__,
            "NumericLessThanEquals": float.__le__,
            "NumericGreaterThan": float.__gt__,
            "NumericGreaterThanEquals": float.__ge__,
        }.get(op)
        if compare is None:
            return None
        match = any(compare(float(actual), float(w)) for w in wanted)
    else:
        return None
    return not match if negated else match


def _statement_applies(stmt: dict[str, Any], context: dict[str, str]) -> bool:
    """All condition blocks hold (unknown operators: a Deny applies, an Allow does not)."""
    for operator, keys in (stmt.get("Condition") or {}).items():
        for key, expected in keys.items():
            holds = _condition_holds(operator, expected, context.get(key))
            if holds is None:
                holds = stmt.get("Effect") == "Deny"
            if not holds:
                return False
    return True


def _fix_bucket_policy_conditions() -> None:
    """Bucket policies: moto 5.2 evaluates only ``StringEquals`` conditions and ignores the rest, so a
    ``Deny`` guarded by ``{"Bool": {"aws:SecureTransport": "false"}}`` denies every request. Conditions
    are evaluated here under IAM's rules against :data:`BUCKET_POLICY_CONTEXT` (a missing key fails a
    condition unless ``...IfExists``); moto's action and resource matching is kept.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
    """
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3.models import FakeBucket

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        document = json.loads(self.policy.decode())
        statements = document.get("Statement", [])
        statements = [statements] if isinstance(statements, dict) else statements
        applicable = []
        for stmt in statements:
            if _statement_applies(stmt, BUCKET_POLICY_CONTEXT):
                applicable.append({k: v for k, v in stmt.items() if k != "Condition"})
        if not applicable:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps({**document, "Statement": applicable})).is_action_permitted(
            action, resource
        )

    FakeBucket.get_permission = get_permission  # type: ignore[method-assign]


def _fix_update_model_package() -> None:
    """UpdateModelPackage: moto 5.2 sets every field to what the request carries, so a metadata-only
    update (the promote build's ``deployed`` mark, the MLflow package tag) clears the package's approval
    status, its description and its other metadata keys, and a request with only
    ``CustomerMetadataPropertiesToRemove`` crashes. AWS changes only the fields a request gives:
    ``CustomerMetadataProperties`` adds or replaces keys and ``CustomerMetadataPropertiesToRemove``
    removes keys (the API has the second parameter because the first does not replace the map:
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateModelPackage.html).
    """
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import SageMakerModelBackend

    def update_model_package(
        self: Any,
        model_package_arn: str,
        model_approval_status: str | None,
        approval_description: str | None,
        customer_metadata_properties: dict[str, str] | None,
        customer_metadata_properties_to_remove: list[str] | None,
        additional_inference_specifications_to_add: list[Any] | None,
    ) -> str:
        name = self.model_package_name_mapping.get(model_package_arn, model_package_arn)
        package = self.model_packages.get(name)
        if package is None:
            raise ValidationError(f"Model package {model_package_arn} not found")
        if model_approval_status is not None:
            package.set_model_approval_status(model_approval_status)
        if approval_description is not None:
            package.approval_description = approval_description
        metadata = dict(package.customer_metadata_properties or {})
        metadata.update(customer_metadata_properties or {})
        for key in customer_metadata_properties_to_remove or []:
            metadata.pop(key, None)
        package.customer_metadata_properties = metadata or None
        package.add_additional_inference_specifications(additional_inference_specifications_to_add)
        package.modifications_done()
        return package.arn

    SageMakerModelBackend.update_model_package = update_model_package  # type: ignore[method-assign]


def _fix_glue_update_table_version() -> None:
    """UpdateTable: moto 5.2 ignores ``VersionId``, so of two writers that read the same table version
    the second silently replaces the first one's update. Glue updates only at the version given and
    otherwise answers ``ConcurrentModificationException``
    (https://docs.aws.amazon.com/glue/latest/webapi/API_UpdateTable.html: VersionId, "the version ID at
    which to update the table contents"). An Iceberg commit through Glue relies on exactly this: it
    reads the table, writes new metadata and swaps the pointer at the version it read, so a lost race
    fails instead of dropping the other writer's snapshot.
    """
    from moto.glue.exceptions import GlueClientError
    from moto.glue.models import GlueBackend

    original = GlueBackend.update_table
    lock = threading.Lock()

    class ConcurrentModificationError(GlueClientError):
        def __init__(self, message: str) -> None:
            super().__init__("ConcurrentModificationException", message)

    def update_table(
        self: Any,
        database_name: str,
        table_name: str,
        table_input: dict[str, Any],
        version_id: str | None = None,
    ) -> None:
        with lock:
            if version_id is not None:
                current = str(self.get_table(database_name, table_name)._current_version)
                if str(version_id) != current:
                    raise ConcurrentModificationError(
                        f"Table {database_name}.{table_name} is at version {current}, not {version_id}: "
                        "another update came first"
                    )
            original(self, database_name, table_name, table_input)

    from moto.glue.responses import GlueResponse

    def update_table_response(self: Any) -> Any:
        from moto.core.responses import EmptyResult

        database_name = self.parameters.get("DatabaseName")
        table_input = self.parameters.get("TableInput")
        update_table(
            self.glue_backend,
            database_name,
            table_input.get("Name"),
            table_input,
            self.parameters.get("VersionId"),
        )
        return EmptyResult()

    GlueResponse.update_table = update_table_response  # type: ignore[method-assign]
