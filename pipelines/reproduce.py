"""Reproduce a registered model from its dataset manifest and check it matches (``mlops reproduce``).

The model package's ``model.tar.gz`` carries the training data's manifest (``data_lineage`` in
``metadata.json``; also ``dataset_manifest`` in the package's metadata), its contract and its
hyperparameters. Reproduction downloads the immutable feature version the manifest names (checking
every file's hash), re-runs the same training entry point on it (here, or as a training job), and
compares the new model with the registered one: the evaluation metrics on the version's ``test``
split against the package's ``evaluation.json``, and, when the libraries are the registered model's,
the artifact: ``model.joblib`` byte-identical (training is deterministic: fixed seeds, sorted rows,
a canonical pickle, ``pipelines.train.dump_model``), or else bit-identical scores on the test split
with the checked reason the bytes differ (:func:`bytes_reason`).
"""

from __future__ import annotations

import io
import json
import math
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pipelines.errors import InputRejectedError, PipelineError

if TYPE_CHECKING:
    from pipelines.aws import AwsClients
    from pipelines.evaluate import LoadedModel

Where = Literal["local", "training-job"]
METRIC_TOLERANCE = 1e-9
"""Largest absolute difference between a registered and a reproduced metric that still matches."""


class NotReproducibleError(InputRejectedError):
    """The package cannot be reproduced: it names no dataset manifest, or its data does not match it."""


class ReproductionMismatchError(PipelineError):
    """The reproduced model differs from the registered one (metrics or artifact hash)."""


@dataclass
class Reproduction:
    """The outcome of reproducing a model package."""

    package_arn: str
    manifest_uri: str
    dataset_version: str
    registered_metrics: dict[str, float | None]
    reproduced_metrics: dict[str, float | None]
    registered_model_sha256: str
    reproduced_model_sha256: str
    hash_compared: bool
    """False when the libraries differ from the registered model's (the hash cannot be expected equal)."""
    mismatches: list[str] = field(default_factory=list)
    bytes_reason: str | None = None
    """Why ``model.joblib`` differs, as checked by :func:`bytes_reason` (None: byte-identical)."""
    prediction_rows: int = 0
    """Rows of the version's test split both models scored."""
    same_predictions: bool = True
    """Both models' scores are bit-identical on those rows."""

    @property
    def matches(self) -> bool:
        """True when every metric (and the hash, when compared) matches."""
        return not self.mismatches

    def verdict(self) -> str:
        """One line: REPRODUCED or NOT REPRODUCED, with what differed."""
        if self.matches:
            if not self.hash_compared:
                hashed = "artifact not compared (libraries differ)"
            elif self.registered_model_sha256 == self.reproduced_model_sha256:
                hashed = (
                    f"model.joblib byte-identical (artifact sha256 {self.reproduced_model_sha256[:12]} equal)"
                )
            else:
                hashed = (
                    f"model.joblib bytes differ ({self.bytes_reason}), predictions bit-identical on the "
                    f"{self.prediction_rows} rows of the test split"
                )
            return f"REPRODUCED: {len(self.registered_metrics)} metrics equal, {hashed}"
        return "NOT REPRODUCED: " + "; ".join(self.mismatches)


