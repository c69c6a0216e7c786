"""Write-once dataset versions by bucket policy (synth), canonical model pickles, the reproduce verdict."""

from __future__ import annotations

import fnmatch
import hashlib
import io
from typing import Any

import joblib
import pytest

from pipelines.datasets import split_dataset, validated_dataset, version_prefix
from stacks.synth import SynthResult
from tests.unit.components._helpers import buckets_by_role, for_bucket, policy, statements


def _write_once(result: SynthResult) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for role, bucket in buckets_by_role(result).items():
        stmts = statements(policy(for_bucket(result, "aws:s3/bucketPolicy:BucketPolicy", bucket)))
        for statement in stmts:
            if statement.get("Sid") == "DenyOverwritableDatasetWrites":
                found[role] = {**statement, "arn": bucket.outputs["arn"]}
    return found


def test_the_lake_policy_denies_puts_without_if_none_match_on_version_prefixes_only(
    each_stack: SynthResult,
) -> None:
    found = _write_once(each_stack)
    assert set(found) == {"curated", "features"}
    for role, statement in found.items():
        assert statement["Effect"] == "Deny"
        assert statement["Principal"] == "*"
        assert statement["Action"] == "s3:PutObject"
        # AWS's documented form (conditional-writes-enforce.html), multipart steps exempt
        assert statement["Condition"] == {
            "Null": {"s3:if-none-match": "true"},
            "Bool": {"s3:ObjectCreationOperation": "true"},
        }
        arn = statement["arn"]
        patterns = [r[len(arn) + 1 :] for r in statement["Resource"]]
        assert all(r.startswith(f"{arn}/") for r in statement["Resource"])
        kinds = {"curated": ["curated"], "features": ["features"]}[role]
        protected = {
            "curated": [
                version_prefix("curated", validated_dataset("churn"), "v1") + "data.parquet",
                version_prefix("curated", "churn", "v1") + "part-00000.parquet",
            ],
            "features": [
                version_prefix("features", "churn", "v1") + "_lineage.json",
                version_prefix("features", split_dataset("churn", "test"), "v1") + "part-00000.parquet",
            ],
        }[role]
        # what pipelines.datasets writes is covered; what Spark (S3A) and the validate step rewrite is not
        writable = [
            f"{kinds[0]}/churn/ingest_date=2026-11-24/part-00000-uuid.parquet",
            f"{kinds[0]}/churn/ingest_date=2026-11-24/_lineage.json",
            "feature-store/churn/data/x.parquet",
            "predictions/churn/run/part-0.parquet",
        ]
        for key in protected:
            assert any(fnmatch.fnmatchcase(key, p) for p in patterns), key
        for key in writable:
            assert not any(fnmatch.fnmatchcase(key, p) for p in patterns), key


def _fitted() -> Any:
    from pipelines.contract import load_contract, resolve_contract_path
    from pipelines.features.local import build_features_pandas, feature_spec
    from pipelines.synthetic import generate
    from pipelines.train import build_pipeline, model_inputs, target_values
    from pipelines.validate import check_batch

    contract = load_contract(resolve_contract_path("churn"))
    _, curated = check_batch(generate("churn", 300, 3).to_csv(index=False).encode(), "c.csv", contract, "x")
    assert curated is not None
    frame = build_features_pandas(curated, feature_spec(contract))
    model = build_pipeline(contract, contract.training.hyperparameters)
    model.fit(model_inputs(frame, contract), target_values(frame, contract))
    return model


def _bytes(model: Any) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def _unshare(model: Any) -> Any:
    """The same model with its state dict keys and string values as fresh, non-interned copies (what a
    process that did other work first may hold)."""
    from sklearn.base import BaseEstimator

    def fresh(text: str) -> str:
        return "".join(list(text))  # a new str object (not interned) of the same value

    def walk(value: Any) -> Any:
        if isinstance(value, BaseEstimator):
            state = vars(value)
            items = [(fresh(k), walk(v)) for k, v in state.items()]
            state.clear()
            state.update(items)
            return value
        if isinstance(value, str) and len(value) > 1:
            return fresh(value)
        if isinstance(value, list):
            value[:] = [walk(v) for v in value]
        if isinstance(value, tuple):
            return tuple(walk(v) for v in value)
        return value

    return walk(model)


def _canonical(model: Any) -> bytes:
    from pipelines.train import dump_model

    buffer = io.BytesIO()
    dump_model(model, buffer)
    return buffer.getvalue()


def test_equal_models_pickle_to_equal_bytes_whatever_their_string_sharing() -> None:
    model = _fitted()
    canonical = _canonical(model)
    unshared = _unshare(_fitted())
    assert _bytes(unshared) != _bytes(model)  # the nondeterminism: same model, other bytes
    assert _canonical(unshared) == canonical


def test_the_verdict_names_the_checked_reason_bytes_differ() -> None:
    from pipelines.reproduce import Reproduction, bytes_reason
    from pipelines.train import library_versions

    class Loaded:
        def __init__(self, model: Any, data: bytes, libraries: dict[str, str]) -> None:
            self.model = model
            self.metadata = {"model_sha256": hashlib.sha256(data).hexdigest(), "library_versions": libraries}

    libraries = library_versions()
    model = _fitted()
    canonical = _canonical(model)
    reproduced: Any = Loaded(model, canonical, libraries)
    assert bytes_reason(Loaded(model, canonical, libraries), reproduced) is None  # type: ignore[arg-type]
    old = _unshare(_fitted())
    reason = bytes_reason(Loaded(old, _bytes(old), libraries), reproduced)  # type: ignore[arg-type]
    assert reason is not None
    assert "pickled before canonical pickling" in reason
    other = {**libraries, "scikit-learn": "0.0"}
    reason = bytes_reason(Loaded(model, b"other", other), reproduced)  # type: ignore[arg-type]
    assert reason is not None
    assert reason.startswith("library versions differ: scikit-learn 0.0 ->")
    result = Reproduction(
        "arn", "s3://m", "v", {"auc": 0.8}, {"auc": 0.8}, "a" * 64, "b" * 64, True, [], "why", 120, True
    )
    assert result.verdict() == (
        "REPRODUCED: 1 metrics equal, model.joblib bytes differ (why), predictions bit-identical on the "
        "120 rows of the test split"
    )


@pytest.mark.parametrize("text", ["drop", "dtype"])
def test_fresh_copies_are_other_objects(text: str) -> None:
    assert "".join(list(text)) is not text
