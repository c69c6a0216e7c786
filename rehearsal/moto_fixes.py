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
