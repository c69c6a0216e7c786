"""Versioned datasets (moto): manifests written, versions immutable, reproduction from a manifest."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipelines.contract import DatasetContract
from pipelines.datasets import (
    CONTENT_SHA256_METADATA,
    MANIFEST_FILE,
    DatasetVersionConflictError,
    DatasetVersionExistsError,
    ManifestMismatchError,
    content_sha256,
    publish_dataset,
    read_manifest,
    version_of,
)
from pipelines.evaluate import evaluate_model
from pipelines.register import register_model
from pipelines.reproduce import NotReproducibleError, reproduce_package
from pipelines.train import run_training_locally
from tests.unit.pipelines.conftest import Platform, all_keys
from tests.unit.pipelines.helpers import contract_path, prepare_features


def test_feature_step_publishes_a_content_addressed_version_with_its_manifest(
    platform: Platform, churn_contract: DatasetContract
) -> None:
    result = prepare_features(platform, churn_contract)
    manifest = result.manifest
    assert manifest is not None
    bucket = platform.settings.require("features_bucket")
    part = platform.s3.get_object(Bucket=bucket, Key=result.keys[0])["Body"].read()
    sha = content_sha256([("part-00000.parquet", part)])
    assert manifest["content_sha256"] == sha
    assert manifest["version"] == version_of(sha)
    assert manifest["uri"] == f"s3://{bucket}/features/churn/versions/{version_of(sha)}/"
    assert manifest["row_count"] == result.rows == sum(manifest["splits"].values())
    assert set(manifest["splits"]) == {"train", "validation", "test"}
    assert manifest["contract"] == "churn"
    assert len(manifest["contract_sha256"]) == 64
    assert manifest["producing_run"]
    (parent,) = manifest["parents"]
    assert parent["kind"] == "curated"
    assert parent["uri"].startswith(f"s3://{platform.settings.curated_bucket}/")
    # the working prefix's lineage is the same document as the version's manifest
    lineage = json.loads(
        platform.s3.get_object(Bucket=bucket, Key="features/churn/ingest_date=2026-11-24/_lineage.json")[
            "Body"
        ].read()
    )
    version = read_manifest(platform.s3, manifest["manifest_uri"])
    assert lineage == manifest == {**version, "split_manifests": manifest["split_manifests"]}
    # and the version's objects are encrypted with the lake key
    for key in all_keys(platform.s3, bucket):
        assert (
            platform.s3.head_object(Bucket=bucket, Key=key)["SSEKMSKeyId"]
            == platform.settings.data_lake_key_arn
        )


def test_a_second_write_to_a_version_is_refused(platform: Platform, churn_contract: DatasetContract) -> None:
    bucket = platform.settings.require("features_bucket")
    args = {
        "kind": "features",
        "dataset": "churn",
        "files": [("part-00000.parquet", b"rows")],
        "key_arn": platform.settings.data_lake_key_arn,
        "contract": churn_contract,
        "parents": [],
        "row_count": 1,
    }
    first = publish_dataset(platform.s3, bucket, run="run-1", **args)  # pyright: ignore[reportArgumentType]
    # S3 itself refuses the overwrite (conditional write), whoever tries it
    with pytest.raises(ClientError) as refused:
        platform.s3.put_object(
            Bucket=bucket,
            Key=first["uri"][len(f"s3://{bucket}/") :] + "part-00000.parquet",
            Body=b"other rows",
            IfNoneMatch="*",
        )
    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
    with pytest.raises(DatasetVersionExistsError, match="immutable"):
        publish_dataset(platform.s3, bucket, run="run-2", exist_ok=False, **args)  # pyright: ignore[reportArgumentType]
    again = publish_dataset(platform.s3, bucket, run="run-2", **args)  # pyright: ignore[reportArgumentType]
    assert again == first
    assert again["producing_run"] == "run-1"
    key = first["uri"][len(f"s3://{bucket}/") :] + "part-00000.parquet"
    assert platform.s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"rows"


def _publish_args(platform: Platform, contract: DatasetContract, data: bytes = b"rows") -> dict[str, Any]:
    return {
        "kind": "features",
        "dataset": "churn",
        "files": [("part-00000.parquet", data), ("part-00001.parquet", data + b"!")],
        "key_arn": platform.settings.data_lake_key_arn,
        "contract": contract,
        "parents": [],
        "row_count": 2,
    }


def _count_calls(s3: Any) -> dict[str, list[str]]:
    calls: dict[str, list[str]] = {}

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.setdefault(model.name, []).append(str(params.get("Key")))

    s3.meta.events.register("provide-client-params.s3.*", record)
    return calls


def test_republishing_a_version_sends_no_data_puts(
    platform: Platform, churn_contract: DatasetContract
) -> None:
    bucket = platform.settings.require("features_bucket")
    args = _publish_args(platform, churn_contract)
    first = publish_dataset(platform.s3, bucket, run="run-1", **args)
    manifest_key = first["manifest_uri"][len(f"s3://{bucket}/") :]
    head = platform.s3.head_object(Bucket=bucket, Key=manifest_key)
    assert head["Metadata"] == {CONTENT_SHA256_METADATA: first["content_sha256"]}
    calls = _count_calls(platform.s3)
    again = publish_dataset(platform.s3, bucket, run="run-2", **args)
    assert again == first
    assert again["producing_run"] == "run-1"
    assert calls == {"HeadObject": [manifest_key], "GetObject": [manifest_key]}  # no PutObject at all
    calls.clear()
    with pytest.raises(DatasetVersionExistsError, match="immutable"):
        publish_dataset(platform.s3, bucket, run="run-3", exist_ok=False, **args)
    assert "PutObject" not in calls


def test_a_manifest_with_another_content_hash_is_a_conflict_naming_the_key(
    platform: Platform, churn_contract: DatasetContract
) -> None:
    bucket = platform.settings.require("features_bucket")
    args = _publish_args(platform, churn_contract)
    sha = content_sha256(args["files"])
    prefix = f"features/churn/versions/{version_of(sha)}/"
    other = {"content_sha256": "f" * 64, "uri": f"s3://{bucket}/{prefix}"}
    for metadata in ({CONTENT_SHA256_METADATA: "f" * 64}, {}):  # a HEAD answers, or (older) the manifest does
        platform.s3.put_object(
            Bucket=bucket, Key=prefix + MANIFEST_FILE, Body=json.dumps(other).encode(), Metadata=metadata
        )
        calls = _count_calls(platform.s3)
        with pytest.raises(DatasetVersionConflictError) as conflict:
            publish_dataset(platform.s3, bucket, run="run-1", **args)
        assert f"s3://{bucket}/{prefix}{MANIFEST_FILE}" in str(conflict.value)
        assert sha in str(conflict.value)
        assert "f" * 64 in str(conflict.value)
        assert "PutObject" not in calls
        platform.s3.meta.events.unregister("provide-client-params.s3.*")
    assert not [k for k in all_keys(platform.s3, bucket) if k.startswith(prefix) and k.endswith(".parquet")]


class _LateHead:
    """An S3 client whose first HeadObject answers 404: another publisher wrote between our look and our
    PUTs, so the conditional PUTs meet 412."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3
        self.looked = False

    def head_object(self, **kwargs: Any) -> Any:
        if not self.looked:
            self.looked = True
            raise ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadObject")
        return self._s3.head_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)


