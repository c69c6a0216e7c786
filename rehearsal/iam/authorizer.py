"""The emulator's IAM: role sessions issued against trust policies, and every request they make judged.

Usage (the rehearsal)::

    authorizer = Authorizer()
    with Emulator(authorizer=authorizer, extensions=[...]) as emu:
        ...deploy as the root identity (``emu.credentials``: not enforced)...
        env = authorizer.issue_credentials(role_arn, service="sagemaker.amazonaws.com",
                                           source_arn=training_job_arn)
        ...run the step with env (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN)...
        authorizer.raise_for_denials()          # stop at the stage that was refused
        report = authorizer.unused_grant_report()

Enforcement applies to role sessions (credentials moto's STS issued); the account's root identity (the
``testing`` keys the deployer uses) is let through, as an account administrator would be.

``aws:SecureTransport``: the emulator listens on loopback http, but the SDKs always call AWS over
https, so a request is modelled as carrying TLS (``aws:SecureTransport`` true, ``s3:TlsVersion`` 1.3)
unless :attr:`Authorizer.secure_transport` is set False (a test of a deny-insecure-transport policy).
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from rehearsal.iam.actions import Check, UnmappedOperationError, checks_for
from rehearsal.iam.evaluate import Decision, evaluate
from rehearsal.iam.policy import ContextValue, Policy, PolicyError, Principal
from rehearsal.iam.report import (
    AuthorizedCall,
    Denial,
    UnusedGrantReport,
    make_denial,
    role_hint,
    unused_grants,
)
from rehearsal.iam.requests import ApiRequest, RequestNotUnderstoodError, parse_request, service_model

if TYPE_CHECKING:
    from rehearsal.emulator import Emulator

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
ROOT_ACCESS_KEY = "testing"

_REQUEST = threading.local()
"""Per request thread: ``refused_keys``, the object ARNs of a DeleteObjects request IAM refused."""


class AccessDeniedError(RuntimeError):
    """The rehearsal made a call IAM would refuse; carries the denials."""

    def __init__(self, denials: Sequence[Denial]) -> None:
        self.denials = list(denials)
        super().__init__("\n".join(str(d) for d in self.denials))


class TrustDeniedError(AccessDeniedError):
    """A role's trust policy does not let the caller assume it."""


@dataclass(frozen=True)
class Session:
    """A role session the emulator issued."""

    role_arn: str
    session_arn: str
    access_key: str
    principal: Principal


def _default_version_document(policy: Any) -> str:
    for version in getattr(policy, "versions", []):
        if getattr(version, "is_default", False):
            return str(version.document)
    return str(getattr(policy, "document", "") or "{}")


