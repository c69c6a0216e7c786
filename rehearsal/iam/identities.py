"""How each rehearsed step gets its role's credentials, the way AWS hands them over.

* a DAG task runs as the MWAA execution role: MWAA assumes it as ``airflow-env.amazonaws.com`` for the
  environment (``aws:SourceArn`` the environment's ARN), and the worker's SDK chain reads the session;
* SageMaker assumes a job's or model's role as ``sagemaker.amazonaws.com`` (``aws:SourceArn`` the job or
  model) and downloads channels, uploads artifacts and writes data capture with it;
* an EMR on EKS job's pods get the execution role through IRSA: the pod's service-account token (an
  OIDC JWT from the cluster's issuer) exchanged by ``sts:AssumeRoleWithWebIdentity``.

When the emulator runs without an authorizer (``Emulator(authorizer=None)``, the unit tests of the
executors), every helper here returns None and the caller keeps the account's root credentials.
"""

from __future__ import annotations

import base64
import json
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rehearsal.emulator import Emulator
    from rehearsal.iam.authorizer import Authorizer

AIRFLOW_ENV_SERVICE = "airflow-env.amazonaws.com"
"""The principal MWAA's workers assume the execution role as
(https://docs.aws.amazon.com/mwaa/latest/userguide/mwaa-create-role.html)."""
SAGEMAKER_SERVICE = "sagemaker.amazonaws.com"
IRSA_AUDIENCE = "sts.amazonaws.com"

Credentials = dict[str, str]
"""``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``."""


def authorizer_of(emulator: Emulator | None) -> Authorizer | None:
    """The emulator's IAM authorizer, or None when it runs without IAM."""
    from rehearsal.iam.authorizer import Authorizer

    gate = getattr(emulator, "authorizer", None)
    return gate if isinstance(gate, Authorizer) else None


class RoleSessions:
    """Role sessions issued once per (role, caller, source) and reused (one STS session per job or model).

    A trust refusal raises :class:`rehearsal.iam.TrustDeniedError` (also recorded as a denial).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str, str], Credentials] = {}

    def service(
        self, emulator: Emulator | None, role_arn: str, service: str, source_arn: str | None = None
    ) -> Credentials | None:
        """Credentials of ``role_arn`` assumed by ``service`` for ``source_arn`` (None: no IAM)."""
        authorizer = authorizer_of(emulator)
        if authorizer is None:
            return None
        key = (role_arn, service, source_arn or "")
        with self._lock:
            found = self._cache.get(key)
        if found is not None:
            return found
        issued = authorizer.issue_credentials(
            role_arn, service=service, source_arn=source_arn, session_name=service.split(".")[0]
        )
        with self._lock:
            self._cache[key] = issued
        return issued

    def web_identity(self, emulator: Emulator | None, role_arn: str, token: str) -> Credentials | None:
        """Credentials of ``role_arn`` for an OIDC ``token`` (IRSA); None without IAM."""
        authorizer = authorizer_of(emulator)
        if authorizer is None:
            return None
        key = (role_arn, "web-identity", token)
        with self._lock:
            found = self._cache.get(key)
        if found is not None:
            return found
        issued = authorizer.issue_credentials(role_arn, web_identity_token=token, session_name="irsa")
        with self._lock:
            self._cache[key] = issued
        return issued

    def clear(self) -> None:
        """Forget the sessions (an extension closing)."""
        with self._lock:
            self._cache.clear()


def client_kwargs(emulator: Emulator, credentials: Credentials | None) -> dict[str, str]:
    """boto3 client keyword arguments for ``credentials`` (root credentials when None)."""
    if credentials is None:
        return dict(emulator.credentials)
    return {
        "aws_access_key_id": credentials["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": credentials["AWS_SECRET_ACCESS_KEY"],
        "aws_session_token": credentials["AWS_SESSION_TOKEN"],
    }


def client_as(emulator: Emulator, service: str, credentials: Credentials | None, **kwargs: Any) -> Any:
    """A boto3 client of the emulator signed with ``credentials`` (root when None)."""
    return emulator.client(service, **{**client_kwargs(emulator, credentials), **kwargs})


def service_account_token(issuer_url: str, namespace: str, service_account: str) -> str:
    """The projected service-account token EKS mounts into a pod (an unsigned JWT of its claims).

    Claims as EKS issues them for IRSA: ``iss`` the cluster's OIDC issuer, ``sub``
    ``system:serviceaccount:<namespace>:<name>``, ``aud`` ``sts.amazonaws.com``
    (https://docs.aws.amazon.com/eks/latest/userguide/iam-roles-for-service-accounts.html).
    The emulator does not verify signatures (it has no issuer keys); it checks the claims against
    the role's trust like STS does.
    """
    import time

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {
        "iss": issuer_url if issuer_url.startswith("https://") else f"https://{issuer_url}",
        "sub": f"system:serviceaccount:{namespace}:{service_account}",
        "aud": IRSA_AUDIENCE,
        "iat": now,
        "exp": now + 86_400,
    }
    return f"{part({'alg': 'RS256', 'kid': 'emulator'})}.{part(claims)}.ZW11bGF0b3I"


def log_group_exists(emulator: Emulator, group: str) -> bool:
    """Whether the CloudWatch Logs group exists (the service's own lookup, not a call of the role).

    SageMaker and EMR create a job's log group only when it is missing, which needs
    ``logs:CreateLogGroup``; the platform pre-creates its groups (KMS, retention) and grants no
    ``CreateLogGroup``, so the executors create a group only when it does not exist.
    """
    from moto.logs.models import logs_backends

    return group in logs_backends[emulator.account_id][emulator.region].groups
