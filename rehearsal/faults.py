"""Fault injection for the emulated account: API errors, latency, and service-side failures by rule.

:class:`FaultInjector` is an :class:`~rehearsal.emulator.Extension` that wraps moto's WSGI app (as the
IAM authorizer does) and answers a matching AWS API call itself, the way the real service answers it
when it is overloaded or broken:

* ``throttle``: the service's own throttling error (S3 ``503 SlowDown``; SageMaker, CloudWatch and
  the other JSON services ``400 ThrottlingException``; EMR on EKS ``400 RequestThrottledException``;
  query services such as STS ``400 Throttling``);
* ``transient``: a 5xx (``500`` InternalError / InternalFailure / InternalServerException, or ``503``
  ServiceUnavailable with ``status=503``);
* ``latency``: the call is served, ``delay_s`` later;
* ``fail``: a hard, non-retryable refusal (``AccessDenied`` unless ``code``/``status`` say otherwise).

Each :class:`ApiFault` matches by service (botocore name), operation (a glob) and an optional
predicate over the parsed request (bucket, key, job name...), fires for the first ``times`` matching
calls (after skipping ``after`` of them), each with ``probability`` drawn from a seeded generator, and
every firing is recorded (:attr:`FaultInjector.injected`).

:class:`ServiceFault` covers the failures that are not API errors: a training job that ends
``Failed``, an EMR job run that ends ``FAILED``, an endpoint update that fails and leaves the old
config serving. The extensions that run those (:mod:`rehearsal.training`,
:mod:`rehearsal.emr_containers`, :mod:`rehearsal.endpoints`) ask :func:`service_failure` at the point
where AWS would fail them.

The injector sits *outermost*, in front of the IAM authorizer when there is one (extensions are
installed after the authorizer wraps the app): an injected fault stands for the network and the
service's front door, so a throttled or failed call never reaches IAM or moto, changes no state and
leaves no authorizer record, as a throttled AWS call changes nothing.

Error shapes: https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html (SlowDown, 503),
https://docs.aws.amazon.com/sagemaker/latest/APIReference/CommonErrors.html (ThrottlingException, 400),
https://docs.aws.amazon.com/emr-on-eks/latest/APIReference/API_StartJobRun.html (errors).
"""

from __future__ import annotations

import fnmatch
import http
import io
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from rehearsal.iam.requests import ApiRequest, RequestNotUnderstoodError, parse_request, service_model

if TYPE_CHECKING:
    from rehearsal.emulator import Emulator

FaultKind = Literal["throttle", "transient", "latency", "fail"]
ServiceTarget = Literal["training-job", "emr-job-run", "endpoint-update"]
KINDS: tuple[str, ...] = ("throttle", "transient", "latency", "fail")
TARGETS: tuple[str, ...] = ("training-job", "emr-job-run", "endpoint-update")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# (status, code, message) per service where it differs from the protocol's default
_THROTTLE = {
    "s3": (503, "SlowDown", "Please reduce your request rate."),
    "emr-containers": (400, "RequestThrottledException", "Rate exceeded"),
}
_THROTTLE_JSON = (400, "ThrottlingException", "Rate exceeded")
_THROTTLE_QUERY = (400, "Throttling", "Rate exceeded")
_INTERNAL = {
    "s3": (500, "InternalError", "We encountered an internal error. Please try again."),
    "emr-containers": (500, "InternalServerException", "Internal server error"),
}
_INTERNAL_DEFAULT = (500, "InternalFailure", "The request processing has failed because of an unknown error.")
_UNAVAILABLE = (503, "ServiceUnavailable", "Service is unable to handle request.")
_DENIED = {"s3": (403, "AccessDenied", "Access Denied")}
_DENIED_DEFAULT = (400, "AccessDeniedException", "Access denied")
_SERVICE_FAILURE = {
    "training-job": "InternalServerError: We encountered an internal error. Please try again.",
    "emr-job-run": "Cluster is unavailable: the EKS cluster's nodes could not run the job's pods",
    "endpoint-update": "The new endpoint configuration could not be provisioned: the instances failed health checks",
}