def test_a_lost_race_is_already_there_or_a_conflict(
    platform: Platform, churn_contract: DatasetContract
) -> None:
    bucket = platform.settings.require("features_bucket")
    args = _publish_args(platform, churn_contract)
    first = publish_dataset(platform.s3, bucket, run="run-1", **args)
    calls = _count_calls(platform.s3)
    racing = _LateHead(platform.s3)
    assert publish_dataset(racing, bucket, run="run-2", **args) == first
    # each conditional PUT was sent and refused with 412 (handled as "already there"), nothing changed
    assert len(calls["PutObject"]) == 3
    assert platform.s3.get_object(Bucket=bucket, Key=calls["PutObject"][0])["Body"].read() == b"rows"
    # the winner's manifest records other content: a conflict, not a silent success
    manifest_key = first["manifest_uri"][len(f"s3://{bucket}/") :]
    platform.s3.put_object(
        Bucket=bucket, Key=manifest_key, Body=b"{}", Metadata={CONTENT_SHA256_METADATA: "0" * 64}
    )
    with pytest.raises(DatasetVersionConflictError, match=manifest_key):
        publish_dataset(_LateHead(platform.s3), bucket, run="run-3", **args)


def test_a_manifest_must_exist(platform: Platform) -> None:
    with pytest.raises(ManifestMismatchError, match="no dataset manifest"):
        read_manifest(platform.s3, f"s3://{platform.settings.features_bucket}/features/churn/versions/0/")


