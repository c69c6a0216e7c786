"""Amazon MWAA, which moto lacks: environments, CLI and web login tokens, and InvokeRestApi.

How it is added to moto's server: a request signed for the ``airflow`` service (SigV4 credential scope
``.../airflow/aws4_request``) is mapped by moto's dispatcher to the host
``airflow.<region>.amazonaws.com``, which it matches against ``moto.backend_index.backend_url_patterns``
to find a backend name, then imports ``moto.<name>`` and reads ``<name>_backends`` to build that
backend's Flask app from its ``url_paths``. :class:`MwaaExtension` registers exactly those three things
for ``mwaa`` (a URL pattern, a ``moto.mwaa`` module entry holding :data:`MwaaBackend`'s
``BackendDict``) and removes them on close, so MWAA requests reach :class:`MwaaResponse` like any
moto service's.

InvokeRestApi forwards to the Airflow the rehearsal attaches to the environment
(:meth:`MwaaExtension.attach_airflow`): any :data:`AirflowHandler`, e.g. :class:`DagRunTrigger`
(``POST /dags/{dag_id}/dagRuns`` calls a Python callable) or :class:`HttpAirflow` (a real Airflow API
server). Airflow's 4xx answers become ``RestApiClientException`` and 5xx ``RestApiServerException``,
carrying ``RestApiStatusCode`` and ``RestApiResponse``, as MWAA returns them.

boto3 prefixes MWAA hosts (``api.``/``env.``) unless host prefix injection is off: clients of the
emulator need ``Config(inject_host_prefix=False)`` or ``AWS_DISABLE_HOST_PREFIX_INJECTION=true``
(:func:`mwaa_client` does it).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import secrets
import sys
import threading
import time
import types
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rehearsal.emulator import Emulator

SERVICE = "mwaa"
URL_BASE = r"https?://(api\.|env\.)?airflow\.(.+)\.amazonaws\.com"
NAME = re.compile(r"^[a-zA-Z][0-9a-zA-Z\-_]{0,79}$")
AIRFLOW_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
TOKEN_TTL_S = 60.0
"""MWAA's CLI and web login tokens expire after 60 seconds."""


@dataclass(frozen=True)
class RestApiCall:
    """One InvokeRestApi call, as the environment's Airflow receives it."""

    environment: str
    method: str
    path: str
    """The Airflow REST API path after the API prefix, e.g. ``/dags/training/dagRuns``."""
    query: Mapping[str, Any]
    body: Any


AirflowHandler = Callable[[RestApiCall], "tuple[int, Any]"]
"""The environment's Airflow: answers a REST call with (HTTP status, JSON body)."""


def mwaa_client(emulator: Emulator) -> Any:
    """A boto3 ``mwaa`` client for the emulator (no host prefix: the emulator is one loopback address)."""
    from botocore.config import Config

    return emulator.client(SERVICE, config=Config(inject_host_prefix=False))


# --------------------------------------------------------------------------------------------------
# Airflow handlers


