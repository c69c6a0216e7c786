"""Read an incoming HTTP request as (service, operation, parameters, caller credentials).

The service comes from the SigV4 credential scope (``Credential=<key>/<date>/<region>/<service>/...``),
the operation from the protocol botocore's service model declares: ``X-Amz-Target`` for the JSON
protocols, ``Action=`` for the query protocol, and the HTTP method + ``requestUri`` template (with its
literal query keys and required query/header members) for the REST protocols.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, unquote

# signing name -> botocore service names signed with it
_SIGNING_ALIASES = {
    "monitoring": ("cloudwatch",),
    "airflow": ("mwaa",),
    "sagemaker": ("sagemaker", "sagemaker-runtime", "sagemaker-featurestore-runtime"),
}


@dataclass
class ApiRequest:
    """One AWS API call as the authorizer sees it."""

    service: str
    """botocore service name (``s3``, ``sagemaker``, ``cloudwatch``...)."""
    operation: str
    """API operation name (``PutObject``)."""
    params: dict[str, Any]
    """Top-level input members by their botocore names."""
    region: str
    headers: Mapping[str, str] = field(default_factory=dict)
    """Lower-cased header names."""
    access_key: str | None = None
    session_token: str | None = None
    secure_transport: bool = True
    body: bytes = b""
    """The raw request body (for the few REST-XML inputs the mapping reads, e.g. DeleteObjects)."""


class RequestNotUnderstoodError(ValueError):
    """The request's service or operation could not be told from its HTTP form."""


_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request")


def credential_scope(headers: Mapping[str, str], query: Mapping[str, str]) -> tuple[str, str, str] | None:
    """(access key, region, signing name) from the Authorization header or a presigned URL."""
    match = _CREDENTIAL.search(headers.get("authorization", ""))
    if match:
        return match.group(1), match.group(3), match.group(4)
    scope = query.get("X-Amz-Credential")
    if scope:
        parts = scope.split("/")
        if len(parts) >= 5:
            return parts[0], parts[2], parts[3]
    return None


@lru_cache(maxsize=64)
def service_model(service: str) -> Any:
    """botocore's model of ``service``."""
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


@dataclass(frozen=True)
class _Route:
    operation: str
    method: str
    regex: re.Pattern[str]
    labels: tuple[str, ...]
    literal_query: tuple[tuple[str, str | None], ...]
    required_query: tuple[str, ...]
    required_headers: tuple[str, ...]

    @property
    def specificity(self) -> int:
        return 10 * len(self.literal_query) + len(self.required_query) + len(self.required_headers)


@lru_cache(maxsize=64)
def _routes(service: str) -> tuple[_Route, ...]:
    model = service_model(service)
    routes: list[_Route] = []
    for name in model.operation_names:
        op = model.operation_model(name)
        uri = str(op.http.get("requestUri", "/"))
        path, _, query = uri.partition("?")
        literal_query: list[tuple[str, str | None]] = []
        for item in filter(None, query.split("&")):
            key, eq, value = item.partition("=")
            if key != "x-id":
                literal_query.append((key, value if eq else None))
        labels: list[str] = []
        pattern = ""
        for piece in re.split(r"(\{[^}]+\})", path):
            if piece.startswith("{"):
                label = piece[1:-1]
                greedy = label.endswith("+")
                label = label.rstrip("+")
                labels.append(label)
                pattern += f"(?P<l{len(labels) - 1}>.+)" if greedy else f"(?P<l{len(labels) - 1}>[^/]+)"
            else:
                pattern += re.escape(piece)
        if pattern.endswith("/") and len(pattern) > 1:
            pattern = pattern[:-1] + "/?"
        required_query: list[str] = []
        required_headers: list[str] = []
        shape = op.input_shape
        if shape is not None:
            for member in shape.required_members:
                member_shape = shape.members[member]
                location = member_shape.serialization.get("location")
                location_name = member_shape.serialization.get("name", member)
                if location == "querystring":
                    required_query.append(location_name)
                elif location == "header":
                    required_headers.append(location_name.lower())
        routes.append(
            _Route(
                operation=name,
                method=str(op.http.get("method", "POST")).upper(),
                regex=re.compile(f"^{pattern}$"),
                labels=tuple(labels),
                literal_query=tuple(literal_query),
                required_query=tuple(required_query),
                required_headers=tuple(required_headers),
            )
        )
    return tuple(routes)