_Rule = TypeVar("_Rule", "ApiFault", "ServiceFault")


class FaultRuleError(ValueError):
    """A fault rule is malformed (unknown kind or target, impossible count or probability)."""


@dataclass
class ApiFault:
    """Answer matching API calls with an error (or serve them late).

    ``ApiFault("s3", "PutObject", "throttle", times=2)`` throttles the first two PutObject calls.
    """

    service: str
    """botocore service name (``s3``, ``sagemaker``, ``cloudwatch``, ``emr-containers``) or ``*``."""
    operation: str = "*"
    """API operation name or glob (``PutObject``, ``Describe*``)."""
    kind: FaultKind = "throttle"
    """``throttle``, ``transient``, ``latency`` or ``fail`` (see the module docstring)."""
    times: int | None = 1
    """How many matching calls fire (None: every one)."""
    after: int = 0
    """Matching calls let through before the first one fires."""
    probability: float = 1.0
    """Chance that an eligible call fires (drawn from the injector's seeded generator)."""
    delay_s: float = 0.0
    """Seconds added before answering (the whole fault for ``latency``)."""
    status: int | None = None
    """HTTP status instead of the kind's default (``transient`` with 503: ServiceUnavailable)."""
    code: str | None = None
    """Error code instead of the kind's default."""
    message: str | None = None
    """Error message instead of the kind's default."""
    where: Callable[[ApiRequest], bool] | None = None
    """Further match on the parsed request, e.g. ``lambda r: r.params["Key"].endswith(".tar.gz")``."""
    matched: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise FaultRuleError(f"fault kind {self.kind!r} is not one of {KINDS}")
        if self.times is not None and self.times < 0:
            raise FaultRuleError(f"times must be >= 0 or None, got {self.times}")
        if self.after < 0:
            raise FaultRuleError(f"after must be >= 0, got {self.after}")
        if not 0.0 <= self.probability <= 1.0:
            raise FaultRuleError(f"probability must be within [0, 1], got {self.probability}")
        if self.delay_s < 0:
            raise FaultRuleError(f"delay_s must be >= 0, got {self.delay_s}")
        if self.kind == "latency" and self.delay_s == 0:
            raise FaultRuleError("a latency fault needs delay_s > 0")
        if self.status is not None and not 400 <= self.status <= 599:
            raise FaultRuleError(f"status must be an HTTP error status (400-599), got {self.status}")

    def matches(self, request: ApiRequest) -> bool:
        """True when ``request`` is a call this rule is about (before counting)."""
        if self.service not in {"*", request.service}:
            return False
        if not fnmatch.fnmatchcase(request.operation, self.operation):
            return False
        return self.where is None or bool(self.where(request))

    def error(self, service: str) -> tuple[int, str, str]:
        """(status, code, message) this rule answers with for ``service``."""
        protocol = service_model(service).protocol
        if self.kind == "throttle":
            default = _THROTTLE.get(service) or (_THROTTLE_QUERY if protocol == "query" else _THROTTLE_JSON)
        elif self.kind == "transient":
            default = _UNAVAILABLE if self.status == 503 else _INTERNAL.get(service, _INTERNAL_DEFAULT)
        else:
            status, code, message = _DENIED.get(service, _DENIED_DEFAULT)
            default = (status, code, f"{message} (fault injected by the emulator)")
        return (self.status or default[0], self.code or default[1], self.message or default[2])


@dataclass
class ServiceFault:
    """Make a job or deployment the emulator runs end in failure, as the service would.

    ``ServiceFault("training-job", "run-7")`` makes training job ``run-7`` end ``Failed``.
    """

    target: ServiceTarget
    """``training-job``, ``emr-job-run`` or ``endpoint-update``."""
    name: str = "*"
    """Training job name, EMR job run name, or endpoint name (a glob)."""
    times: int | None = 1
    """How many matching jobs fail (None: every one)."""
    reason: str | None = None
    """The failure reason the service reports (a realistic default per target)."""
    fired: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise FaultRuleError(f"service fault target {self.target!r} is not one of {TARGETS}")
        if self.times is not None and self.times < 0:
            raise FaultRuleError(f"times must be >= 0 or None, got {self.times}")