class MotoResources:
    """Reads the emulated account's resources and policies from moto's backends."""

    def __init__(self, account: str, region: str, emulator: Emulator | None = None) -> None:
        self.account = account
        self.region = region
        self._emulator = emulator

    # --- backends
    def _iam(self) -> Any:
        from moto.iam.models import iam_backends

        return iam_backends[self.account]["aws"]

    def _s3(self) -> Any:
        from moto.s3.models import s3_backends

        return s3_backends[self.account]["aws"]

    def _kms(self, region: str) -> Any:
        from moto.kms.models import kms_backends

        return kms_backends[self.account][region]

    # --- Resources protocol
    def kms_key_arn(self, region: str, key_ref: str) -> str | None:
        """The key ARN for any key reference, or None."""
        if key_ref.startswith("arn:") and ":key/" in key_ref:
            region = key_ref.split(":")[3]
        backend = self._kms(region)
        try:
            key_id = backend.any_id_to_key_id(key_ref)
        except Exception:  # moto raises NotFound flavours for unknown aliases
            return None
        key = backend.keys.get(key_id)
        return str(key.arn) if key is not None else None

    def bucket_default_kms_key(self, bucket: str) -> tuple[str | None, bool]:
        """The bucket's default SSE-KMS key and bucket-key flag."""
        found = self._s3().buckets.get(bucket)
        encryption = getattr(found, "encryption", None) if found is not None else None
        if not encryption:
            return None, False
        rules = encryption.get("Rule")
        rule = rules[0] if isinstance(rules, list) else rules or {}
        default = rule.get("ApplyServerSideEncryptionByDefault") or {}
        bucket_key = str(rule.get("BucketKeyEnabled", "false")).lower() == "true"
        if default.get("SSEAlgorithm") in {"aws:kms", "aws:kms:dsse"}:
            return str(default.get("KMSMasterKeyID") or "alias/aws/s3"), bucket_key
        return None, bucket_key

    def object_kms_key(self, bucket: str, key: str) -> tuple[str | None, bool]:
        """The key an existing object is encrypted with."""
        found = self._s3().buckets.get(bucket)
        if found is None:
            return None, False
        obj = found.keys.get(key)
        if obj is None or getattr(obj, "encryption", None) not in {"aws:kms", "aws:kms:dsse"}:
            return None, False
        return str(obj.kms_key_id or "alias/aws/s3"), bool(getattr(obj, "bucket_key_enabled", False))

    def object_exists(self, bucket: str, key: str) -> bool | None:
        """Whether moto's bucket holds a current (not delete-marked) object at ``key``."""
        found = self._s3().buckets.get(bucket)
        if found is None:
            return None
        from moto.s3.models import FakeDeleteMarker

        obj = found.keys.get(key)
        return obj is not None and not isinstance(obj, FakeDeleteMarker)

    def next_model_package_version(self, region: str, group: str) -> int:
        """One more than the highest version moto holds for ``group``."""
        from moto.sagemaker.models import sagemaker_backends

        backend = sagemaker_backends[self.account][region]
        versions = [
            int(p.model_package_version or 0)
            for p in backend.model_packages.values()
            if p.model_package_group_name == group
        ]
        return max(versions, default=0) + 1

    def athena_query_workgroup(self, region: str, query_execution_id: str) -> str:
        """The workgroup moto recorded for the query."""
        from moto.athena.models import athena_backends

        execution = athena_backends[self.account][region].executions.get(query_execution_id)
        workgroup = getattr(execution, "workgroup", None)
        return str(getattr(workgroup, "name", None) or "primary")

    def model_card_kms_key(self, region: str, name: str) -> str | None:
        """The key moto stored with the card's latest version (SecurityConfig.KmsKeyId)."""
        from moto.sagemaker.models import sagemaker_backends

        versions = sagemaker_backends[self.account][region].model_cards.get(name) or []
        if not versions:
            return None
        config = versions[-1].security_config or {}
        return str(config.get("KmsKeyId") or "") or None

    def ciphertext_key(self, blob: bytes) -> str | None:
        """The key id moto's ciphertext format carries."""
        from moto.kms.utils import _deserialize_ciphertext_blob  # pyright: ignore[reportPrivateUsage]

        try:
            return str(_deserialize_ciphertext_blob(blob).key_id)
        except Exception:
            return None

    # --- policies
    def role(self, role_arn: str) -> Any:
        """moto's role, or None."""
        try:
            return self._iam().get_role_by_arn(role_arn)
        except Exception:
            return None

    def role_policies(self, role_arn: str) -> list[Policy]:
        """The role's identity policies: inline and attached managed."""
        role = self.role(role_arn)
        if role is None:
            return []
        name = role.name
        policies = [
            Policy.parse(f"inline policy {policy_name} of role {name}", document)
            for policy_name, document in role.policies.items()
        ]
        for arn, managed in role.managed_policies.items():
            policies.append(
                Policy.parse(
                    f"managed policy {arn} attached to role {name}", _default_version_document(managed)
                )
            )
        return policies

    def permissions_boundary(self, role_arn: str) -> Policy | None:
        """The role's permissions boundary (a managed policy), if it has one."""
        role = self.role(role_arn)
        arn = getattr(role, "permissions_boundary_arn", None) if role is not None else None
        if not arn:
            return None
        try:
            managed = self._iam().get_policy(arn)
        except Exception as exc:
            raise PolicyError(f"the permissions boundary {arn} of {role_arn} does not exist") from exc
        return Policy.parse(f"permissions boundary {arn}", _default_version_document(managed))

    def trust_policy(self, role_arn: str) -> Policy | None:
        """The role's assume-role policy."""
        role = self.role(role_arn)
        if role is None:
            return None
        return Policy.parse(
            f"trust policy of role {role.name}", role.assume_role_policy_document, kind="trust"
        )

    def all_role_arns(self) -> list[str]:
        """Every role in the account."""
        return [str(r.arn) for r in self._iam().roles.values()]

    def resource_policy(self, kind: str, ident: str) -> Policy | None:
        """The resource policy of kind ``kind`` for ``ident`` (see :attr:`Check.resource_policy`)."""
        if kind == "s3":
            bucket = self._s3().buckets.get(ident)
            if bucket is None or not bucket.policy:
                return None
            text = bucket.policy.decode() if isinstance(bucket.policy, bytes) else str(bucket.policy)
            return Policy.parse(f"bucket policy of {ident}", text, kind="resource")
        if kind == "kms":
            if ":key/" not in ident:
                return None
            region = ident.split(":")[3]
            key = self._kms(region).keys.get(ident.split(":key/")[1])
            return (
                Policy.parse(f"key policy of {ident}", key.policy, kind="resource")
                if key is not None
                else None
            )
        if kind == "sns":
            from moto.sns.models import sns_backends

            region = ident.split(":")[3] if ident.count(":") >= 5 else self.region
            topic = sns_backends[self.account][region].topics.get(ident)
            return Policy.parse(f"topic policy of {ident}", topic.policy, kind="resource") if topic else None
        if kind == "sagemaker-group":
            text = self._group_policy(ident)
            return (
                Policy.parse(f"model package group policy of {ident}", text, kind="resource")
                if text
                else None
            )
        if kind == "trust":
            return self.trust_policy(ident)
        raise PolicyError(f"unknown resource policy kind {kind!r}")

    def _group_policy(self, group_arn: str) -> str | None:
        if self._emulator is None:
            return None
        try:
            registry = self._emulator.extension("sagemaker-registry")
        except Exception:
            return None
        getter = getattr(registry, "group_policy", None)
        found = getter(group_arn) if callable(getter) else None
        return found if isinstance(found, str) else None

    def oidc_provider_exists(self, provider_arn: str) -> bool:
        """An IAM OIDC identity provider with this ARN exists."""
        return provider_arn in self._iam().open_id_providers