def _registered(platform: Platform, contract: DatasetContract) -> tuple[str, dict[str, object]]:
    features = prepare_features(platform, contract)
    model_uri = run_training_locally(platform.clients, contract_path(contract), "run-1", features.uri)
    assert evaluate_model(platform.clients, model_uri, features.uri).passed
    registration = register_model(platform.clients, model_uri)
    assert features.manifest is not None
    return registration.model_package_arn, features.manifest


def test_reproduction_from_the_manifest_gives_the_same_metrics_and_model(
    platform: Platform, churn_contract: DatasetContract
) -> None:
    arn, manifest = _registered(platform, churn_contract)
    package = platform.clients.sagemaker.describe_model_package(ModelPackageName=arn)
    metadata = package["CustomerMetadataProperties"]
    assert metadata["dataset_manifest"] == manifest["manifest_uri"]
    splits: dict[str, Any] = manifest["split_manifests"]  # pyright: ignore[reportAssignmentType]
    for split in ("train", "validation", "test"):
        assert metadata[f"dataset_manifest_{split}"] == splits[split]["manifest_uri"]
    # mlops lineage walks them: feature set, its splits, curated table, validated batch, raw upload
    from pipelines.provenance import package_lineage

    chain = package_lineage(platform.clients, arn)["datasets"]
    assert [e["kind"] for e in chain] == ["features"] * 4 + ["curated", "curated", "raw"]
    assert [e.get("dataset") for e in chain[4:6]] == ["churn", "churn/validated"]
    # the working features change afterwards (a later run overwrites them): reproduction does not care
    platform.s3.delete_object(
        Bucket=platform.settings.features_bucket,
        Key="features/churn/ingest_date=2026-11-24/part-00000.parquet",
    )
    result = reproduce_package(platform.clients, arn)
    assert result.matches, result.mismatches
    assert result.hash_compared
    assert result.reproduced_model_sha256 == result.registered_model_sha256
    assert set(result.registered_metrics) >= {"auc"}
    assert result.registered_metrics == result.reproduced_metrics
    assert result.verdict().startswith("REPRODUCED")


def test_tampered_version_data_is_not_reproducible(
    platform: Platform, churn_contract: DatasetContract
) -> None:
    arn, manifest = _registered(platform, churn_contract)
    bucket = platform.settings.require("features_bucket")
    key = manifest["uri"][len(f"s3://{bucket}/") :] + "part-00000.parquet"  # pyright: ignore[reportIndexIssue, reportOperatorIssue]
    platform.s3.put_object(Bucket=bucket, Key=key, Body=b"not the rows")  # an unconditional overwrite
    with pytest.raises(NotReproducibleError, match="does not match its manifest"):
        reproduce_package(platform.clients, arn)
    assert MANIFEST_FILE == "_lineage.json"