@dataclass
class DagRunTrigger:
    """An Airflow that triggers DAG runs by calling ``trigger(dag_id, dag_run_id, conf)``.

    Serves ``POST /dags/{dag_id}/dagRuns`` (409 when the run id exists, as Airflow answers) and
    ``GET /dags/{dag_id}/dagRuns/{dag_run_id}``; ``dag_ids`` (when given) are the DAGs that exist.
    Every other path is 404.
    """

    trigger: Callable[[str, str, dict[str, Any]], None]
    dag_ids: frozenset[str] | None = None
    runs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, call: RestApiCall) -> tuple[int, Any]:
        """Answer one REST call."""
        parts = [p for p in call.path.split("/") if p]
        if len(parts) >= 3 and parts[0] == "dags" and parts[2] == "dagRuns":
            dag_id = parts[1]
            if self.dag_ids is not None and dag_id not in self.dag_ids:
                return 404, {"detail": f"The Dag with ID: `{dag_id}` was not found", "status": 404}
            if len(parts) == 3 and call.method == "POST":
                return self._post(dag_id, call.body or {})
            if len(parts) == 4 and call.method == "GET":
                run = self.runs.get((dag_id, parts[3]))
                if run is None:
                    return 404, {
                        "detail": f"The DagRun with dag_id: `{dag_id}` and run_id: `{parts[3]}` was not found"
                    }
                return 200, run
        return 404, {"detail": "Not Found"}

    def _post(self, dag_id: str, body: Mapping[str, Any]) -> tuple[int, Any]:
        now = datetime.now(UTC).isoformat()
        run_id = str(body.get("dag_run_id") or f"manual__{now}")
        conf = body.get("conf") or {}
        if not isinstance(conf, dict):
            return 400, {"detail": "conf must be a JSON object"}
        with self._lock:
            if (dag_id, run_id) in self.runs:
                return 409, {
                    "detail": f"DAG Run with dag_run_id: `{run_id}` already exists for dag `{dag_id}`"
                }
            try:
                self.trigger(dag_id, run_id, dict(conf))
            except Exception as exc:
                return 500, {"detail": f"triggering {dag_id} failed: {exc}"}
            run = {
                "dag_run_id": run_id,
                "dag_id": dag_id,
                "logical_date": body.get("logical_date"),
                "queued_at": now,
                "run_type": "manual",
                "state": "queued",
                "conf": conf,
            }
            self.runs[(dag_id, run_id)] = run
        return 200, run


@dataclass
class HttpAirflow:
    """A real Airflow API server: forwards each call to ``{base_url}/api/{api_version}{path}``.

    ``client`` is an ``httpx.Client`` (auth, timeouts and transport are the caller's).
    """

    base_url: str
    client: Any
    api_version: str = "v2"

    def __call__(self, call: RestApiCall) -> tuple[int, Any]:
        """Forward one REST call and return Airflow's status and JSON body."""
        response = self.client.request(
            call.method,
            f"{self.base_url.rstrip('/')}/api/{self.api_version}{call.path}",
            params=dict(call.query),
            json=call.body if call.method in ("POST", "PUT", "PATCH") else None,
        )
        try:
            payload = response.json()
        except ValueError:
            payload = {"detail": response.text[:2000]}
        return int(response.status_code), payload


# --------------------------------------------------------------------------------------------------
# moto backend and response


@functools.cache
def _error_class(code: str) -> type[Exception]:
    from moto.core.exceptions import ServiceException

    # Defined in this module, not moto.core: moto looks the error's shape up in the service named by
    # the exception's module when that is a moto package, else in the request's service (mwaa).
    return type(code, (ServiceException,), {"code": code, "__module__": __name__})


def _error(code: str, message: str, **extra: Any) -> Exception:
    error = _error_class(code)(message)
    for key, value in extra.items():
        setattr(error, key, value)
    return error