def _jwt_claims(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("a web identity token is a JWT: header.payload.signature")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    claims = json.loads(base64.urlsafe_b64decode(payload))
    if not isinstance(claims, dict):
        raise ValueError("the JWT payload is not an object")
    return claims


class Authorizer:
    """IAM for the emulator: issue role sessions, judge their requests, record what happened."""

    def __init__(self, *, enforce: bool = True, secure_transport: bool = True) -> None:
        self.enforce = enforce
        """Deny what IAM would deny (False: decide and record only)."""
        self.secure_transport = secure_transport
        """What ``aws:SecureTransport`` requests carry (see the module docstring)."""
        self._lock = threading.Lock()
        self._denials: list[Denial] = []
        self._authorized: list[AuthorizedCall] = []
        self._resources: MotoResources | None = None
        self._moto_bucket_check: Any = None

    # --- emulator hook ----------------------------------------------------------------------------

    def wrap(self, app: WsgiApp, emulator: Emulator) -> WsgiApp:
        """Put the authorizer in front of moto's WSGI app (called by :class:`Emulator`)."""
        self._resources = MotoResources(emulator.account_id, emulator.region, emulator)
        self._take_over_bucket_policies()

        def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if not length and environ.get("wsgi.input_terminated"):
                # A chunked body without a Content-Length (the AWS SDK for C++ behind pyarrow's S3
                # FileSystem uploads so): werkzeug's input reads it to its end.
                body = environ["wsgi.input"].read()
                environ["CONTENT_LENGTH"] = str(len(body))
            else:
                body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            refusal = self._judge(environ, body)
            if refusal is None:
                try:
                    return app(environ, start_response)
                finally:
                    _REQUEST.refused_keys = frozenset()
            status, headers, payload = refusal
            start_response(status, [*headers, ("Content-Length", str(len(payload)))])
            return [payload]

        return middleware

    def _take_over_bucket_policies(self) -> None:
        # moto applies a bucket policy's Deny statements ignoring their conditions (a TLS-only policy
        # would refuse every request); the authorizer evaluates bucket policies itself, so moto's own
        # check is switched off while it is attached
        from moto.iam.access_control import PermissionResult
        from moto.s3.models import FakeBucket

        if self._moto_bucket_check is None:
            self._moto_bucket_check = FakeBucket.__dict__["get_permission"]

            def neutral(bucket: Any, action: str, resource: str) -> Any:
                # moto asks per key of a DeleteObjects (as s3:DeleteObject) and answers a DENIED key in
                # the result's Error list, HTTP 200, as S3 does: the keys IAM refused are denied here
                if action == "s3:DeleteObject" and resource in getattr(_REQUEST, "refused_keys", ()):
                    return PermissionResult.DENIED
                return PermissionResult.NEUTRAL

            FakeBucket.get_permission = neutral  # type: ignore[method-assign]

    def close(self) -> None:
        """Give moto back its own bucket-policy check (called when the emulator stops)."""
        from moto.s3.models import FakeBucket

        if self._moto_bucket_check is not None:
            FakeBucket.get_permission = self._moto_bucket_check  # type: ignore[method-assign]
            self._moto_bucket_check = None

    @property
    def resources(self) -> MotoResources:
        """The emulated account's resources (after the emulator started)."""
        if self._resources is None:
            raise RuntimeError(
                "the authorizer is not attached: pass it as Emulator(authorizer=...) and start it"
            )
        return self._resources

    # --- identities -------------------------------------------------------------------------------

    def issue_credentials(
        self,
        role_arn: str,
        *,
        service: str | None = None,
        source_arn: str | None = None,
        source_account: str | None = None,
        web_identity_token: str | None = None,
        caller_role_arn: str | None = None,
        session_name: str | None = None,
    ) -> dict[str, str]:
        """Assume ``role_arn`` as ``service`` (a service principal), an OIDC token, or another role.

        The role's trust policy is evaluated as STS does; a refusal raises :class:`TrustDeniedError`.
        Returns the session's ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``.
        """
        self.check_trust(
            role_arn,
            service=service,
            source_arn=source_arn,
            source_account=source_account,
            web_identity_token=web_identity_token,
            caller_role_arn=caller_role_arn,
        )
        return self._new_session(role_arn, session_name or (service or "web-identity").split(".")[0])

    def check_trust(
        self,
        role_arn: str,
        *,
        service: str | None = None,
        source_arn: str | None = None,
        source_account: str | None = None,
        web_identity_token: str | None = None,
        caller_role_arn: str | None = None,
    ) -> None:
        """Evaluate ``role_arn``'s trust policy for the caller; raise :class:`TrustDeniedError` if refused."""
        if sum(x is not None for x in (service, web_identity_token, caller_role_arn)) != 1:
            raise ValueError("name exactly one caller: service=, web_identity_token= or caller_role_arn=")
        resources = self.resources
        account = resources.account
        context: dict[str, ContextValue] = {}
        if service is not None:
            principal = Principal("Service", service)
            action = "sts:AssumeRole"
            context["aws:PrincipalServiceName"] = service
            context["aws:SourceAccount"] = source_account or account
            if source_arn:
                context["aws:SourceArn"] = source_arn
        elif web_identity_token is not None:
            claims = _jwt_claims(web_identity_token)
            issuer = str(claims.get("iss", "")).removeprefix("https://")
            provider_arn = f"arn:aws:iam::{account}:oidc-provider/{issuer}"
            if not resources.oidc_provider_exists(provider_arn) and self.enforce:
                raise TrustDeniedError(
                    [
                        self._trust_denial(
                            role_arn,
                            provider_arn,
                            "sts:AssumeRoleWithWebIdentity",
                            f"no IAM OIDC provider {provider_arn} exists in the account",
                        )
                    ]
                )
            principal = Principal("Federated", provider_arn)
            action = "sts:AssumeRoleWithWebIdentity"
            for claim in ("sub", "aud", "amr", "azp"):
                if claim in claims:
                    value = claims[claim]
                    context[f"{issuer}:{claim}"] = value if isinstance(value, list) else str(value)
            context["aws:FederatedProvider"] = provider_arn
        else:
            assert caller_role_arn is not None
            principal = self._role_principal(caller_role_arn, "caller")
            action = "sts:AssumeRole"
        trust = resources.trust_policy(role_arn)
        if trust is None:  # STS refuses a role that does not exist, enforcement or not
            raise TrustDeniedError(
                [self._trust_denial(role_arn, principal.arn, action, f"no role {role_arn} exists")]
            )
        identity = resources.role_policies(caller_role_arn) if caller_role_arn else []
        decision = evaluate(
            principal,
            action,
            role_arn,
            {**self._global_context(principal, None), **context},
            identity,
            trust,
            resource_policy_must_allow=True,
        )
        if not decision.allowed:
            denial = make_denial(role_arn, principal.arn, action, decision, "trust")
            with self._lock:
                self._denials.append(denial)
            if self.enforce:
                raise TrustDeniedError([denial])

    def _trust_denial(self, role_arn: str, caller: str, action: str, reason: str) -> Denial:
        denial = Denial(
            role_arn, caller, action, action, role_arn, reason, role_hint(role_arn.rsplit("/", 1)[-1])
        )
        with self._lock:
            self._denials.append(denial)
        return denial

    def _new_session(self, role_arn: str, session_name: str) -> dict[str, str]:
        from moto.sts.models import sts_backends

        resources = self.resources
        assumed = sts_backends[resources.account]["aws"].assume_role(
            region_name=resources.region,
            role_session_name=session_name[:64],
            role_arn=role_arn,
            policy="",
            duration=3600,
            external_id="",
        )
        return {
            "AWS_ACCESS_KEY_ID": str(assumed.access_key_id),
            "AWS_SECRET_ACCESS_KEY": str(assumed.secret_access_key),
            "AWS_SESSION_TOKEN": str(assumed.session_token),
        }

    def _role_principal(self, role_arn: str, session_name: str) -> Principal:
        account = role_arn.split(":")[4]
        name = role_arn.rsplit("/", 1)[-1]
        return Principal(
            "AWS",
            role_arn,
            account=account,
            session_arn=f"arn:aws:sts::{account}:assumed-role/{name}/{session_name}",
        )

    def session_for(self, access_key: str, session_token: str | None) -> Session | None:
        """The role session of ``access_key`` (None when moto's STS did not issue it)."""
        from moto.sts.models import sts_backends

        for assumed in sts_backends[self.resources.account]["aws"].assumed_roles:
            if assumed.access_key_id == access_key:
                if session_token != assumed.session_token:
                    return None
                principal = self._role_principal(str(assumed.role_arn), str(assumed.session_name))
                return Session(str(assumed.role_arn), principal.session_arn, access_key, principal)
        return None

    # --- decisions --------------------------------------------------------------------------------

    def _global_context(self, principal: Principal, request: ApiRequest | None) -> dict[str, ContextValue]:
        now = dt.datetime.now(dt.UTC)
        context: dict[str, ContextValue] = {
            "aws:SecureTransport": "true" if self.secure_transport else "false",
            "aws:CurrentTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "aws:EpochTime": str(int(now.timestamp())),
            "aws:ViaAWSService": "false",
        }
        if principal.kind == "AWS":
            context["aws:PrincipalArn"] = principal.arn
            context["aws:PrincipalAccount"] = principal.account
            context["aws:PrincipalType"] = "AssumedRole"
            context["aws:userid"] = (
                f"{principal.arn.rsplit('/', 1)[-1]}:{principal.session_arn.rsplit('/', 1)[-1]}"
            )
        if request is not None:
            context["aws:RequestedRegion"] = request.region
            if request.service == "s3" and self.secure_transport:
                context["s3:TlsVersion"] = "1.3"
        return context

    def check(self, session: Session, check: Check, request: ApiRequest | None = None) -> Decision:
        """Decide one :class:`Check` for ``session`` (also used by executors for service-side calls)."""
        resources = self.resources
        context = {**self._global_context(session.principal, request), **check.context}
        identity = resources.role_policies(session.role_arn)
        boundary = resources.permissions_boundary(session.role_arn)
        resource_policy = resources.resource_policy(*check.resource_policy) if check.resource_policy else None
        decision: Decision | None = None
        for resource in (check.resource, *check.alternatives):
            candidate = evaluate(
                session.principal,
                check.action,
                resource,
                context,
                identity,
                resource_policy,
                resource_policy_must_allow=check.resource_policy_must_allow,
            )
            if candidate.allowed and boundary is not None:
                # a permissions boundary caps what the role's policies (and grants to its ARN) allow
                # https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html
                capped = evaluate(session.principal, check.action, resource, context, [boundary])
                if not capped.allowed:
                    candidate = Decision(
                        allowed=False,
                        action=check.action,
                        resource=resource,
                        explicit_deny=capped.explicit_deny,
                        consulted=(*candidate.consulted, boundary.name),
                        reason=f"the {boundary.name} does not allow it",
                    )
            if decision is None or candidate.allowed:
                decision = candidate
            if decision.allowed:
                break
        assert decision is not None
        return decision

    def authorize(
        self, session: Session, checks: Sequence[Check], operation: str, request: ApiRequest | None = None
    ) -> Denial | None:
        """Decide every check; record the call (allowed) or the first denial; return the denial."""
        allowed: list[AuthorizedCall] = []
        for item in checks:
            decision = self.check(session, item, request)
            if not decision.allowed:
                kind = item.resource_policy[0] if item.resource_policy else None
                denial = make_denial(session.role_arn, session.session_arn, operation, decision, kind)
                if item.why:
                    denial = Denial(**{**denial.__dict__, "decisive": f"{denial.decisive} ({item.why})"})
                with self._lock:
                    self._denials.append(denial)
                return denial
            allowed.append(AuthorizedCall(session.role_arn, decision.action, decision.resource, operation))
        with self._lock:
            self._authorized.extend(allowed)
        return None

    def authorize_as(self, role_arn: str, check: Check, operation: str = "service-side") -> Denial | None:
        """Judge one check made with a role's credentials outside HTTP (an executor's own call)."""
        return self.authorize(self._session_of_role(role_arn), [check], operation)

    def authorize_call(
        self, role_arn: str, service: str, operation: str, params: Mapping[str, Any]
    ) -> Denial | None:
        """Judge an API call a service makes with ``role_arn``'s credentials, mapped like an HTTP one.

        For the executors: SageMaker downloading a training channel (``s3``/``GetObject``) or uploading
        the model artifact (``s3``/``PutObject``) as the job's role. Records the call or its denial;
        with enforcement on, the caller fails the job when a denial comes back.
        """
        request = ApiRequest(service, operation, dict(params), self.resources.region)
        checks = checks_for(request, self.resources)
        return self.authorize(self._session_of_role(role_arn), checks, f"{service}:{operation}", request)

    def _session_of_role(self, role_arn: str) -> Session:
        principal = self._role_principal(role_arn, "service")
        return Session(role_arn, principal.session_arn, "", principal)

    def _judge(
        self, environ: Mapping[str, Any], body: bytes
    ) -> tuple[str, list[tuple[str, str]], bytes] | None:
        if _signed_by_root(environ):
            return None  # the deployer's and the rehearsal's own calls: not judged, so not parsed either
        try:
            request = parse_request(environ, body)
        except RequestNotUnderstoodError as exc:
            request = None
            failure = str(exc)
        else:
            failure = ""
        if request is None:
            if failure:
                return self._unparsed(environ, failure)
            return self._web_identity(environ, body)
        if request.access_key in {None, ROOT_ACCESS_KEY} or not request.session_token:
            return None  # the account's root identity (deployer) and unsigned calls: not enforced
        request.secure_transport = self.secure_transport
        session = self.session_for(str(request.access_key), request.session_token)
        if session is None:
            message = "The security token included in the request is invalid."
            return _error(request, "InvalidClientTokenId", message, 403)
        operation = f"{request.service}:{request.operation}"
        try:
            checks = checks_for(request, self.resources)
        except UnmappedOperationError as exc:
            denial = Denial(
                session.role_arn,
                session.session_arn,
                operation,
                operation,
                "*",
                f"the emulator cannot authorize this call: {exc}",
                "rehearsal/iam/actions.py",
            )
            with self._lock:
                self._denials.append(denial)
            return _error(request, "AccessDenied", str(exc), 403) if self.enforce else None
        if operation == "s3:DeleteObjects":
            self._judge_each_key(session, request, checks, operation)
            return None
        denial = self.authorize(session, checks, operation, request)
        if denial is None or not self.enforce:
            return None
        message = (
            f"User: {session.session_arn} is not authorized to perform: {denial.action} on resource: "
            f"{denial.resource} because {denial.decisive}"
        )
        return _error(request, "AccessDenied", message, 403)

    def _judge_each_key(
        self, session: Session, request: ApiRequest, checks: Sequence[Check], operation: str
    ) -> None:
        """DeleteObjects: each key is authorized on its own (``s3:DeleteObject``, or
        ``s3:DeleteObjectVersion`` with a version id), and a refused key is an ``AccessDenied`` entry of
        the 200 response's ``Error`` list while the others are deleted
        (https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html: "For each key, Amazon
        S3 performs a delete operation and returns the result of that delete, success or failure").
        Every refusal is recorded as a denial, so the rehearsal stage still fails on it."""
        refused = {
            check.resource
            for check in checks
            if self.authorize(session, [check], operation, request) is not None
        }
        _REQUEST.refused_keys = frozenset(refused) if self.enforce else frozenset()

    def _unparsed(
        self, environ: Mapping[str, Any], failure: str
    ) -> tuple[str, list[tuple[str, str]], bytes] | None:
        # only role sessions are judged; a request we cannot read from one is refused, never let through
        token = any(k == "HTTP_X_AMZ_SECURITY_TOKEN" for k in environ) or "X-Amz-Security-Token" in str(
            environ.get("QUERY_STRING", "")
        )
        if not token or not self.enforce:
            return None
        body = json.dumps({"__type": "AccessDeniedException", "message": f"emulator IAM: {failure}"}).encode()
        return (
            "403 Forbidden",
            [("Content-Type", "application/json"), ("x-amzn-ErrorType", "AccessDeniedException")],
            body,
        )

    def _web_identity(
        self, environ: Mapping[str, Any], body: bytes
    ) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """AssumeRoleWithWebIdentity is unsigned: check the token against the trust policy here."""
        from urllib.parse import parse_qsl

        form = dict(parse_qsl(str(environ.get("QUERY_STRING", ""))))
        if body:
            form.update(parse_qsl(body.decode("utf-8", "replace")))
        if form.get("Action") != "AssumeRoleWithWebIdentity":
            return None
        request = ApiRequest("sts", "AssumeRoleWithWebIdentity", dict(form), self.resources.region)
        try:
            self.issue_credentials(
                str(form.get("RoleArn")), web_identity_token=str(form.get("WebIdentityToken"))
            )
        except TrustDeniedError as exc:
            return _error(request, "AccessDenied", str(exc), 403)
        except ValueError as exc:
            return _error(request, "InvalidIdentityToken", str(exc), 400)
        return None  # allowed: moto issues the session itself

    # --- records ----------------------------------------------------------------------------------

    @property
    def denials(self) -> list[Denial]:
        """Every refusal so far, oldest first."""
        with self._lock:
            return list(self._denials)

    @property
    def authorized(self) -> list[AuthorizedCall]:
        """Every (role, action, resource) allowed so far."""
        with self._lock:
            return list(self._authorized)

    def raise_for_denials(self) -> None:
        """Raise :class:`AccessDeniedError` if anything was refused."""
        denials = self.denials
        if denials:
            raise AccessDeniedError(denials)

    def clear(self) -> None:
        """Forget the records (between rehearsal stages)."""
        with self._lock:
            self._denials.clear()
            self._authorized.clear()

    def unused_grant_report(self, role_arns: Iterable[str] | None = None) -> UnusedGrantReport:
        """Grants of each role (default: every role in the account) that no authorized call used."""
        resources = self.resources
        roles = list(role_arns) if role_arns is not None else resources.all_role_arns()
        return unused_grants({arn: resources.role_policies(arn) for arn in roles}, self.authorized)


def _signed_by_root(environ: Mapping[str, Any]) -> bool:
    """The request is signed with the root access key (header or presigned query): a cheap test, so the
    traffic the rehearsal drives as root costs no request parsing."""
    marker = f"Credential={ROOT_ACCESS_KEY}/"
    if marker in str(environ.get("HTTP_AUTHORIZATION", "")):
        return True
    query = str(environ.get("QUERY_STRING", ""))
    return f"X-Amz-Credential={ROOT_ACCESS_KEY}%2F" in query or f"X-Amz-{marker}" in query


def _error(
    request: ApiRequest, code: str, message: str, status: int
) -> tuple[str, list[tuple[str, str]], bytes]:
    """The service's error shape for ``code``."""
    protocol = service_model(request.service).protocol
    reason = {400: "400 Bad Request", 403: "403 Forbidden"}[status]
    if protocol == "rest-xml":
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{escape(message)}</Message><RequestId>emulator</RequestId></Error>"
        )
        return reason, [("Content-Type", "application/xml")], body.encode()
    if protocol == "ec2":
        # EC2's error shape and code (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html)
        ec2_code = "UnauthorizedOperation" if code == "AccessDenied" else code
        body = (
            f"<Response><Errors><Error><Code>{ec2_code}</Code><Message>{escape(message)}</Message></Error>"
            "</Errors><RequestID>emulator</RequestID></Response>"
        )
        return reason, [("Content-Type", "text/xml")], body.encode()
    if protocol == "query":
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{escape(message)}</Message>"
            "</Error><RequestId>emulator</RequestId></ErrorResponse>"
        )
        return reason, [("Content-Type", "text/xml")], body.encode()
    json_code = "AccessDeniedException" if code == "AccessDenied" else code
    headers = [("x-amzn-ErrorType", json_code)]
    if service_model(request.service).metadata.get("awsQueryCompatible") is not None:
        headers.append(("x-amzn-query-error", f"{code};Sender"))  # the query-era code (CloudWatch, SQS)
    if protocol == "json":
        payload = json.dumps({"__type": json_code, "message": message}).encode()
        return "400 Bad Request", [("Content-Type", "application/x-amz-json-1.1"), *headers], payload
    payload = json.dumps({"message": message}).encode()
    return reason, [("Content-Type", "application/json"), *headers], payload
