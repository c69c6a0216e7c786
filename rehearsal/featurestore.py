"""Feature Store runtime in the emulator: PutRecord, GetRecord, BatchGetRecord, DeleteRecord.

moto stores feature groups (CreateFeatureGroup, DescribeFeatureGroup) but has no
``sagemaker-featurestore-runtime`` API. This extension answers it (REST-JSON under ``/FeatureGroup/``
and ``/BatchGetRecord``, signed as ``sagemaker``; the IAM authorizer judges the calls first) and
validates what AWS validates on PutRecord
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_feature_store_PutRecord.html):
the group exists; every feature is one of the group's definitions, at most once; the record
identifier and event time are present; the event time is ISO-8601 ``yyyy-MM-ddTHH:mm:ss[.SSS]Z``
(a ``String`` event time) or epoch seconds (``Fractional``); values parse as their feature's type.

Online store: the latest record per identifier (a record with an older event time does not replace
a newer one), only for groups created with ``OnlineStoreConfig.EnableOnlineStore``; GetRecord on a
group without one is refused as AWS refuses it. Offline store: records are buffered and, for a
Glue-format group, written as Parquet in the layout AWS documents
(https://docs.aws.amazon.com/sagemaker/latest/dg/feature-store-offline.html)::

    <S3Uri>/<account>/sagemaker/<region>/offline-store/<group>-<creation epoch>/data/
        year=YYYY/month=MM/day=DD/hour=HH/<yyyyMMddTHHmmssZ>_<16 random>.parquet

with ``write_time``, ``api_invocation_time`` and ``is_deleted`` columns, encrypted with the group's
offline-store key, on :meth:`FeatureStoreRuntime.flush` (AWS replicates within minutes; here on
demand, when the buffer is full, and when the emulator stops).

An ``Iceberg`` group's offline store is an Iceberg table in Glue, as on AWS: CreateFeatureGroup creates
it (``pipelines.features.offline_store``'s schema and location, unpartitioned) as the group's role
assumed by ``sagemaker.amazonaws.com`` (a missing database is created first); when the role may not,
or a table of that name exists, the call still returns and the group ends ``CreateFailed`` with a
``FailureReason``
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeFeatureGroup.html). Each flush
is one Iceberg append to that table, as the role.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs, unquote

if TYPE_CHECKING:
    from rehearsal.emulator import Emulator

ISO_EVENT_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$")
"""The String event-time formats Feature Store accepts."""
FLUSH_ROWS = 20_000
"""Buffered offline records per group that trigger a write."""
_PATH = re.compile(r"^/FeatureGroup/([^/]+)$")


class FeatureStoreRequestError(Exception):
    """A request Feature Store refuses: an error code, HTTP status and message."""

    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


def _validation(message: str) -> FeatureStoreRequestError:
    return FeatureStoreRequestError("ValidationError", 400, message)


@dataclass
class GroupState:
    """A feature group as the runtime keeps it: its definition, online records, pending offline rows."""

    name: str
    arn: str
    record_identifier: str
    event_time: str
    types: dict[str, str]
    offline_uri: str | None
    offline_key: str | None
    online: bool
    online_records: dict[str, tuple[float, list[dict[str, str]]]] = field(default_factory=dict)
    pending: list[dict[str, Any]] = field(default_factory=list)
    iceberg: bool = False
    """The offline store is an Iceberg table (``TableFormat`` Iceberg), else Glue-format Parquet."""
    database: str = ""
    table_name: str = ""
    role_arn: str = ""
    definitions: list[tuple[str, str]] = field(default_factory=list)
    write_lock: threading.Lock = field(default_factory=threading.Lock)


def event_time_seconds(value: str, kind: str) -> float:
    """Epoch seconds of an event-time value; ValidationError when its format is not accepted."""
    if kind == "Fractional":
        try:
            return float(value)
        except ValueError:
            raise _validation(
                f"event time {value!r} is not epoch seconds (a Fractional event time)"
            ) from None
    if not ISO_EVENT_TIME.match(value):
        raise _validation(
            f"event time {value!r} is not in the format yyyy-MM-dd'T'HH:mm:ssZ or yyyy-MM-dd'T'HH:mm:ss.SSSZ"
        )
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _typed(value: str, kind: str, name: str) -> Any:
    try:
        if kind == "Integral":
            return int(value)
        if kind == "Fractional":
            return float(value)
    except ValueError:
        raise _validation(f"value {value!r} of feature {name!r} is not of type {kind}") from None
    return value


class FeatureStoreRuntime:
    """The emulator's Feature Store runtime (see the module docstring)."""

    name = "featurestore-runtime"

    def __init__(self, flush_rows: int = FLUSH_ROWS) -> None:
        self.flush_rows = flush_rows
        self._emulator: Emulator | None = None
        self._lock = threading.RLock()
        self._groups: dict[str, GroupState] = {}
        self._online_configs: dict[str, bool] = {}
        self._extras: dict[str, dict[str, Any]] = {}
        self._original_get_application: Callable[..., Any] | None = None
        self._patched: list[tuple[Any, str, Any]] = []
        self.files_written: list[str] = []
        """Offline-store objects written (s3:// URIs), in order."""
        self.received: dict[str, int] = {}
        """PutRecord calls accepted, by feature group name."""
        from rehearsal.iam.identities import RoleSessions

        self._sessions = RoleSessions()

    # --- lifecycle --------------------------------------------------------------------------------

    def install(self, emulator: Emulator) -> None:
        """Route Feature Store runtime requests here; remember each group's online-store setting."""
        from moto.core.responses import ActionResult
        from moto.sagemaker.responses import SageMakerResponse

        from rehearsal.emulator import EmulatorError

        if emulator.moto_app is None:
            raise EmulatorError("FeatureStoreRuntime needs a started emulator (moto_app is not set)")
        self._emulator = emulator
        dispatcher = emulator.moto_app
        original = dispatcher.get_application
        self._original_get_application = original
        runtime = self

        def get_application(environ: dict[str, Any]) -> Any:
            if runtime._is_runtime_request(environ):
                return runtime.wsgi
            return original(environ)

        dispatcher.get_application = get_application
        original_create = SageMakerResponse.create_feature_group
        original_describe = SageMakerResponse.describe_feature_group

        def create_feature_group(response: Any) -> Any:
            runtime._check_create(response)
            offline = response._get_param("OfflineStoreConfig") or {}
            catalog = dict(offline.get("DataCatalogConfig") or {})
            result = original_create(response)
            name = str(response._get_param("FeatureGroupName"))
            online = response._get_param("OnlineStoreConfig") or {}
            with runtime._lock:
                runtime._online_configs[name.lower()] = bool(online.get("EnableOnlineStore"))
                runtime._extras[name.lower()] = {
                    k: v
                    for k, v in (
                        ("OnlineStoreConfig", online or None),
                        ("Description", response._get_param("Description")),
                    )
                    if v
                }
            runtime._fix_offline_config(name, catalog)
            if str(offline.get("TableFormat") or "Glue") == "Iceberg":
                failure = runtime._create_offline_table(name)
                if failure is not None:
                    with runtime._lock:
                        runtime._extras[name.lower()].update(
                            FeatureGroupStatus="CreateFailed", FailureReason=failure
                        )
            return result

        def describe_feature_group(response: Any) -> Any:
            result = original_describe(response)
            name = str(response._get_param("FeatureGroupName")).rsplit("/", 1)[-1].lower()
            with runtime._lock:
                extras = dict(runtime._extras.get(name, {}))
            return ActionResult({**cast(dict[str, Any], result.result), **extras}) if extras else result

        def delete_feature_group(response: Any) -> Any:
            return runtime._delete_group(str(response._get_param("FeatureGroupName")))

        self._patched.append((SageMakerResponse, "create_feature_group", original_create))
        self._patched.append((SageMakerResponse, "describe_feature_group", original_describe))
        self._patched.append(
            (
                SageMakerResponse,
                "delete_feature_group",
                getattr(SageMakerResponse, "delete_feature_group", None),
            )
        )
        SageMakerResponse.create_feature_group = create_feature_group  # type: ignore[method-assign]
        SageMakerResponse.describe_feature_group = describe_feature_group  # type: ignore[method-assign]
        SageMakerResponse.delete_feature_group = delete_feature_group  # type: ignore[attr-defined]

    # --- CreateFeatureGroup / DeleteFeatureGroup, where moto drops or lacks what AWS does ----------

    @staticmethod
    def _check_create(response: Any) -> None:
        """Refuse what CreateFeatureGroup refuses and moto accepts: a record identifier or event time
        that is not a defined feature, an event time that is not String or Fractional
        (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateFeatureGroup.html)."""
        from moto.sagemaker.exceptions import ValidationError

        types = {
            d.get("FeatureName"): d.get("FeatureType")
            for d in response._get_param("FeatureDefinitions") or []
        }
        for param in ("RecordIdentifierFeatureName", "EventTimeFeatureName"):
            if response._get_param(param) not in types:
                raise ValidationError(
                    f"{param} {response._get_param(param)!r} is not one of the FeatureDefinitions {sorted(types)}"
                )
        if types[response._get_param("EventTimeFeatureName")] not in ("String", "Fractional"):
            raise ValidationError("the event time feature must be of type String or Fractional")

    def _backend_group(self, name: str) -> Any:
        from moto.sagemaker.models import sagemaker_backends

        assert self._emulator is not None
        key = name.rsplit("/", 1)[-1].lower()
        backend = sagemaker_backends[self._emulator.account_id][self._emulator.region]
        return backend, next(
            (g for g in backend.feature_groups.values() if g.feature_group_name.lower() == key), None
        )

    def _fix_offline_config(self, name: str, catalog: dict[str, Any]) -> None:
        """Keep the caller's DataCatalogConfig (moto replaces it with a generated one; AWS generates a
        table only when none is given) and resolve the offline URI with AWS's ``sagemaker/`` segment
        (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_S3StorageConfig.html)."""
        assert self._emulator is not None
        _, group = self._backend_group(name)
        if group is None or not group.offline_store_config:
            return
        config = group.offline_store_config
        if catalog:
            config["DataCatalogConfig"] = {"Catalog": "AwsDataCatalog", **catalog}
        storage = config.get("S3StorageConfig") or {}
        if storage.get("S3Uri"):
            epoch = int(group.creation_time.timestamp())
            storage["ResolvedOutputS3Uri"] = (
                f"{str(storage['S3Uri']).rstrip('/')}/{self._emulator.account_id}/sagemaker/"
                f"{self._emulator.region}/offline-store/{group.feature_group_name}-{epoch}/data"
            )

    def _catalog(self, role_arn: str | None, source_arn: str) -> Any:
        """pyiceberg's Glue catalog signed as ``role_arn`` assumed by SageMaker for ``source_arn`` (Glue
        and the S3 FileIO alike; root credentials for ``role_arn`` None or an emulator without IAM)."""
        from botocore.credentials import ReadOnlyCredentials

        from pipelines.features.offline_store import file_io_properties, glue_catalog
        from rehearsal.iam.identities import SAGEMAKER_SERVICE, client_as, client_kwargs

        assert self._emulator is not None
        issued = (
            self._sessions.service(self._emulator, role_arn, SAGEMAKER_SERVICE, source_arn)
            if role_arn
            else None
        )
        kwargs = client_kwargs(self._emulator, issued)
        credentials = ReadOnlyCredentials(
            kwargs["aws_access_key_id"], kwargs["aws_secret_access_key"], kwargs.get("aws_session_token")
        )
        properties = file_io_properties(
            region=self._emulator.region,
            endpoint_url=self._emulator.endpoint_url,
            credentials=credentials,
        )
        return glue_catalog(client_as(self._emulator, "glue", issued), properties)

    def _create_offline_table(self, name: str) -> str | None:
        """CreateFeatureGroup's Iceberg table (see the module docstring); the FailureReason when the
        group cannot have it (nothing of the table is left behind then), else None."""
        from botocore.exceptions import ClientError
        from pyiceberg.exceptions import NoSuchNamespaceError, TableAlreadyExistsError

        from pipelines.features.offline_store import offline_schema, table_location
        from rehearsal.iam import TrustDeniedError

        assert self._emulator is not None
        _, group = self._backend_group(name)
        config = group.offline_store_config
        catalog_config = config.get("DataCatalogConfig") or {}
        database, table = str(catalog_config["Database"]), str(catalog_config["TableName"])
        storage = config.get("S3StorageConfig") or {}
        location = table_location(str(storage["ResolvedOutputS3Uri"]))
        glue = self._emulator.client("glue")  # the service's own look-ups, not calls of the role
        try:
            glue.get_database(Name=database)
        except glue.exceptions.EntityNotFoundException:
            # Feature Store creates a missing database: its default one without a DataCatalogConfig
            # ("automatically created for your OfflineStore",
            # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DeleteFeatureGroup.html), and
            # the named one of an Iceberg group ("Database created if it doesn't exist": the SageMaker
            # SDK's DataCatalogConfig example, aws/sagemaker-python-sdk
            # v3-examples/ml-ops-examples/v3-feature-store-examples/data-catalog-config).
            glue.create_database(DatabaseInput={"Name": database})
        try:
            glue.get_table(DatabaseName=database, Name=table)
        except glue.exceptions.EntityNotFoundException:
            pass
        else:
            # With DataCatalogConfig names "the table must not already exist" and a group meeting one
            # goes CreateFailed (the SageMaker SDK's DataCatalogConfig example, cited above); a deleted
            # group's table stays (DeleteFeatureGroup keeps it), so a re-created group meets it.
            return (
                f"the offline store's Glue table {database}.{table} already exists (a deleted group's "
                "table stays: drop it or choose another TableName)"
            )
        from pipelines.aws import list_keys

        s3 = self._emulator.client("s3")
        bucket, _, prefix = location[5:].partition("/")
        before = set(list_keys(s3, bucket, prefix + "/metadata/"))
        schema = offline_schema([(d["FeatureName"], d["FeatureType"]) for d in group.feature_definitions])
        try:
            catalog = self._catalog(group.role_arn, group.arn)
            catalog.create_table((database, table), schema=schema, location=location)
        except (ClientError, OSError, TrustDeniedError, NoSuchNamespaceError, TableAlreadyExistsError) as exc:
            for key in sorted(set(list_keys(s3, bucket, prefix + "/metadata/")) - before):
                s3.delete_object(Bucket=bucket, Key=key)  # no half-made table
            return (
                f"the offline store's Iceberg table {database}.{table} could not be created as role "
                f"{group.role_arn}: {exc}"
            )
        return None

    def _delete_group(self, name: str) -> Any:
        """DeleteFeatureGroup (moto has none): the group, its online records; offline files stay, as on AWS
        (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DeleteFeatureGroup.html)."""
        from moto.sagemaker.exceptions import ResourceNotFound

        self.flush()
        backend, group = self._backend_group(name)
        if group is None:
            raise ResourceNotFound(f"Resource Not Found: FeatureGroup {name!r} does not exist")
        with self._lock:
            del backend.feature_groups[group.arn]
            key = group.feature_group_name.lower()
            self._groups.pop(key, None)
            self._online_configs.pop(key, None)
            self._extras.pop(key, None)
        from moto.core.responses import EmptyResult

        return EmptyResult()

    def close(self) -> None:
        """Write what is buffered to the offline stores; restore moto's routing."""
        if self._emulator is None:
            return
        try:
            self.flush()
        finally:
            dispatcher = self._emulator.moto_app
            if self._original_get_application is not None and "get_application" in vars(dispatcher):
                del dispatcher.get_application
            for cls, attr, original in reversed(self._patched):
                if original is None:
                    delattr(cls, attr)
                else:
                    setattr(cls, attr, original)
            self._patched.clear()
            self._sessions.clear()
            self._emulator = None

    @staticmethod
    def _is_runtime_request(environ: dict[str, Any]) -> bool:
        path = str(environ.get("PATH_INFO", ""))
        if not (path.startswith("/FeatureGroup/") or path == "/BatchGetRecord"):
            return False
        return "/sagemaker/aws4_request" in str(environ.get("HTTP_AUTHORIZATION", ""))

    # --- groups -----------------------------------------------------------------------------------

    def _group(self, name: str) -> GroupState:
        from moto.sagemaker.models import sagemaker_backends

        assert self._emulator is not None
        key = name.rsplit("/", 1)[-1].lower() if name.startswith("arn:") else name.lower()
        with self._lock:
            if key in self._groups:
                return self._groups[key]
            backend = sagemaker_backends[self._emulator.account_id][self._emulator.region]
            group = next(
                (g for g in backend.feature_groups.values() if g.feature_group_name.lower() == key), None
            )
            if group is None:
                raise FeatureStoreRequestError(
                    "ResourceNotFound", 404, f"Resource Not Found: FeatureGroup {name!r} does not exist"
                )
            storage = (group.offline_store_config or {}).get("S3StorageConfig") or {}
            offline_uri = None
            if storage.get("S3Uri"):
                epoch = int(group.creation_time.timestamp())
                offline_uri = (
                    f"{str(storage['S3Uri']).rstrip('/')}/{self._emulator.account_id}/sagemaker/"
                    f"{self._emulator.region}/offline-store/{group.feature_group_name}-{epoch}/data"
                )
                storage["ResolvedOutputS3Uri"] = offline_uri  # moto leaves out "sagemaker/"
            status = self._extras.get(key, {}).get("FeatureGroupStatus", "Created")
            if status != "Created":
                raise _validation(
                    f"feature group {group.feature_group_name!r} is {status}: "
                    f"{self._extras[key].get('FailureReason', '')}"
                )
            offline = group.offline_store_config or {}
            catalog = offline.get("DataCatalogConfig") or {}
            resolved = GroupState(
                name=group.feature_group_name,
                arn=group.arn,
                record_identifier=group.record_identifier_feature_name,
                event_time=group.event_time_feature_name,
                types={d["FeatureName"]: d["FeatureType"] for d in group.feature_definitions},
                offline_uri=offline_uri,
                offline_key=storage.get("KmsKeyId"),
                online=self._online_configs.get(key, False),
                iceberg=offline.get("TableFormat") == "Iceberg",
                database=str(catalog.get("Database", "")),
                table_name=str(catalog.get("TableName", "")),
                role_arn=str(group.role_arn or ""),
                definitions=[(d["FeatureName"], d["FeatureType"]) for d in group.feature_definitions],
            )
            self._groups[key] = resolved
            return resolved

    # --- operations -------------------------------------------------------------------------------

    def put_record(self, group_name: str, body: dict[str, Any]) -> dict[str, Any]:
        """PutRecord: validate the record; store it online (if newer) and buffer it for the offline store."""
        group = self._group(group_name)
        record = body.get("Record")
        if not isinstance(record, list) or not record:
            raise _validation("Record: at least one FeatureValue is required")
        if len(record) > len(group.types):
            raise _validation(f"Record: at most {len(group.types)} features (the group's definitions)")
        values: dict[str, str] = {}
        for item in record:
            name, value = item.get("FeatureName"), item.get("ValueAsString")
            if not isinstance(name, str) or name not in group.types:
                raise _validation(
                    f"feature {name!r} is not defined in feature group {group.name!r} "
                    f"(its features: {sorted(group.types)})"
                )
            if name in values:
                raise _validation(f"feature {name!r} appears more than once in the record")
            if not isinstance(value, str):
                raise _validation(f"feature {name!r}: ValueAsString is required")
            values[name] = value
        for required in (group.record_identifier, group.event_time):
            if required not in values:
                raise _validation(
                    f"the record lacks feature {required!r} (the group's record identifier or event time)"
                )
        event_seconds = event_time_seconds(values[group.event_time], group.types[group.event_time])
        typed = {name: _typed(value, group.types[name], name) for name, value in values.items()}
        targets = body.get("TargetStores") or (
            ["OnlineStore", "OfflineStore"] if group.online else ["OfflineStore"]
        )
        if "OnlineStore" in targets and not group.online:
            raise _validation(f"feature group {group.name!r} has no online store (TargetStores: {targets})")
        now = datetime.now(UTC)
        full = False
        with self._lock:
            self.received[group.name] = self.received.get(group.name, 0) + 1
            identifier = values[group.record_identifier]
            if "OnlineStore" in targets:
                current = group.online_records.get(identifier)
                if current is None or current[0] <= event_seconds:
                    group.online_records[identifier] = (event_seconds, list(record))
            if "OfflineStore" in targets and group.offline_uri is not None:
                group.pending.append(
                    {
                        **{name: typed.get(name) for name in group.types},
                        "write_time": now,
                        "api_invocation_time": now,
                        "is_deleted": False,
                        "__event__": event_seconds,
                    }
                )
                full = len(group.pending) >= self.flush_rows
        if full:
            self._flush_group(group)
        return {}

    def get_record(self, group_name: str, query: dict[str, list[str]]) -> dict[str, Any]:
        """GetRecord from the online store (the requested features, or all)."""
        group = self._group(group_name)
        if not group.online:
            raise _validation(f"feature group {group.name!r} does not have an online store")
        identifier = (query.get("RecordIdentifierValueAsString") or [None])[0]
        if identifier is None:
            raise _validation("RecordIdentifierValueAsString is required")
        wanted = query.get("FeatureName") or []
        unknown = [n for n in wanted if n not in group.types]
        if unknown:
            raise _validation(f"feature(s) {unknown} are not defined in feature group {group.name!r}")
        with self._lock:
            stored = group.online_records.get(identifier)
        if stored is None:
            return {}
        record = [v for v in stored[1] if not wanted or v["FeatureName"] in wanted]
        return {"Record": record}

    def batch_get_record(self, body: dict[str, Any]) -> dict[str, Any]:
        """BatchGetRecord over several groups; unknown identifiers are listed as unprocessed."""
        records: list[dict[str, Any]] = []
        unprocessed: list[dict[str, Any]] = []
        for ident in body.get("Identifiers") or []:
            group_name = str(ident.get("FeatureGroupName", ""))
            names = ident.get("FeatureNames") or []
            found_missing: list[str] = []
            for identifier in ident.get("RecordIdentifiersValueAsString") or []:
                result = self.get_record(
                    group_name,
                    {
                        "RecordIdentifierValueAsString": [identifier],
                        **({"FeatureName": names} if names else {}),
                    },
                )
                if "Record" in result:
                    records.append(
                        {
                            "FeatureGroupName": self._group(group_name).name,
                            "RecordIdentifierValueAsString": identifier,
                            "Record": result["Record"],
                        }
                    )
                else:
                    found_missing.append(identifier)
            if found_missing:
                unprocessed.append({**ident, "RecordIdentifiersValueAsString": found_missing})
        return {"Records": records, "Errors": [], "UnprocessedIdentifiers": unprocessed}

    def delete_record(self, group_name: str, query: dict[str, list[str]]) -> dict[str, Any]:
        """DeleteRecord (soft): removes the online record and writes an ``is_deleted`` offline record."""
        group = self._group(group_name)
        identifier = (query.get("RecordIdentifierValueAsString") or [None])[0]
        event = (query.get("EventTime") or [None])[0]
        if identifier is None or event is None:
            raise _validation("RecordIdentifierValueAsString and EventTime are required")
        seconds = event_time_seconds(event, group.types[group.event_time])
        now = datetime.now(UTC)
        with self._lock:
            group.online_records.pop(identifier, None)
            if group.offline_uri is not None:
                row = dict.fromkeys(group.types)
                row[group.record_identifier] = _typed(
                    identifier, group.types[group.record_identifier], identifier
                )
                row[group.event_time] = _typed(event, group.types[group.event_time], group.event_time)
                group.pending.append(
                    {
                        **row,
                        "write_time": now,
                        "api_invocation_time": now,
                        "is_deleted": True,
                        "__event__": seconds,
                    }
                )
        return {}

    # --- offline store ----------------------------------------------------------------------------

    def flush(self) -> list[str]:
        """Write every group's buffered records to its offline store; return the new objects' URIs."""
        with self._lock:
            groups = list(self._groups.values())
        written: list[str] = []
        for group in groups:
            written += self._flush_group(group)
        return written

    def _flush_group(self, group: GroupState) -> list[str]:
        import pandas as pd

        assert self._emulator is not None
        with self._lock:
            rows, group.pending = group.pending, []
        if not rows or group.offline_uri is None:
            return []
        if group.iceberg:
            from botocore.exceptions import ClientError
            from pyiceberg.exceptions import CommitFailedException

            with group.write_lock:
                try:
                    written = self._append_iceberg(group, rows)
                except (ClientError, OSError, CommitFailedException) as exc:
                    # Replication is asynchronous on AWS: PutRecord still succeeds, and the group's
                    # OfflineStoreStatus turns Blocked with the reason (API_OfflineStoreStatus).
                    with self._lock:
                        group.pending[:0] = rows  # kept for the next flush
                        self._extras.setdefault(group.name.lower(), {})["OfflineStoreStatus"] = {
                            "Status": "Blocked",
                            "BlockedReason": f"the Iceberg append as role {group.role_arn} failed: {exc}",
                        }
                    return []
            with self._lock:
                self._extras.setdefault(group.name.lower(), {})["OfflineStoreStatus"] = {"Status": "Active"}
                self.files_written += written
            return written
        bucket, _, base = group.offline_uri[5:].partition("/")
        s3 = self._emulator.client("s3")
        frame = pd.DataFrame(rows)
        hours = pd.to_datetime(frame["__event__"], unit="s", utc=True).dt.floor("h")
        written: list[str] = []
        for hour, part in frame.groupby(hours, sort=True):
            stamp = pd.Timestamp(cast(Any, hour))
            latest = pd.Timestamp(cast(Any, part["__event__"].max()), unit="s", tz="UTC").strftime(
                "%Y%m%dT%H%M%SZ"
            )
            key = (
                f"{base}/year={stamp:%Y}/month={stamp:%m}/day={stamp:%d}/hour={stamp:%H}/"
                f"{latest}_{secrets.token_hex(8)}.parquet"
            )
            buffer = io.BytesIO()
            part.drop(columns="__event__").to_parquet(buffer, index=False)
            extra = {
                "ServerSideEncryption": "aws:kms",
                **({"SSEKMSKeyId": group.offline_key} if group.offline_key else {}),
            }
            s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue(), **extra)
            written.append(f"s3://{bucket}/{key}")
        with self._lock:
            self.files_written += written
        return written

    def group(self, name: str) -> GroupState:
        """The feature group ``name`` (or ARN) as the runtime sees it; ResourceNotFound, or ValidationError
        for a group that is not ``Created``."""
        return self._group(name)

    def iceberg_table(self, group: GroupState, role_arn: str | None = None) -> Any:
        """``group``'s Iceberg offline table, loaded as ``role_arn`` (root when None)."""
        return self._catalog(role_arn, group.arn).load_table((group.database, group.table_name))

    def _append_iceberg(self, group: GroupState, rows: list[dict[str, Any]]) -> list[str]:
        """One Iceberg append of ``rows`` as the group's role; the data files it added."""
        import pyarrow as pa

        table = self.iceberg_table(group, group.role_arn)
        rows = sorted(rows, key=lambda r: r["__event__"])
        records = pa.Table.from_pylist(rows, schema=table.schema().as_arrow())  # "__event__" left out
        table.append(records)
        snapshot = table.current_snapshot()
        assert snapshot is not None
        return added_data_files(table, snapshot)

    # --- HTTP -------------------------------------------------------------------------------------

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Serve one runtime request (REST-JSON)."""
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = unquote(str(environ.get("PATH_INFO", "")))
        query = parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
            match = _PATH.match(path)
            if path == "/BatchGetRecord" and method == "POST":
                result = self.batch_get_record(body)
            elif match and method == "PUT":
                result = self.put_record(match.group(1), body)
            elif match and method == "GET":
                result = self.get_record(match.group(1), query)
            elif match and method == "DELETE":
                result = self.delete_record(match.group(1), query)
            else:
                raise FeatureStoreRequestError("UnknownOperationException", 404, f"{method} {path}")
            status, payload, headers = "200 OK", json.dumps(result).encode(), []
        except FeatureStoreRequestError as exc:
            reason = {400: "Bad Request", 404: "Not Found"}.get(exc.status, "Error")
            status = f"{exc.status} {reason}"
            payload = json.dumps({"message": exc.message}).encode()
            headers = [("x-amzn-ErrorType", exc.code)]
        except ValueError as exc:
            status, payload = "400 Bad Request", json.dumps({"message": f"malformed request: {exc}"}).encode()
            headers = [("x-amzn-ErrorType", "ValidationError")]
        start_response(
            status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload))), *headers]
        )
        return [payload]


def added_data_files(table: Any, snapshot: Any) -> list[str]:
    """The data files (s3:// URIs) ``snapshot`` of the Iceberg ``table`` added."""
    from pyiceberg.manifest import ManifestEntryStatus

    added: list[str] = []
    for manifest in snapshot.manifests(table.io):
        if manifest.added_snapshot_id != snapshot.snapshot_id:
            continue
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
            if entry.status == ManifestEntryStatus.ADDED and entry.snapshot_id == snapshot.snapshot_id:
                added.append(str(entry.data_file.file_path))
    return added


def feature_store_evidence(emulator: Emulator, group_name: str | None) -> dict[str, Any]:
    """What a feature group received and what its offline store holds (the rehearsal's train stage).

    Flushes the runtime's buffer (AWS replicates to the offline store within minutes), then counts the
    offline rows and files: for an Iceberg group those of its table's current snapshot (files under
    ``data/`` that no snapshot lists are invisible to Athena), else the Parquet under the group's
    ``ResolvedOutputS3Uri``.
    """
    import pandas as pd

    if not group_name:
        return {"group": None}
    runtime = emulator.extension(FeatureStoreRuntime.name)
    assert isinstance(runtime, FeatureStoreRuntime)
    runtime.flush()
    described = emulator.client("sagemaker").describe_feature_group(FeatureGroupName=group_name)
    uri = str(described["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"])
    if described["OfflineStoreConfig"].get("TableFormat") == "Iceberg":
        group = runtime.group(group_name)
        table = runtime.iceberg_table(group)
        tasks = list(table.scan().plan_files()) if table.current_snapshot() is not None else []
        return {
            "group": group_name,
            "records_received": runtime.received.get(described["FeatureGroupName"], 0),
            "offline_rows": sum(int(t.file.record_count) for t in tasks),
            "offline_files": len(tasks),
            "offline_uri": uri,
            "offline_table": f"{group.database}.{group.table_name}",
        }
    bucket, _, prefix = uri[5:].partition("/")
    s3 = emulator.client("s3")
    keys = [
        str(o["Key"])
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
        for o in page.get("Contents", [])
        if str(o["Key"]).endswith(".parquet")
    ]
    rows = sum(
        len(
            pd.read_parquet(
                io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read()), columns=["is_deleted"]
            )
        )
        for k in keys
    )
    return {
        "group": group_name,
        "records_received": runtime.received.get(described["FeatureGroupName"], 0),
        "offline_rows": rows,
        "offline_files": len(keys),
        "offline_uri": uri,
    }