def test_a_different_metric_or_hash_is_a_mismatch() -> None:
    from types import SimpleNamespace
    from typing import Any, cast

    from pipelines.reproduce import Reproduction, compare

    libs = {"scikit-learn": "1"}
    registered = cast(Any, SimpleNamespace(metadata={"model_sha256": "a" * 64, "library_versions": libs}))
    same = cast(Any, SimpleNamespace(metadata={"model_sha256": "a" * 64, "library_versions": libs}))
    other = cast(Any, SimpleNamespace(metadata={"model_sha256": "b" * 64, "library_versions": libs}))
    assert compare(registered, same, {"auc": 0.8, "ece": None}, {"auc": 0.8, "ece": float("nan")}) == (
        True,
        [],
    )
    assert compare(registered, other, {"auc": 0.8}, {"auc": 0.8}, same_predictions=True) == (True, [])
    compared, mismatches = compare(registered, other, {"auc": 0.8}, {"auc": 0.79}, same_predictions=False)
    assert compared
    assert [m.split(":")[0] for m in mismatches] == ["auc", "model.joblib sha256"]
    result = Reproduction("arn", "s3://b/m", "v", {"auc": 0.8}, {"auc": 0.79}, "a", "b", True, mismatches)
    assert not result.matches
    assert result.verdict().startswith("NOT REPRODUCED: auc: registered 0.8, reproduced 0.79")


def test_every_dataset_has_a_manifest_and_the_parents_chain_to_the_raw_upload(
    platform: Platform, churn_contract: DatasetContract
) -> None:
    import io

    import pandas as pd

    result = prepare_features(platform, churn_contract)
    features = result.manifest
    assert features is not None
    s3 = platform.s3
    splits = features["split_manifests"]
    assert set(splits) == {"train", "validation", "test"}
    table = read_manifest(s3, features["parents"][0]["manifest_uri"])
    assert table["kind"] == "curated"
    assert table["dataset"] == "churn"
    assert (
        table["uri"] == f"s3://{platform.settings.curated_bucket}/curated/churn/versions/{table['version']}/"
    )
    # the curated table's content hash is the validated data's (registration keys models on it)
    assert table["content_sha256"] == features["validated_data_sha256"]
    (validated_ref,) = table["parents"]
    validated = read_manifest(s3, validated_ref["manifest_uri"])
    assert validated["dataset"] == "churn/validated"
    assert validated["validation_report"].endswith("/validation.json")
    (raw,) = validated["parents"]
    assert raw["kind"] == "raw"
    assert raw["uri"].startswith(f"s3://{platform.settings.raw_bucket}/raw/churn/")
    raw_bytes = s3.get_object(Bucket=platform.settings.raw_bucket, Key=raw["uri"].split("/", 3)[3])[
        "Body"
    ].read()
    assert content_sha256([("x", raw_bytes)]) == raw["sha256"]
    total = 0
    for name, ref in splits.items():
        split = read_manifest(s3, ref["manifest_uri"])
        assert split["dataset"] == f"churn/splits/{name}"
        assert split["split"] == name
        assert [p["manifest_uri"] for p in split["parents"]] == [features["manifest_uri"]]
        assert split["row_count"] == features["splits"][name]
        bucket, key = split["uri"][len("s3://") :].split("/", 1)
        frame = pd.read_parquet(
            io.BytesIO(s3.get_object(Bucket=bucket, Key=key + "part-00000.parquet")["Body"].read())
        )
        assert set(frame["__split__"]) == {name}
        total += len(frame)
    assert total == features["row_count"] == validated["row_count"] == table["row_count"]
    for manifest in (
        validated,
        table,
        features,
        *[read_manifest(s3, r["manifest_uri"]) for r in splits.values()],
    ):
        assert manifest["contract"] == "churn"
        assert manifest["contract_version"] == churn_contract.version
        assert manifest["producing_run"]
        assert len(manifest["content_sha256"]) == 64