@functools.cache
def _classes() -> tuple[type, type]:
    """The backend and response classes (built on first use: moto is imported lazily)."""
    from moto.core.base_backend import BaseBackend
    from moto.core.responses import BaseResponse

    class MwaaBackend(BaseBackend):
        """MWAA environments of one account and region."""

        def __init__(self, region_name: str, account_id: str) -> None:
            super().__init__(region_name, account_id)
            self.environments: dict[str, dict[str, Any]] = {}
            self.tokens: dict[str, tuple[str, str, float]] = {}
            self.airflow: dict[str, AirflowHandler] = {}

        @property
        def _url_module(self) -> Any:  # type: ignore[override]
            return types.SimpleNamespace(url_bases=[URL_BASE], url_paths=_url_paths())

        def environment(self, name: str) -> dict[str, Any]:
            env = self.environments.get(name)
            if env is None:
                raise _error("ResourceNotFoundException", f"Environment named {name} not found.")
            return env

        def create_environment(self, name: str, request: dict[str, Any]) -> str:
            _validate_environment(self, name, request)
            if name in self.environments:
                raise _error("ValidationException", f"Environment named {name} already exists.")
            arn = f"arn:aws:airflow:{self.region_name}:{self.account_id}:environment/{name}"
            now = datetime.now(UTC).timestamp()
            self.environments[name] = {
                "AirflowVersion": "3.0.6",
                "EnvironmentClass": "mw1.small",
                "MaxWorkers": 10,
                "MinWorkers": 1,
                "Schedulers": 2,
                "WebserverAccessMode": "PRIVATE_ONLY",
                "EndpointManagement": "SERVICE",
                "WeeklyMaintenanceWindowStart": "SUN:03:30",
                **{k: v for k, v in request.items() if k not in ("Name", "Tags")},
                "Name": name,
                "Arn": arn,
                "Status": "AVAILABLE",
                "CreatedAt": now,
                "WebserverUrl": f"{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:8]}.c1.{self.region_name}"
                ".airflow.amazonaws.com",
                "ServiceRoleArn": f"arn:aws:iam::{self.account_id}:role/aws-service-role/airflow.amazonaws.com/"
                "AWSServiceRoleForAmazonMWAA",
                "Tags": request.get("Tags") or {},
                "LastUpdate": {"Status": "SUCCESS", "CreatedAt": now, "Source": "CREATE"},
            }
            return arn

        def issue_token(self, name: str, kind: str) -> tuple[str, str]:
            env = self.environment(name)
            token = secrets.token_urlsafe(32)
            self.tokens[token] = (name, kind, time.monotonic() + TOKEN_TTL_S)
            return token, str(env["WebserverUrl"])

    class MwaaResponse(BaseResponse):
        """MWAA's REST API on moto's server."""

        def __init__(self) -> None:
            super().__init__(service_name=SERVICE)

        @property
        def backend(self) -> Any:
            return mwaa_backends()[self.current_account][self.region]

        def create_environment(self) -> str:
            request = dict(json.loads(self.body or "{}"))
            arn = self.backend.create_environment(self._get_param("Name"), request)
            return json.dumps({"Arn": arn})

        def get_environment(self) -> str:
            return json.dumps({"Environment": self.backend.environment(self._get_param("Name"))})

        def list_environments(self) -> str:
            return json.dumps({"Environments": sorted(self.backend.environments)})

        def update_environment(self) -> str:
            env = self.backend.environment(self._get_param("Name"))
            changes = {k: v for k, v in json.loads(self.body or "{}").items() if k != "Name"}
            _validate_environment(self.backend, env["Name"], {**env, **changes})
            env.update(changes)
            env["LastUpdate"] = {
                "Status": "SUCCESS",
                "CreatedAt": datetime.now(UTC).timestamp(),
                "Source": "UPDATE",
            }
            return json.dumps({"Arn": env["Arn"]})

        def delete_environment(self) -> str:
            name = self._get_param("Name")
            self.backend.environment(name)
            del self.backend.environments[name]
            return "{}"

        def create_cli_token(self) -> str:
            token, host = self.backend.issue_token(self._get_param("Name"), "cli")
            return json.dumps({"CliToken": token, "WebServerHostname": host})

        def create_web_login_token(self) -> str:
            token, host = self.backend.issue_token(self._get_param("Name"), "web")
            identity = _caller(self)
            return json.dumps(
                {
                    "WebToken": token,
                    "WebServerHostname": host,
                    "IamIdentity": identity,
                    "AirflowIdentity": identity,
                }
            )

        def invoke_rest_api(self) -> str:
            name = self._get_param("Name")
            env = self.backend.environment(name)
            body = json.loads(self.body or "{}")
            method, path = body.get("Method", ""), body.get("Path", "")
            if method not in ("GET", "PUT", "POST", "PATCH", "DELETE"):
                raise _error("ValidationException", "Method must be one of GET, PUT, POST, PATCH, DELETE")
            if not path.startswith("/"):
                raise _error(
                    "ValidationException", f"Path {path!r} must start with '/' (e.g. /dags/my_dag/dagRuns)"
                )
            if env["Status"] != "AVAILABLE":
                raise _error("ValidationException", f"Environment {name} is {env['Status']}, not AVAILABLE")
            handler = self.backend.airflow.get(name)
            if handler is None:
                raise _error(
                    "RestApiServerException",
                    f"the rehearsal attached no Airflow to MWAA environment {name} "
                    "(MwaaExtension.attach_airflow)",
                    RestApiStatusCode=503,
                    RestApiResponse={"detail": "Airflow web server unavailable"},
                )
            call = RestApiCall(name, method, path, body.get("QueryParameters") or {}, body.get("Body"))
            status, payload = handler(call)
            if 400 <= status < 500:
                raise _error(
                    "RestApiClientException",
                    f"Airflow answered {status}: {_detail(payload)}",
                    RestApiStatusCode=status,
                    RestApiResponse=payload,
                )
            if status >= 500:
                raise _error(
                    "RestApiServerException",
                    f"Airflow answered {status}: {_detail(payload)}",
                    RestApiStatusCode=status,
                    RestApiResponse=payload,
                )
            return json.dumps({"RestApiStatusCode": status, "RestApiResponse": payload})

    return MwaaBackend, MwaaResponse


