"""Load and verify a model artifact directory (``model.joblib`` + ``metadata.json``).

The layout is the contract in ``docs/pipeline-contracts.md``: the loader refuses an artifact whose
``schema_version`` it does not know or whose ``model_sha256`` does not match ``model.joblib``, so an
endpoint with a corrupted or tampered model stays unhealthy instead of serving garbage.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pipelines.errors import InputRejectedError

SUPPORTED_SCHEMA_VERSIONS: frozenset[int] = frozenset({1})
"""``metadata.json`` schema versions this code understands."""

METADATA_FILE = "metadata.json"
"""Name of the metadata file at the artifact root."""

FeatureKind = Literal["numeric", "categorical"]


class ArtifactError(InputRejectedError):
    """The model directory is missing a file, has a bad checksum or metadata we do not understand."""


@dataclass(frozen=True)
class FeatureSpec:
    """One model input column, in the order the model expects."""

    name: str
    kind: FeatureKind


@dataclass(frozen=True)
class ClassLayout:
    """What the columns of a classifier's probabilities mean (fixed per model, so computed once)."""

    labels: np.ndarray
    """The class of each column, indexed with the per-row ``argmax`` to give the predicted labels."""
    classes: tuple[Any, ...]
    """The same classes as Python values (the response's ``classes``)."""
    positive_index: int
    """Column of the positive class (the drift "score"); the last column when it is not a class."""

    @classmethod
    def of(cls, classes: Any, positive_class: Any) -> ClassLayout:
        """The layout for ``classes`` (the estimator's ``classes_`` or the metadata's list)."""
        labels = np.asarray(classes)
        values = tuple(labels.tolist())
        positive = values.index(positive_class) if positive_class in values else len(values) - 1
        return cls(labels=labels, classes=values, positive_index=positive)


@dataclass(frozen=True)
class ModelArtifact:
    """A verified, loaded model and the metadata the serving and drift code need."""

    model: Any
    metadata: dict[str, Any]
    features: tuple[FeatureSpec, ...]
    task: str
    classes: tuple[Any, ...]
    positive_class: Any
    model_dir: Path
    fast: Any = None
    """A verified :class:`~pipelines.serving.fastpath.FastModel`, or ``None`` to serve through scikit-learn."""

    @property
    def feature_names(self) -> list[str]:
        """Feature names in model order."""
        return [f.name for f in self.features]

    @property
    def is_classification(self) -> bool:
        """True for a classifier (predictions carry class probabilities)."""
        return self.task != "regression"

    @cached_property
    def class_layout(self) -> ClassLayout | None:
        """The classifier's :class:`ClassLayout` from the estimator's ``classes_`` (else the metadata's
        ``classes``); ``None`` when neither is known (the probabilities' width decides per request)."""
        classes = getattr(self.model, "classes_", None)
        if classes is None:
            classes = self.classes or None
        return None if classes is None else ClassLayout.of(classes, self.positive_class)

    @property
    def positive_index(self) -> int:
        """Column of ``predict_proba`` holding the positive class (the drift "score")."""
        if self.positive_class in self.classes:
            return self.classes.index(self.positive_class)
        return len(self.classes) - 1


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def parse_features(raw: Any, source: str = METADATA_FILE) -> tuple[FeatureSpec, ...]:
    """Validate the ``features`` list of ``metadata.json`` (``[{"name", "kind"}, ...]``)."""
    if not isinstance(raw, list) or not raw:
        raise ArtifactError(f"{source}: 'features' must be a non-empty list of {{name, kind}} objects")
    features: list[FeatureSpec] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ArtifactError(f"{source}: features[{index}] needs a string 'name'")
        kind = item.get("kind")
        if kind not in ("numeric", "categorical"):
            raise ArtifactError(
                f"{source}: features[{index}] ('{item['name']}') has kind {kind!r}; expected 'numeric' or 'categorical'"
            )
        features.append(FeatureSpec(name=item["name"], kind=kind))
    names = [f.name for f in features]
    if len(set(names)) != len(names):
        raise ArtifactError(f"{source}: duplicate feature names in 'features'")
    return tuple(features)


def read_metadata(model_dir: Path) -> dict[str, Any]:
    """Read and minimally validate ``metadata.json`` from a model directory."""
    path = model_dir / METADATA_FILE
    if not path.is_file():
        raise ArtifactError(
            f"{path} not found: the model directory must hold {METADATA_FILE} next to the model file"
        )
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArtifactError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(metadata, dict):
        raise ArtifactError(f"{path} must hold a JSON object")
    version = metadata.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise ArtifactError(
            f"{path}: schema_version {version!r} is not supported (this server knows {sorted(SUPPORTED_SCHEMA_VERSIONS)})"
        )
    return metadata


def load_artifact(model_dir: str | Path) -> ModelArtifact:
    """Verify the checksum and metadata of a model directory, then load the model with joblib.

    Raises:
        ArtifactError: with a message naming the file and the problem.
    """
    directory = Path(model_dir)
    metadata = read_metadata(directory)
    features = parse_features(metadata.get("features"))
    model_file = metadata.get("model_file", "model.joblib")
    if not isinstance(model_file, str) or Path(model_file).name != model_file:
        raise ArtifactError(
            f"{METADATA_FILE}: model_file {model_file!r} must be a plain file name in the model directory"
        )
    model_path = directory / model_file
    if not model_path.is_file():
        raise ArtifactError(f"{model_path} not found (named by {METADATA_FILE} 'model_file')")
    expected = metadata.get("model_sha256")
    if not isinstance(expected, str) or len(expected) != 64:
        raise ArtifactError(
            f"{METADATA_FILE}: 'model_sha256' must be the 64-character hex SHA-256 of {model_file}"
        )
    actual = sha256_file(model_path)
    if actual != expected.lower():
        raise ArtifactError(
            f"{model_path}: SHA-256 {actual} does not match metadata model_sha256 {expected}; refusing to load "
            "a model that is not the one that was registered"
        )
    import joblib  # heavy; only after the checksum proved the file is the registered one

    try:
        model = joblib.load(model_path)
    except Exception as error:
        raise ArtifactError(f"{model_path}: joblib could not load the model: {error}") from error
    task = str(metadata.get("task", "binary_classification"))
    if not hasattr(model, "predict"):
        raise ArtifactError(f"{model_path}: loaded object {type(model).__name__} has no predict()")
    if task != "regression" and not hasattr(model, "predict_proba"):
        raise ArtifactError(f"{model_path}: task {task!r} needs a model with predict_proba()")
    classes_raw = metadata.get("classes")
    if classes_raw is None and hasattr(model, "classes_"):
        classes_raw = list(model.classes_)
    classes = tuple(classes_raw or ())
    return ModelArtifact(
        model=model,
        metadata=metadata,
        features=features,
        task=task,
        classes=classes,
        positive_class=metadata.get("positive_class"),
        model_dir=directory,
    )