def _rest_operation(
    service: str, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str]
) -> tuple[str, dict[str, str]]:
    best: tuple[int, _Route, dict[str, str]] | None = None
    for route in _routes(service):
        if route.method != method:
            continue
        match = route.regex.match(path)
        if not match:
            continue
        if any(
            key not in query or (value is not None and query[key] != value)
            for key, value in route.literal_query
        ):
            continue
        if any(key not in query for key in route.required_query):
            continue
        if any(key not in headers for key in route.required_headers):
            continue
        labels = {label: unquote(match.group(f"l{i}")) for i, label in enumerate(route.labels)}
        score = route.specificity
        if best is None or score > best[0]:
            best = (score, route, labels)
    if best is None:
        raise RequestNotUnderstoodError(f"no {service} operation matches {method} {path}")
    return best[1].operation, best[2]


def _rest_params(
    service: str,
    operation: str,
    labels: Mapping[str, str],
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
) -> dict[str, Any]:
    op = service_model(service).operation_model(operation)
    shape = op.input_shape
    params: dict[str, Any] = {}
    if shape is None:
        return params
    payload: dict[str, Any] = {}
    if service_model(service).protocol == "rest-json" and body:
        try:
            loaded = json.loads(body)
            payload = loaded if isinstance(loaded, dict) else {}
        except ValueError:
            payload = {}
    for member, member_shape in shape.members.items():
        location = member_shape.serialization.get("location")
        location_name = member_shape.serialization.get("name", member)
        if location == "uri" and location_name in labels:
            params[member] = labels[location_name]
        elif location == "querystring" and location_name in query:
            params[member] = query[location_name]
        elif location == "header" and location_name.lower() in headers:
            params[member] = headers[location_name.lower()]
        elif location is None and member in payload:
            params[member] = payload[member]
    return params


def parse_request(environ: Mapping[str, Any], body: bytes) -> ApiRequest | None:
    """The API call a WSGI request makes, or None when it is not a signed AWS API call."""
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    if "CONTENT_TYPE" in environ:
        headers["content-type"] = str(environ["CONTENT_TYPE"])
    query = dict(parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True))
    scope = credential_scope(headers, query)
    if scope is None:
        return None
    access_key, region, signing_name = scope
    token = headers.get("x-amz-security-token") or query.get("X-Amz-Security-Token")
    method = str(environ.get("REQUEST_METHOD", "GET")).upper()
    raw_path = str(environ.get("PATH_INFO", "/"))
    try:
        path = raw_path.encode("latin-1").decode("utf-8")
    except UnicodeError:
        path = raw_path
    candidates = _SIGNING_ALIASES.get(signing_name, (signing_name,))
    target = headers.get("x-amz-target", "")
    for service in candidates:
        try:
            model = service_model(service)
        except Exception:  # noqa: S112 - botocore knows no such service: try the next candidate
            continue
        protocol = model.protocol
        if target and protocol in {"json", "smithy-rpc-v2-cbor"}:
            operation = target.rsplit(".", 1)[-1]
            if operation not in model.operation_names:
                raise RequestNotUnderstoodError(
                    f"{service} has no operation {operation!r} (X-Amz-Target {target})"
                )
            try:
                loaded = json.loads(body) if body else {}
            except ValueError as exc:
                raise RequestNotUnderstoodError(
                    f"{service}.{operation}: the body is not JSON ({exc})"
                ) from exc
            params = loaded if isinstance(loaded, dict) else {}
        elif protocol in {"query", "ec2"} and not target:  # EC2's protocol is the query form
            form = dict(query)
            if body:
                form.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            operation = form.get("Action", "")
            if operation not in model.operation_names:
                raise RequestNotUnderstoodError(f"{service} has no operation {operation!r}")
            params = form
        elif protocol in {"rest-json", "rest-xml"} and not target:
            try:
                operation, labels = _rest_operation(service, method, path, query, headers)
            except RequestNotUnderstoodError:
                if service != candidates[-1]:
                    continue
                raise
            params = _rest_params(service, operation, labels, query, headers, body)
        else:
            continue
        return ApiRequest(
            service=service,
            operation=operation,
            params=params,
            region=region,
            headers=headers,
            access_key=access_key,
            session_token=token,
            body=body,
        )
    raise RequestNotUnderstoodError(f"cannot tell the operation of a {signing_name} request {method} {path}")