@dataclass(frozen=True)
class Injection:
    """One fault the injector fired."""

    kind: str
    """The API fault kind, or ``service-failure``."""
    service: str
    operation: str
    """API operation, or the service target (``training-job``...)."""
    status: int | None
    code: str | None
    delay_s: float
    subject: str = ""
    """What it hit: ``bucket/key``, a job or endpoint name."""


def _subject(request: ApiRequest) -> str:
    params = request.params
    if "Bucket" in params:
        return f"{params['Bucket']}/{params.get('Key', '')}".rstrip("/")
    for key in ("TrainingJobName", "EndpointName", "name", "ModelPackageGroupName", "Namespace"):
        if key in params:
            return str(params[key])
    return ""


class FaultInjector:
    """Extension: inject API faults and service-side failures into the emulated account by rule.

    Use ``Emulator(extensions=[FaultInjector([...]), ...])`` or add rules while it runs with
    :meth:`add`. ``seed`` makes probabilistic rules reproducible.
    """

    name = "faults"

    def __init__(self, rules: Iterable[ApiFault | ServiceFault] = (), *, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)  # noqa: S311 - reproducible faults, not secrets
        self._api: list[ApiFault] = []
        self._service: list[ServiceFault] = []
        self._injected: list[Injection] = []
        self._server: Any = None
        self._inner: WsgiApp | None = None
        self._middleware: WsgiApp | None = None
        for rule in rules:
            self._add(rule)

    # --- rules and record -------------------------------------------------------------------------

    def add(self, rule: _Rule) -> _Rule:
        """Add a rule (it applies to calls from now on); returns it, to read its counts later."""
        self._add(rule)
        return rule

    def _add(self, rule: ApiFault | ServiceFault) -> None:
        with self._lock:
            if isinstance(rule, ApiFault):
                self._api.append(rule)
            elif isinstance(rule, ServiceFault):
                self._service.append(rule)
            else:
                raise FaultRuleError(f"not a fault rule: {rule!r} (use ApiFault or ServiceFault)")

    def clear(self) -> None:
        """Remove every rule (the record of what was injected stays)."""
        with self._lock:
            self._api.clear()
            self._service.clear()

    def reset(self, seed: int | None = None) -> None:
        """Remove every rule and the record; reseed the generator when ``seed`` is given."""
        with self._lock:
            self._api.clear()
            self._service.clear()
            self._injected.clear()
            if seed is not None:
                self._rng.seed(seed)

    @property
    def injected(self) -> list[Injection]:
        """Every fault fired so far, in order."""
        with self._lock:
            return list(self._injected)

    def count(
        self, *, service: str | None = None, operation: str | None = None, kind: str | None = None
    ) -> int:
        """How many injected faults match the given service, operation and kind."""
        return sum(
            1
            for item in self.injected
            if (service is None or item.service == service)
            and (operation is None or item.operation == operation)
            and (kind is None or item.kind == kind)
        )

    # --- Extension protocol -----------------------------------------------------------------------

    def install(self, emulator: Emulator) -> None:
        """Wrap the emulator's WSGI app (outside the authorizer's, see the module docstring)."""
        server: Any = emulator._server  # pyright: ignore[reportPrivateUsage]
        if server is None:
            raise RuntimeError(
                "the emulator's server is not running; install the injector through Emulator.start"
            )
        self._server = server._server  # the werkzeug server, which reads .app per request
        self._inner = self._server.app
        self._middleware = self._wrap(self._server.app)
        self._server.app = self._middleware

    def close(self) -> None:
        """Put the wrapped app back (idempotent)."""
        if self._server is not None and self._server.app is self._middleware:
            self._server.app = self._inner
        self._server = self._inner = self._middleware = None

    # --- service-side failures --------------------------------------------------------------------

    def service_failure(self, target: ServiceTarget, name: str) -> str | None:
        """The failure reason when job/endpoint ``name`` must fail now, else None (counts the firing)."""
        with self._lock:
            for rule in self._service:
                if rule.target != target or not fnmatch.fnmatchcase(name, rule.name):
                    continue
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                rule.fired += 1
                reason = rule.reason or _SERVICE_FAILURE[target]
                self._injected.append(
                    Injection("service-failure", _TARGET_SERVICE[target], target, None, None, 0.0, name)
                )
                return reason
        return None

    # --- the WSGI layer ---------------------------------------------------------------------------

    def _pick(self, request: ApiRequest) -> ApiFault | None:
        with self._lock:
            if self._server is None:
                return None  # closed: a middleware left in someone else's chain passes everything
            for rule in self._api:
                if not rule.matches(request):
                    continue
                rule.matched += 1
                if rule.matched <= rule.after:
                    continue
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                    continue
                rule.fired += 1
                status: int | None = None
                code: str | None = None
                if rule.kind != "latency":
                    status, code, _ = rule.error(request.service)
                self._injected.append(
                    Injection(
                        rule.kind,
                        request.service,
                        request.operation,
                        status,
                        code,
                        rule.delay_s,
                        _subject(request),
                    )
                )
                return rule
        return None

    def _wrap(self, app: WsgiApp) -> WsgiApp:
        def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            try:
                request = parse_request(environ, body)
            except RequestNotUnderstoodError:
                request = None  # not an API call this layer can name: serve it untouched
            rule = self._pick(request) if request is not None else None
            if rule is None or request is None:
                return app(environ, start_response)
            if rule.delay_s:
                time.sleep(rule.delay_s)
            if rule.kind == "latency":
                environ["wsgi.input"] = io.BytesIO(body)
                return app(environ, start_response)
            status, headers, payload = error_response(request.service, *rule.error(request.service))
            start_response(status, [*headers, ("Content-Length", str(len(payload)))])
            return [payload]

        return middleware