def _detail(payload: Any) -> str:
    if isinstance(payload, dict) and "detail" in payload:
        return str(payload["detail"])
    return json.dumps(payload)[:500]


def _caller(response: Any) -> str:
    from moto.sts.models import sts_backends

    arn = sts_backends[response.current_account]["aws"].get_caller_identity(
        response.get_access_key(), response.region
    )[1]
    return str(arn).split(":", 5)[-1]  # e.g. assumed-role/Admin/me or user/moto


def _validate_environment(backend: Any, name: str, request: Mapping[str, Any]) -> None:
    """What MWAA checks on CreateEnvironment/UpdateEnvironment before it starts building."""
    from moto.iam.models import iam_backends
    from moto.s3.models import s3_backends

    if not NAME.match(name or ""):
        raise _error("ValidationException", f"Environment name {name!r} must match {NAME.pattern}")
    version = request.get("AirflowVersion")
    if version is not None and not AIRFLOW_VERSION.match(str(version)):
        raise _error("ValidationException", f"AirflowVersion {version!r} is not a version (e.g. 3.0.6)")
    for required in ("ExecutionRoleArn", "SourceBucketArn", "DagS3Path", "NetworkConfiguration"):
        if not request.get(required):
            raise _error("ValidationException", f"{required} is required")
    role = str(request["ExecutionRoleArn"])
    try:
        iam_backends[backend.account_id]["aws"].get_role_by_arn(role)
    except Exception:
        raise _error("ValidationException", f"The execution role {role} does not exist") from None
    bucket_arn = str(request["SourceBucketArn"])
    if not bucket_arn.startswith("arn:aws:s3:::"):
        raise _error("ValidationException", f"SourceBucketArn {bucket_arn} is not an S3 bucket ARN")
    s3 = s3_backends[backend.account_id]["aws"]
    bucket_name = bucket_arn.split(":::", 1)[1]
    bucket = s3.buckets.get(bucket_name)
    if bucket is None:
        raise _error("ValidationException", f"The source bucket {bucket_name} does not exist")
    # https://docs.aws.amazon.com/mwaa/latest/userguide/mwaa-s3-bucket.html
    if getattr(bucket, "versioning_status", None) != "Enabled":
        raise _error("ValidationException", f"The source bucket {bucket_name} must have versioning enabled")
    block = getattr(bucket, "public_access_block", None)
    if block is None or not all(
        str(getattr(block, attr, "false")).lower() == "true"
        for attr in (
            "block_public_acls",
            "ignore_public_acls",
            "block_public_policy",
            "restrict_public_buckets",
        )
    ):
        raise _error("ValidationException", f"The source bucket {bucket_name} must block all public access")
    for path_key, version_key in (
        ("PluginsS3Path", "PluginsS3ObjectVersion"),
        ("RequirementsS3Path", "RequirementsS3ObjectVersion"),
        ("StartupScriptS3Path", "StartupScriptS3ObjectVersion"),
    ):
        key = request.get(path_key)
        if not key:
            continue
        wanted = request.get(version_key)
        try:
            obj = (
                s3.get_object(bucket_name, key, version_id=wanted)
                if wanted
                else s3.get_object(bucket_name, key)
            )
        except Exception:
            obj = None
        if obj is None:
            raise _error(
                "ValidationException",
                f"Unable to read {path_key} s3://{bucket_name}/{key}"
                + (f" version {wanted}" if wanted else "")
                + ": upload it before creating or updating the environment",
            )


