"""EKS managed add-ons and access entries, which moto's EKS lacks.

:class:`EksExtension` adds to moto's EKS service (same endpoint, same clusters):

- add-ons: CreateAddon, DescribeAddon, ListAddons, UpdateAddon, DeleteAddon, DescribeAddonVersions;
- access entries: CreateAccessEntry, DescribeAccessEntry, ListAccessEntries, UpdateAccessEntry,
  DeleteAccessEntry, AssociateAccessPolicy, DisassociateAccessPolicy, ListAssociatedAccessPolicies,
  ListAccessPolicies;
- the cluster's ``accessConfig`` (moto drops it): the authentication mode is stored and returned, access
  entry calls are refused on a ``CONFIG_MAP`` cluster, and ``bootstrapClusterCreatorAdminPermissions``
  (default true) creates the creator's access entry with ``AmazonEKSClusterAdminPolicy``, as EKS does.

Validation follows EKS: the cluster must exist (ResourceNotFoundException), a second add-on or access
entry of the same name/principal is ResourceInUseException, unknown add-ons, policies, principals and
scopes are InvalidParameterException. Add-on and access-entry state lives on moto's cluster object, so
deleting the cluster deletes them, as on AWS.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import parse_qs, unquote, urlsplit

if TYPE_CHECKING:
    from rehearsal.emulator import Emulator

# name -> (default version, runs a Deployment that needs nodes to become healthy)
# https://docs.aws.amazon.com/eks/latest/userguide/workloads-add-ons-available-eks.html
ADDONS: dict[str, tuple[str, bool]] = {
    "vpc-cni": ("v1.19.2-eksbuild.1", False),
    "kube-proxy": ("v1.31.3-eksbuild.2", False),
    "coredns": ("v1.11.4-eksbuild.2", True),
    "aws-ebs-csi-driver": ("v1.38.1-eksbuild.2", True),
    "aws-efs-csi-driver": ("v2.1.4-eksbuild.1", True),
    "aws-mountpoint-s3-csi-driver": ("v1.11.0-eksbuild.1", False),
    "eks-pod-identity-agent": ("v1.3.4-eksbuild.1", False),
    "snapshot-controller": ("v8.1.0-eksbuild.2", True),
    "amazon-cloudwatch-observability": ("v3.1.0-eksbuild.1", True),
    "adot": ("v0.109.0-eksbuild.2", True),
    "aws-guardduty-agent": ("v1.8.1-eksbuild.2", False),
    "metrics-server": ("v0.7.2-eksbuild.1", True),
}
ADDON_VERSION = re.compile(r"^v\d+\.\d+\.\d+-eksbuild\.\d+$")

# https://docs.aws.amazon.com/eks/latest/userguide/access-policy-permissions.html
ACCESS_POLICIES = (
    "AmazonEKSAdminPolicy",
    "AmazonEKSClusterAdminPolicy",
    "AmazonEKSAdminViewPolicy",
    "AmazonEKSEditPolicy",
    "AmazonEKSViewPolicy",
    "AmazonEMRJobPolicy",
    "AmazonEKSAutoNodePolicy",
    "AmazonEKSComputePolicy",
    "AmazonEKSLoadBalancingPolicy",
    "AmazonEKSNetworkingPolicy",
    "AmazonEKSBlockStoragePolicy",
)
ACCESS_ENTRY_TYPES = ("STANDARD", "FARGATE_LINUX", "EC2_LINUX", "EC2_WINDOWS", "EC2", "HYBRID_LINUX")
AUTH_MODES = ("API", "API_AND_CONFIG_MAP", "CONFIG_MAP")
PRINCIPAL = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):(role|user)/(.+)$")

_ROUTES = (
    r"{0}/clusters/(?P<name>[^/]+)/addons(?P<addonPath>/.*|)$",
    r"{0}/clusters/(?P<name>[^/]+)/access-entries(?P<entryPath>/.*|)$",
    r"{0}/access-policies$",
    r"{0}/addons/supported-versions$",
)


def _now() -> float:
    return datetime.now(UTC).timestamp()


def iam_principal(arn: str) -> str:
    """The IAM principal behind a caller ARN (an STS assumed-role session names its role)."""
    match = re.match(r"^arn:([^:]+):sts::(\d{12}):(assumed-role|user)/([^/]+)", arn)
    if match is None:
        return arn
    kind = "role" if match.group(3) == "assumed-role" else "user"
    return f"arn:{match.group(1)}:iam::{match.group(2)}:{kind}/{match.group(4)}"


def _policy_arn(partition: str, name: str) -> str:
    return f"arn:{partition}:eks::aws:cluster-access-policy/{name}"


class EksExtension:
    """EKS add-ons and access entries on moto's clusters (see the module docstring)."""

    name = "eks"

    def __init__(self) -> None:
        self._emulator: Emulator | None = None
        self._added_routes: list[str] = []
        self._original_create: Callable[..., Any] | None = None

    def install(self, emulator: Emulator) -> None:
        """Route the new EKS paths to this extension and keep the cluster's accessConfig."""
        from moto.eks import urls
        from moto.eks.responses import EKSResponse

        self._emulator = emulator
        for route in _ROUTES:
            if route not in urls.url_paths:
                urls.url_paths[route] = self._handle
                self._added_routes.append(route)
        original_create = EKSResponse.create_cluster
        self._original_create = original_create
        ext = self

        def create_cluster(response: Any) -> Any:
            access = response._get_param("accessConfig") or {}
            mode = access.get("authenticationMode", "CONFIG_MAP")
            if mode not in AUTH_MODES:
                from moto.eks.exceptions import InvalidParameterException

                raise InvalidParameterException(
                    message=f"authenticationMode must be one of {list(AUTH_MODES)}"
                )
            result = original_create(response)
            cluster = response.eks_backend.clusters[response._get_param("name")]
            ext._init_access(
                response, cluster, mode, access.get("bootstrapClusterCreatorAdminPermissions", True)
            )
            return result

        EKSResponse.create_cluster = create_cluster  # type: ignore[method-assign]

    def close(self) -> None:
        """Remove the routes and restore moto's EKS responses."""
        from moto.eks import urls
        from moto.eks.responses import EKSResponse

        for route in self._added_routes:
            urls.url_paths.pop(route, None)
        self._added_routes.clear()
        if self._original_create is not None:
            EKSResponse.create_cluster = self._original_create  # type: ignore[method-assign]
            self._original_create = None

    # ------------------------------------------------------------------ state on moto's cluster

    def _init_access(self, response: Any, cluster: Any, mode: str, bootstrap: bool) -> None:
        cluster.access_config = {
            "authenticationMode": mode,
            "bootstrapClusterCreatorAdminPermissions": bool(bootstrap),
        }
        cluster.rehearsal_addons = {}
        cluster.rehearsal_access_entries = {}
        if mode != "CONFIG_MAP" and bootstrap:
            from moto.sts.models import sts_backends

            account, region = response.current_account, response.region
            partition = cluster.arn.split(":")[1]
            caller = sts_backends[account][partition].get_caller_identity(response.get_access_key(), region)[
                1
            ]
            entry = self._new_entry(
                cluster, iam_principal(caller), "STANDARD", [], None, {}, check_principal=False
            )
            entry["policies"][_policy_arn(partition, "AmazonEKSClusterAdminPolicy")] = {
                "policyArn": _policy_arn(partition, "AmazonEKSClusterAdminPolicy"),
                "accessScope": {"type": "cluster", "namespaces": []},
                "associatedAt": _now(),
                "modifiedAt": _now(),
            }

    @staticmethod
    def _store(cluster: Any, attr: str) -> dict[str, Any]:
        if not hasattr(cluster, attr):
            setattr(cluster, attr, {})
        return getattr(cluster, attr)

    # ------------------------------------------------------------------ request handling

    def _handle(
        self, request: Any, full_url: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], str]:
        from moto.eks.exceptions import EKSError

        parts = urlsplit(full_url)
        segments = [unquote(s) for s in parts.path.split("/") if s]
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        body: dict[str, Any] = {}
        if request.data:
            body = json.loads(request.data)
        try:
            status, payload = self._route(request.method, segments, query, body, request)
        except EKSError as error:
            return (
                error.STATUS,
                {"x-amzn-ErrorType": str(error.TYPE), "content-type": "application/json"},
                error.description,
            )
        return status, {"content-type": "application/json"}, json.dumps(payload)

    def _backend(self, request: Any) -> Any:
        from moto.eks.models import eks_backends

        assert self._emulator is not None
        region = self._emulator.region
        auth = request.headers.get("Authorization", "")
        match = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/eks/", auth)
        if match:
            region = match.group(1)
        return eks_backends[self._emulator.account_id][region]

    def _route(
        self, method: str, seg: list[str], query: dict[str, str], body: dict[str, Any], request: Any
    ) -> tuple[int, Any]:
        from moto.eks.exceptions import InvalidRequestException

        backend = self._backend(request)
        if seg == ["access-policies"] and method == "GET":
            partition = "aws"
            return 200, {
                "accessPolicies": [{"name": n, "arn": _policy_arn(partition, n)} for n in ACCESS_POLICIES]
            }
        if seg == ["addons", "supported-versions"] and method == "GET":
            return 200, self._addon_versions(query)
        cluster = self._cluster(backend, seg[1])
        kind, rest = seg[2], seg[3:]
        if kind == "addons":
            if not rest:
                if method == "POST":
                    return 200, {"addon": self._create_addon(cluster, body)}
                return 200, {"addons": sorted(self._store(cluster, "rehearsal_addons"))}
            addon = self._addon(cluster, rest[0])
            if len(rest) == 1 and method == "GET":
                return 200, {"addon": self._addon_view(cluster, addon)}
            if len(rest) == 1 and method == "DELETE":
                del self._store(cluster, "rehearsal_addons")[rest[0]]
                return 200, {"addon": {**self._addon_view(cluster, addon), "status": "DELETING"}}
            if rest[1:] == ["update"] and method == "POST":
                return 200, {"update": self._update_addon(cluster, addon, body)}
        elif kind == "access-entries":
            mode = getattr(cluster, "access_config", {}).get("authenticationMode", "CONFIG_MAP")
            if mode == "CONFIG_MAP":
                raise InvalidRequestException(
                    message="The cluster's authentication mode must be set to one of [API, API_AND_CONFIG_MAP] "
                    "to perform this operation."
                )
            entries = self._store(cluster, "rehearsal_access_entries")
            if not rest:
                if method == "POST":
                    entry = self._new_entry(
                        cluster,
                        body.get("principalArn", ""),
                        body.get("type", "STANDARD"),
                        body.get("kubernetesGroups") or [],
                        body.get("username"),
                        body.get("tags") or {},
                    )
                    return 200, {"accessEntry": self._entry_view(entry)}
                wanted = query.get("associatedPolicyArn")
                names = [p for p, e in entries.items() if wanted is None or wanted in e["policies"]]
                return 200, {"accessEntries": sorted(names)}
            principal = self._principal_from(rest)
            entry = self._entry(cluster, principal)
            tail = rest[len(self._principal_segments(rest)) :]
            if not tail:
                if method == "GET":
                    return 200, {"accessEntry": self._entry_view(entry)}
                if method == "DELETE":
                    del entries[principal]
                    return 200, {}
                if method == "POST":
                    return 200, {"accessEntry": self._entry_view(self._update_entry(entry, body))}
            elif tail[0] == "access-policies":
                if len(tail) == 1 and method == "POST":
                    associated = self._associate(cluster, entry, body)
                    return 200, {
                        "clusterName": cluster.name,
                        "principalArn": principal,
                        "associatedAccessPolicy": associated,
                    }
                if len(tail) == 1 and method == "GET":
                    return 200, {
                        "clusterName": cluster.name,
                        "principalArn": principal,
                        "associatedAccessPolicies": list(entry["policies"].values()),
                    }
                if len(tail) > 1 and method == "DELETE":
                    policy = "/".join(tail[1:])
                    if policy not in entry["policies"]:
                        self._not_found(f"The policy {policy} is not associated with {principal}.", cluster)
                    del entry["policies"][policy]
                    return 200, {}
        raise InvalidRequestException(message=f"unsupported EKS request {method} /{'/'.join(seg)}")

    # ------------------------------------------------------------------ helpers: lookups and errors

    @staticmethod
    def _not_found(message: str, cluster: Any = None, addon: str | None = None) -> NoReturn:
        from moto.eks.exceptions import ResourceNotFoundException

        raise ResourceNotFoundException(
            clusterName=getattr(cluster, "name", None),
            nodegroupName=None,
            fargateProfileName=None,
            addonName=addon,
            message=message,
        )

    @staticmethod
    def _invalid(message: str, cluster: Any = None, addon: str | None = None) -> NoReturn:
        from moto.eks.exceptions import InvalidParameterException

        raise InvalidParameterException(
            clusterName=getattr(cluster, "name", None), addonName=addon, message=message
        )

    @staticmethod
    def _in_use(message: str, cluster: Any = None, addon: str | None = None) -> NoReturn:
        from moto.eks.exceptions import ResourceInUseException

        raise ResourceInUseException(
            clusterName=getattr(cluster, "name", None), addonName=addon, message=message
        )

    def _cluster(self, backend: Any, name: str) -> Any:
        cluster = backend.clusters.get(name)
        if cluster is None:
            self._not_found(f"No cluster found for name: {name}.")
        if cluster.status != "ACTIVE":
            from moto.eks.exceptions import InvalidRequestException

            raise InvalidRequestException(message=f"Cluster '{name}' is not in ACTIVE status")
        return cluster

    # ------------------------------------------------------------------ add-ons

    def _create_addon(self, cluster: Any, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("addonName", "")
        addons = self._store(cluster, "rehearsal_addons")
        if name not in ADDONS:
            self._invalid(
                f"Addon {name} specified is not supported in {cluster.version} cluster version", cluster, name
            )
        if name in addons:
            self._in_use("Addon already exists.", cluster, name)
        version = body.get("addonVersion") or ADDONS[name][0]
        if not ADDON_VERSION.match(version):
            self._invalid(f"Addon version specified {version} is not supported", cluster, name)
        role = body.get("serviceAccountRoleArn")
        if role:
            self._require_role(role, cluster, name)
        if body.get("resolveConflicts", "NONE") not in ("OVERWRITE", "NONE", "PRESERVE"):
            self._invalid("resolveConflicts must be OVERWRITE, NONE or PRESERVE", cluster, name)
        if body.get("configurationValues"):
            try:
                json.loads(body["configurationValues"])
            except ValueError:
                self._invalid("configurationValues must be a JSON (or YAML) object string", cluster, name)
        partition, region, account = (
            cluster.arn.split(":")[1],
            cluster.arn.split(":")[3],
            cluster.arn.split(":")[4],
        )
        addon = {
            "addonName": name,
            "clusterName": cluster.name,
            "addonVersion": version,
            "addonArn": f"arn:{partition}:eks:{region}:{account}:addon/{cluster.name}/{name}/{uuid.uuid4()}",
            "createdAt": _now(),
            "modifiedAt": _now(),
            "tags": body.get("tags") or {},
            "owner": "aws",
            "publisher": "eks",
        }
        if role:
            addon["serviceAccountRoleArn"] = role
        if body.get("configurationValues"):
            addon["configurationValues"] = body["configurationValues"]
        addons[name] = addon
        return {**self._addon_view(cluster, addon), "status": "CREATING"}

    def _addon(self, cluster: Any, name: str) -> dict[str, Any]:
        addon = self._store(cluster, "rehearsal_addons").get(name)
        if addon is None:
            self._not_found(f"No addon: {name} found in cluster: {cluster.name}", cluster, name)
        return addon  # type: ignore[return-value]

    def _addon_view(self, cluster: Any, addon: dict[str, Any]) -> dict[str, Any]:
        needs_nodes = ADDONS[addon["addonName"]][1]
        has_nodes = bool(getattr(cluster, "nodegroups", None)) or bool(
            getattr(cluster, "fargate_profiles", None)
        )
        if needs_nodes and not has_nodes:
            # A Deployment with no node to schedule on: EKS reports the add-on DEGRADED.
            health = {
                "issues": [
                    {
                        "code": "InsufficientNumberOfReplicas",
                        "message": "The add-on is unhealthy because it doesn't have the desired number of replicas.",
                        "resourceIds": [],
                    }
                ]
            }
            return {**addon, "status": "DEGRADED", "health": health}
        return {**addon, "status": "ACTIVE", "health": {"issues": []}}

    def _update_addon(self, cluster: Any, addon: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        params = []
        if body.get("addonVersion"):
            if not ADDON_VERSION.match(body["addonVersion"]):
                self._invalid(f"Addon version specified {body['addonVersion']} is not supported", cluster)
            addon["addonVersion"] = body["addonVersion"]
            params.append({"type": "AddonVersion", "value": body["addonVersion"]})
        if "serviceAccountRoleArn" in body:
            if body["serviceAccountRoleArn"]:
                self._require_role(body["serviceAccountRoleArn"], cluster, addon["addonName"])
            addon["serviceAccountRoleArn"] = body["serviceAccountRoleArn"]
            params.append({"type": "ServiceAccountRoleArn", "value": body["serviceAccountRoleArn"]})
        if "configurationValues" in body:
            addon["configurationValues"] = body["configurationValues"]
            params.append({"type": "ConfigurationValues", "value": body["configurationValues"]})
        if body.get("resolveConflicts"):
            params.append({"type": "ResolveConflicts", "value": body["resolveConflicts"]})
        addon["modifiedAt"] = _now()
        return {
            "id": str(uuid.uuid4()),
            "status": "Successful",
            "type": "AddonUpdate",
            "params": params,
            "createdAt": _now(),
            "errors": [],
        }

    def _addon_versions(self, query: dict[str, str]) -> dict[str, Any]:
        wanted = query.get("addonName")
        return {
            "addons": [
                {
                    "addonName": name,
                    "type": "networking" if name in ("vpc-cni", "kube-proxy", "coredns") else "other",
                    "addonVersions": [
                        {"addonVersion": version, "compatibilities": [{"defaultVersion": True}]}
                    ],
                    "owner": "aws",
                    "publisher": "eks",
                }
                for name, (version, _) in ADDONS.items()
                if wanted is None or wanted == name
            ]
        }

    def _require_role(self, arn: str, cluster: Any, addon: str | None = None) -> None:
        from moto.iam.models import iam_backends

        match = PRINCIPAL.match(arn)
        if match is None or match.group(3) != "role":
            self._invalid(f"{arn} is not a valid IAM role ARN", cluster, addon)
        try:
            iam_backends[match.group(2)][match.group(1)].get_role_by_arn(arn)  # type: ignore[union-attr]
        except Exception:
            self._invalid(f"The role {arn} does not exist", cluster, addon)

    # ------------------------------------------------------------------ access entries

    @staticmethod
    def _principal_segments(rest: list[str]) -> list[str]:
        # The principal ARN arrives percent-encoded in one segment; a client that did not encode its
        # "/" splits it, so take segments up to the "access-policies" keyword.
        if "access-policies" in rest:
            return rest[: rest.index("access-policies")]
        return rest

    def _principal_from(self, rest: list[str]) -> str:
        return "/".join(self._principal_segments(rest))

    def _entry(self, cluster: Any, principal: str) -> dict[str, Any]:
        entry = self._store(cluster, "rehearsal_access_entries").get(principal)
        if entry is None:
            self._not_found(f"The specified principalArn could not be found: {principal}", cluster)
        return entry  # type: ignore[return-value]

    def _new_entry(
        self,
        cluster: Any,
        principal: str,
        kind: str,
        groups: list[str],
        username: str | None,
        tags: dict[str, str],
        *,
        check_principal: bool = True,
    ) -> dict[str, Any]:
        from moto.iam.models import iam_backends

        entries = self._store(cluster, "rehearsal_access_entries")
        match = PRINCIPAL.match(principal)
        if match is None:
            self._invalid(f"The specified principalArn is invalid: {principal}", cluster)
        assert match is not None
        if kind not in ACCESS_ENTRY_TYPES:
            self._invalid(f"type must be one of {list(ACCESS_ENTRY_TYPES)}", cluster)
        if check_principal:
            if "/aws-service-role/" in principal:
                self._invalid(
                    "The caller is not allowed to modify access entries with a principalArn value of a Service "
                    "Linked Role",
                    cluster,
                )
            iam = iam_backends[match.group(2)][match.group(1)]
            try:
                if match.group(3) == "role":
                    iam.get_role_by_arn(principal)
                else:
                    iam.get_user(match.group(4).rsplit("/", 1)[-1])
            except Exception:
                self._invalid(
                    f"The specified principalArn is invalid: invalid principal {principal}", cluster
                )
        if kind != "STANDARD" and (groups or username):
            self._invalid(
                f"kubernetesGroups and username cannot be set for access entries of type {kind}", cluster
            )
        if any(g.startswith("system:") for g in groups):
            self._invalid("kubernetesGroups cannot start with 'system:'", cluster)
        if username is not None and username.startswith(("system:", "amazon:", "aws:", "eks:", "iam:")):
            self._invalid(f"username {username!r} uses a reserved prefix", cluster)
        if principal in entries:
            self._in_use("The specified access entry resource is already in use on this cluster.", cluster)
        partition, region, account = (
            cluster.arn.split(":")[1],
            cluster.arn.split(":")[3],
            cluster.arn.split(":")[4],
        )
        role_name = match.group(4).rsplit("/", 1)[-1]
        if username is None:
            if kind in ("EC2_LINUX", "EC2_WINDOWS", "EC2"):
                username = "system:node:{{EC2PrivateDNSName}}"
            elif kind == "FARGATE_LINUX":
                username = "system:node:{{SessionName}}"
            elif match.group(3) == "role":
                username = (
                    f"arn:{partition}:sts::{match.group(2)}:assumed-role/{role_name}/{{{{SessionName}}}}"
                )
            else:
                username = principal
        entry = {
            "clusterName": cluster.name,
            "principalArn": principal,
            "kubernetesGroups": list(groups),
            "accessEntryArn": f"arn:{partition}:eks:{region}:{account}:access-entry/{cluster.name}/"
            f"{match.group(3)}/{match.group(2)}/{role_name}/{uuid.uuid4()}",
            "createdAt": _now(),
            "modifiedAt": _now(),
            "tags": dict(tags),
            "username": username,
            "type": kind,
            "policies": {},
        }
        entries[principal] = entry
        return entry

    @staticmethod
    def _entry_view(entry: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in entry.items() if k != "policies"}

    def _update_entry(self, entry: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        if entry["type"] != "STANDARD" and (body.get("kubernetesGroups") or body.get("username")):
            self._invalid(
                f"kubernetesGroups and username cannot be set for access entries of type {entry['type']}"
            )
        if "kubernetesGroups" in body:
            if any(g.startswith("system:") for g in body["kubernetesGroups"]):
                self._invalid("kubernetesGroups cannot start with 'system:'")
            entry["kubernetesGroups"] = list(body["kubernetesGroups"])
        if body.get("username"):
            entry["username"] = body["username"]
        entry["modifiedAt"] = _now()
        return entry

    def _associate(self, cluster: Any, entry: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        policy = body.get("policyArn", "")
        partition = cluster.arn.split(":")[1]
        if policy not in {_policy_arn(partition, n) for n in ACCESS_POLICIES}:
            self._invalid(f"The specified policyArn is invalid: {policy}", cluster)
        if entry["type"] != "STANDARD":
            self._invalid(
                f"access policies cannot be associated with access entries of type {entry['type']}", cluster
            )
        scope = body.get("accessScope") or {}
        namespaces = list(scope.get("namespaces") or [])
        if scope.get("type") not in ("cluster", "namespace"):
            self._invalid("accessScope.type must be cluster or namespace", cluster)
        if scope["type"] == "cluster" and namespaces:
            self._invalid("namespaces cannot be specified with an accessScope of type cluster", cluster)
        if scope["type"] == "namespace" and not namespaces:
            self._invalid("at least one namespace is required with an accessScope of type namespace", cluster)
        previous = entry["policies"].get(policy)
        associated = {
            "policyArn": policy,
            "accessScope": {"type": scope["type"], "namespaces": namespaces},
            "associatedAt": previous["associatedAt"] if previous else _now(),
            "modifiedAt": _now(),
        }
        entry["policies"][policy] = associated
        return associated