_TARGET_SERVICE = {
    "training-job": "sagemaker",
    "endpoint-update": "sagemaker",
    "emr-job-run": "emr-containers",
}


def error_response(
    service: str, status: int, code: str, message: str
) -> tuple[str, list[tuple[str, str]], bytes]:
    """The HTTP status line, headers and body ``service`` answers an error with, in its protocol."""
    model = service_model(service)
    protocol = model.protocol
    request_id = uuid.uuid4().hex.upper()
    line = f"{status} {http.HTTPStatus(status).phrase}"
    if protocol == "rest-xml":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{_xml(message)}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        ).encode()
        return line, [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)], body
    if protocol == "query":
        fault = "Sender" if status < 500 else "Receiver"
        body = (
            f"<ErrorResponse><Error><Type>{fault}</Type><Code>{code}</Code>"
            f"<Message>{_xml(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        return line, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], body
    if protocol == "rest-json":
        headers = [
            ("Content-Type", "application/json"),
            ("x-amzn-ErrorType", code),
            ("x-amzn-RequestId", request_id),
        ]
        return line, headers, json.dumps({"message": message}).encode()
    # json (and the JSON form of query-compatible services such as CloudWatch)
    version = model.metadata.get("jsonVersion", "1.1")
    headers = [("Content-Type", f"application/x-amz-json-{version}"), ("x-amzn-RequestId", request_id)]
    if "awsQueryCompatible" in model.metadata:
        query_code = "Throttling" if code == "ThrottlingException" else code
        headers.append(("x-amzn-query-error", f"{query_code};{'Sender' if status < 500 else 'Receiver'}"))
    return line, headers, json.dumps({"__type": code, "message": message}).encode()


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def service_failure(emulator: Emulator | None, target: ServiceTarget, name: str) -> str | None:
    """Hook for the extensions: the reason ``name`` must fail now, when a FaultInjector says so."""
    if emulator is None:
        return None
    from rehearsal.emulator import EmulatorError

    try:
        injector = emulator.extension(FaultInjector.name)
    except EmulatorError:
        return None
    if not isinstance(injector, FaultInjector):
        return None
    return injector.service_failure(target, name)