def _archive_member(archive: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        member = tar.extractfile(name)
        if member is None:
            raise NotReproducibleError(f"the model archive has no {name}")
        return member.read()


def _undefined(value: float | None) -> bool:
    return value is None or math.isnan(float(value))


def _metrics_equal(a: float | None, b: float | None) -> bool:
    if _undefined(a) or _undefined(b):
        return _undefined(a) and _undefined(b)  # an undefined metric (null in evaluation.json) stays so
    return abs(float(a) - float(b)) <= METRIC_TOLERANCE  # type: ignore[arg-type]


def compare(
    registered: LoadedModel,
    reproduced: LoadedModel,
    registered_metrics: dict[str, float | None],
    reproduced_metrics: dict[str, float | None],
    same_predictions: bool = True,
) -> tuple[bool, list[str]]:
    """What differs between the two models: the metrics, and, when the libraries are the registered
    model's, the artifact: a byte-identical ``model.joblib``, or else bit-identical predictions on
    every row of the version (pickles of equal models can differ between processes)."""
    mismatches = [
        f"{name}: registered {registered_metrics[name]!r}, reproduced {reproduced_metrics.get(name)!r}"
        for name in sorted(registered_metrics)
        if not _metrics_equal(registered_metrics[name], reproduced_metrics.get(name))
    ]
    same_libraries = registered.metadata.get("library_versions") == reproduced.metadata.get(
        "library_versions"
    )
    same_bytes = registered.metadata["model_sha256"] == reproduced.metadata["model_sha256"]
    if same_libraries and not same_bytes and not same_predictions:
        mismatches.append(
            f"model.joblib sha256: registered {registered.metadata['model_sha256'][:12]}..., "
            f"reproduced {reproduced.metadata['model_sha256'][:12]}..., and their predictions differ"
        )
    return same_libraries, mismatches


def bytes_reason(registered: LoadedModel, reproduced: LoadedModel) -> str | None:
    """Why the two ``model.joblib`` differ, checked rather than assumed; None when byte-identical.

    Equal libraries and the canonical pickle (``pipelines.train.dump_model``) give equal bytes for an
    equal model in any process, and a loaded model re-pickles canonically to its own canonical bytes;
    so the registered model is re-pickled canonically: if that gives the reproduced bytes, only the
    registered pickle's writing differed (pickled before canonical pickling), not the model.
    """
    import hashlib

    from pipelines.train import dump_model

    if registered.metadata["model_sha256"] == reproduced.metadata["model_sha256"]:
        return None
    ours, theirs = (
        registered.metadata.get("library_versions") or {},
        reproduced.metadata.get("library_versions") or {},
    )
    if ours != theirs:
        changed = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
        return "library versions differ: " + ", ".join(
            f"{k} {ours.get(k)} -> {theirs.get(k)}" for k in changed
        )
    buffer = io.BytesIO()
    dump_model(registered.model, buffer)
    if hashlib.sha256(buffer.getvalue()).hexdigest() == reproduced.metadata["model_sha256"]:
        return (
            "the registered model.joblib was pickled before canonical pickling (equal values shared by "
            "identity, or a pickler another library had changed); re-pickled canonically it is "
            "byte-identical to the reproduced one"
        )
    paths = state_differences(registered.model, reproduced.model)
    if not paths:
        return "the pickles differ though every attribute pickles alike (object sharing between attributes)"
    return f"{len(paths)} fitted attribute(s) pickle differently: " + ", ".join(paths[:4])


def state_differences(first: Any, second: Any, path: str = "model", limit: int = 8) -> list[str]:
    """Paths of the leaves where two fitted models' states pickle to different bytes (estimator
    attributes, list/tuple items and dict entries are walked; each leaf is pickled on its own)."""
    import pickle

    from sklearn.base import BaseEstimator

    found: list[str] = []

    def walk(a: Any, b: Any, where: str) -> None:
        if len(found) >= limit:
            return
        if isinstance(a, BaseEstimator) and type(a) is type(b):
            names = sorted(set(vars(a)) | set(vars(b)))
            for name in names:
                walk(vars(a).get(name), vars(b).get(name), f"{where}.{name}")
            return
        if isinstance(a, list | tuple) and type(a) is type(b) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(x, y, f"{where}[{i}]")
            return
        if isinstance(a, dict) and isinstance(b, dict) and list(a) == list(b):
            for key in a:
                walk(a[key], b[key], f"{where}[{key!r}]")
            return
        try:
            same = pickle.dumps(a, protocol=4) == pickle.dumps(b, protocol=4)
        except Exception:  # an unpicklable leaf cannot be told apart here
            same = True
        if not same:
            found.append(where)

    walk(first, second, path)
    return found


def _train(
    clients: AwsClients,
    where: Where,
    contract_path: Path,
    manifest: dict[str, Any],
    root: Path,
    metadata: dict[str, Any],
) -> bytes:
    """Run the training entry point on the version; return the new ``model.tar.gz`` bytes."""
    from pipelines.aws import split_s3_uri
    from pipelines.train import package_model, start_training_job, train

    run_id = f"reproduce-{str(metadata['run_id'])[:40]}-{manifest['version'][:8]}"
    hyperparameters = dict(metadata.get("hyperparameters") or {})
    if where == "training-job":
        model_uri = start_training_job(
            clients, contract_path, run_id[:63], str(manifest["uri"]), hyperparameters, poll_s=2
        )
        bucket, key = split_s3_uri(model_uri)
        return clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    result = train(
        contract_path,
        root / "train",
        root / "model",
        hyperparameters=hyperparameters,
        run_id=run_id,
        code_version=str(metadata.get("code_version")),
    )
    return package_model(result.model_dir)


def reproduce_package(
    clients: AwsClients, package_arn: str, where: Where = "local", workdir: Path | None = None
) -> Reproduction:
    """Re-train ``package_arn``'s model from its dataset manifest and compare; see the module docstring.

    Raises:
        NotReproducibleError: the package names no manifest, or the version's data is not what the
            model was trained on.
    """
    import numpy as np

    from pipelines.aws import split_s3_uri
    from pipelines.datasets import ManifestMismatchError, fetch_dataset, read_manifest
    from pipelines.evaluate import load_model_archive, model_metrics
    from pipelines.train import model_inputs, read_channel, split_rows

    s3 = clients.s3
    package = clients.sagemaker.describe_model_package(ModelPackageName=package_arn)
    model_uri = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    bucket, key = split_s3_uri(model_uri)
    archive = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    registered = load_model_archive(archive)
    metadata = registered.metadata
    manifest_uri = (metadata.get("data_lineage") or {}).get("manifest_uri") or package.get(
        "CustomerMetadataProperties", {}
    ).get("dataset_manifest")
    if not manifest_uri or manifest_uri == "none":
        raise NotReproducibleError(
            f"{package_arn} names no dataset manifest (trained before versioned datasets, or on "
            "features without lineage): re-run the feature step and train again to make it reproducible"
        )
    try:
        manifest = read_manifest(s3, manifest_uri)
    except ManifestMismatchError as exc:
        raise NotReproducibleError(str(exc)) from exc
    if manifest["content_sha256"] != metadata.get("training_data_sha256"):
        raise NotReproducibleError(
            f"{manifest_uri} describes data {manifest['content_sha256'][:12]}..., but the model was trained "
            f"on {str(metadata.get('training_data_sha256'))[:12]}...: the package's manifest is not its data"
        )
    quality = package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri")
    if not quality:
        raise NotReproducibleError(f"{package_arn} has no ModelMetrics.ModelQuality report to compare with")
    eval_bucket, eval_key = split_s3_uri(quality)
    evaluation = json.loads(s3.get_object(Bucket=eval_bucket, Key=eval_key)["Body"].read())
    registered_metrics: dict[str, float | None] = dict(evaluation["metrics"])

    with tempfile.TemporaryDirectory(prefix="mlops-reproduce-", dir=workdir) as tmp:
        root = Path(tmp)
        try:
            fetch_dataset(s3, manifest, root / "train")
        except ManifestMismatchError as exc:
            raise NotReproducibleError(str(exc)) from exc
        contract_path = root / "contract.yaml"
        contract_path.write_bytes(_archive_member(archive, "contract.yaml"))
        reproduced = load_model_archive(_train(clients, where, contract_path, manifest, root, metadata))
        frame = read_channel(root / "train")
        reproduced_metrics: dict[str, float | None] = dict(
            model_metrics(reproduced, split_rows(frame, "test"))
        )
        # the artifact check when the bytes differ: the same scores on every row of the test split
        inputs = model_inputs(split_rows(frame, "test"), registered.contract)
        same_predictions = bool(np.array_equal(registered.scores(inputs), reproduced.scores(inputs)))
    hash_compared, mismatches = compare(
        registered, reproduced, registered_metrics, reproduced_metrics, same_predictions
    )
    reason = bytes_reason(registered, reproduced) if hash_compared else None
    return Reproduction(
        package_arn=package_arn,
        manifest_uri=str(manifest["manifest_uri"]),
        dataset_version=str(manifest["version"]),
        registered_metrics=registered_metrics,
        reproduced_metrics=reproduced_metrics,
        registered_model_sha256=str(metadata["model_sha256"]),
        reproduced_model_sha256=str(reproduced.metadata["model_sha256"]),
        hash_compared=hash_compared,
        mismatches=mismatches,
        bytes_reason=reason,
        prediction_rows=len(inputs),
        same_predictions=same_predictions,
    )