@functools.cache
def mwaa_backends() -> Any:
    """moto's ``BackendDict`` of :class:`MwaaBackend` (one per account and region)."""
    from moto.core.base_backend import BackendDict

    backend_class, _ = _classes()
    return BackendDict(backend_class, SERVICE)


def _url_paths() -> dict[str, Any]:
    _, response_class = _classes()
    dispatch = response_class.dispatch
    return {
        "{0}/environments$": dispatch,
        "{0}/environments/(?P<Name>[^/]+)$": dispatch,
        "{0}/clitoken/(?P<Name>[^/]+)$": dispatch,
        "{0}/webtoken/(?P<Name>[^/]+)$": dispatch,
        "{0}/restapi/(?P<Name>[^/]+)$": dispatch,
    }


# --------------------------------------------------------------------------------------------------
# the extension


class MwaaExtension:
    """Adds Amazon MWAA to the emulated account (see the module docstring).

    Args:
        airflow: environment name -> the Airflow that answers its InvokeRestApi calls; more can be
            attached later with :meth:`attach_airflow`.
    """

    name = "mwaa"

    def __init__(self, airflow: Mapping[str, AirflowHandler] | None = None) -> None:
        self._pending = dict(airflow or {})
        self._emulator: Emulator | None = None
        self._pattern: tuple[str, Any] | None = None

    def install(self, emulator: Emulator) -> None:
        """Register the ``mwaa`` backend with moto's dispatcher."""
        import moto.backend_index as backend_index

        if "moto.mwaa" in sys.modules or importlib.util.find_spec("moto.mwaa") is not None:
            raise RuntimeError("moto now has an mwaa module; this extension would shadow it: retire it")
        self._emulator = emulator
        module = types.ModuleType("moto.mwaa")
        module.mwaa_backends = mwaa_backends()  # type: ignore[attr-defined]
        sys.modules["moto.mwaa"] = module
        self._pattern = (SERVICE, re.compile(URL_BASE))
        backend_index.backend_url_patterns.append(self._pattern)
        for environment, handler in self._pending.items():
            self.attach_airflow(environment, handler)

    def close(self) -> None:
        """Unregister the backend; forget environments and tokens."""
        import moto.backend_index as backend_index

        if self._pattern is not None and self._pattern in backend_index.backend_url_patterns:
            backend_index.backend_url_patterns.remove(self._pattern)
        self._pattern = None
        sys.modules.pop("moto.mwaa", None)
        mwaa_backends().reset()

    def _backend(self) -> Any:
        assert self._emulator is not None, "install the extension first"
        return mwaa_backends()[self._emulator.account_id][self._emulator.region]

    def attach_airflow(self, environment: str, handler: AirflowHandler) -> None:
        """Make ``handler`` the Airflow behind ``environment``'s InvokeRestApi (the environment may come later)."""
        self._backend().airflow[environment] = handler

    def verify_token(self, token: str) -> tuple[str, str] | None:
        """(environment, "cli" | "web") for an unexpired token this emulator issued, else None."""
        entry = self._backend().tokens.get(token)
        if entry is None or entry[2] < time.monotonic():
            return None
        return entry[0], entry[1]
