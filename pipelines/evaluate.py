"""Evaluate a trained model on held-out rows: metrics, drift baselines, behavioural checks, the gate.

Writes ``evaluation.json``, ``baseline.json`` and ``baseline_sample.parquet`` under
``models/<model_name>/<run_id>/evaluation/`` in the artifacts bucket, all or nothing.
"""

from __future__ import annotations

import io
import json
import math
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pipelines.contract import DatasetContract, parse_contract
from pipelines.errors import InputRejectedError, PipelineError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from pipelines.aws import AwsClients
    from pipelines.settings import ModelTarget

SCHEMA_VERSION = 1
LOWER_IS_BETTER = {"log_loss", "calibration_error", "rmse", "mae"}
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
HISTOGRAM_BINS = 10
MAX_SAMPLE_ROWS = 100_000
PREDICTION_COLUMN = "__prediction__"
_QUIET: dict[str, Any] = {"zero_division": 0}  # no warning when a class is never predicted
ARCHIVE_FILES = {"model.joblib", "metadata.json", "contract.yaml"}


class ModelArchiveError(InputRejectedError, ValueError):
    """A ``model.tar.gz`` is malformed, unsafe, or its model does not match its recorded hash."""


class EvaluationError(PipelineError):
    """The model cannot be evaluated on the given features (e.g. no held-out rows)."""


@dataclass
class LoadedModel:
    """A model read from ``model.tar.gz`` with its metadata and contract."""

    model: Any
    metadata: dict[str, Any]
    contract: DatasetContract

    def scores(self, inputs: pd.DataFrame) -> np.ndarray:
        """Positive-class probability for classifiers, the prediction for regressors."""
        if self.contract.is_classification:
            classes = list(self.metadata["classes"])
            index = classes.index(self.metadata["positive_class"])
            return self.model.predict_proba(inputs)[:, index]
        return self.model.predict(inputs)


def load_model_archive(data: bytes, *, unpickle: bool = True) -> LoadedModel:
    """Open ``model.tar.gz`` bytes safely (only the expected plain files) and verify ``model_sha256``.

    ``unpickle=False`` leaves ``model`` None: for callers that need only the metadata and contract
    (registration), which then import neither joblib nor scikit-learn (about 2.5 s per process here).
    """
    import hashlib

    import yaml

    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        members: dict[str, tarfile.TarInfo] = {}
        for member in archive.getmembers():
            if _is_code_entry(member):
                continue  # the inference code under code/ is for the endpoint, not read here
            if member.name not in ARCHIVE_FILES or not member.isfile():
                raise ModelArchiveError(
                    f"unexpected entry {member.name!r} in model archive (allowed: {sorted(ARCHIVE_FILES)}"
                    " and files under code/)"
                )
            members[member.name] = member
        missing = ARCHIVE_FILES - set(members)
        if missing:
            raise ModelArchiveError(f"model archive lacks {sorted(missing)}")
        blobs = {name: archive.extractfile(m).read() for name, m in members.items()}  # type: ignore[union-attr]
    metadata = json.loads(blobs["metadata.json"])
    if metadata.get("schema_version") != SCHEMA_VERSION:
        raise ModelArchiveError(f"unknown metadata schema_version {metadata.get('schema_version')!r}")
    if hashlib.sha256(blobs["model.joblib"]).hexdigest() != metadata.get("model_sha256"):
        raise ModelArchiveError("model.joblib does not match model_sha256 in metadata.json")
    contract = parse_contract(yaml.safe_load(blobs["contract.yaml"]), "contract.yaml in the model archive")
    if not unpickle:
        return LoadedModel(None, metadata, contract)
    import joblib

    return LoadedModel(joblib.load(io.BytesIO(blobs["model.joblib"])), metadata, contract)


def _is_code_entry(member: tarfile.TarInfo) -> bool:
    """A plain file or folder under ``code/`` with a relative, ``..``-free name."""
    parts = member.name.split("/")
    return (
        parts[0] == "code"
        and ".." not in parts
        and not member.name.startswith("/")
        and (member.isfile() or member.isdir())
    )


# --- metrics -----------------------------------------------------------------------------------


def calibration_error(y_true: np.ndarray, proba: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over ``bins`` equal-width probability bins."""
    import numpy as np

    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.digitize(proba, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.mean() * abs(float(proba[mask].mean()) - float(y_true[mask].mean()))
    return float(total)


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """AUC, F1, precision, recall, log-loss and calibration error for a binary 0/1 target."""
    from sklearn import metrics

    predicted = (proba >= threshold).astype(int)
    both = len(set(y_true.tolist())) > 1
    return {
        "auc": float(metrics.roc_auc_score(y_true, proba)) if both else float("nan"),
        "f1": float(metrics.f1_score(y_true, predicted, **_QUIET)),
        "precision": float(metrics.precision_score(y_true, predicted, **_QUIET)),
        "recall": float(metrics.recall_score(y_true, predicted, **_QUIET)),
        "log_loss": float(metrics.log_loss(y_true, proba, labels=[0, 1])),
        "calibration_error": calibration_error(y_true, proba),
    }


def regression_metrics(y_true: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R2."""
    from sklearn import metrics

    return {
        "rmse": float(metrics.root_mean_squared_error(y_true, predicted)),
        "mae": float(metrics.mean_absolute_error(y_true, predicted)),
        "r2": float(metrics.r2_score(y_true, predicted)),
    }


def model_metrics(loaded: LoadedModel, frame: pd.DataFrame) -> dict[str, float]:
    """The task's metrics of ``loaded`` on ``frame`` (which carries the target)."""
    from pipelines.train import model_inputs

    contract = loaded.contract
    scores = loaded.scores(model_inputs(frame, contract))
    target = frame[contract.target]
    if contract.is_classification:
        positive = loaded.metadata["positive_class"]
        y_true = (target.astype(object).map(lambda v: v == positive or str(v) == str(positive))).to_numpy(
            dtype=int
        )
        return classification_metrics(y_true, scores)
    return regression_metrics(target.to_numpy(dtype="float64"), scores)


# --- baselines ---------------------------------------------------------------------------------


def _num(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def column_baseline(values: pd.Series, kind: str) -> dict[str, Any]:
    """Drift baseline of one column (see docs/pipeline-contracts.md for the shape)."""
    import numpy as np

    missing = int(values.isna().sum())
    present = values.dropna()
    if kind == "categorical":
        counts = present.astype(str).value_counts().sort_index()
        return {
            "kind": "categorical",
            "count": len(values),
            "missing": missing,
            "frequencies": {str(k): int(v) for k, v in counts.items()},
        }
    numbers = present.to_numpy(dtype="float64")
    if len(numbers) == 0:
        return {
            "kind": "numeric",
            "count": len(values),
            "missing": missing,
            "mean": None,
            "std": None,
            "min": None,
            "max": None,
            "quantiles": {},
            "histogram": {"edges": [], "counts": []},
        }
    counts, edges = np.histogram(numbers, bins=HISTOGRAM_BINS)
    return {
        "kind": "numeric",
        "count": len(values),
        "missing": missing,
        "mean": _num(numbers.mean()),
        "std": _num(numbers.std(ddof=1)) if len(numbers) > 1 else 0.0,
        "min": _num(numbers.min()),
        "max": _num(numbers.max()),
        "quantiles": {str(q): _num(np.quantile(numbers, q)) for q in QUANTILES},
        "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
    }


def baseline(inputs: pd.DataFrame, scores: np.ndarray, contract: DatasetContract) -> dict[str, Any]:
    """``baseline.json`` content: per-feature statistics plus the model output's."""
    import pandas as pd

    return {
        "schema_version": SCHEMA_VERSION,
        "row_count": len(inputs),
        "features": {
            name: column_baseline(cast("pd.Series", inputs[name]), kind)
            for name, kind in contract.feature_kinds
        },
        "prediction": column_baseline(pd.Series(scores), "numeric"),
    }


def baseline_sample(inputs: pd.DataFrame, scores: np.ndarray, seed: int = 0) -> bytes:
    """``baseline_sample.parquet``: a seeded uniform sample (at most 100,000 rows) with ``__prediction__``."""
    frame = inputs.assign(**{PREDICTION_COLUMN: scores})
    if len(frame) > MAX_SAMPLE_ROWS:
        frame = frame.sample(n=MAX_SAMPLE_ROWS, random_state=seed)
    buffer = io.BytesIO()
    frame.reset_index(drop=True).to_parquet(buffer, index=False)
    return buffer.getvalue()


# --- behavioural checks and the gate -----------------------------------------------------------


def _recompute_derived(frame: pd.DataFrame, contract: DatasetContract) -> pd.DataFrame:
    from pipelines.features.spec import derived_values

    usable = [d.model_dump() for d in contract.features.derived if all(i in frame.columns for i in d.inputs)]
    return frame.assign(**derived_values(frame, usable))


def behavioural_checks(loaded: LoadedModel, frame: pd.DataFrame, seed: int = 0) -> list[dict[str, Any]]:
    """Run the contract's invariance and directional checks on rows of ``frame``."""
    import numpy as np

    from pipelines.train import model_inputs

    contract = loaded.contract
    results: list[dict[str, Any]] = []
    for check in contract.evaluation.behavioural:
        rows = frame.sample(n=min(check.rows, len(frame)), random_state=seed)
        base = loaded.scores(model_inputs(rows, contract))
        result: dict[str, Any] = {"kind": check.kind, "column": check.column}
        if check.kind == "invariance":
            variants = [
                loaded.scores(
                    model_inputs(_recompute_derived(rows.assign(**{check.column: v}), contract), contract)
                )
                for v in check.values
            ]
            spread = float(np.mean(np.max(variants, axis=0) - np.min(variants, axis=0))) if variants else 0.0
            result.update(
                values=check.values,
                tolerance=check.tolerance,
                mean_spread=spread,
                passed=spread <= check.tolerance,
            )
        else:
            moved = rows.assign(**{check.column: rows[check.column].astype("float64") + check.delta})
            shifted = loaded.scores(model_inputs(_recompute_derived(moved, contract), contract))
            change = float(np.mean(shifted - base))
            ok = change > 0 if check.expect == "increase" else change < 0
            result.update(delta=check.delta, expect=check.expect, mean_change=change, passed=bool(ok))
        results.append(result)
    return results


def gate(
    contract: DatasetContract,
    metrics: Mapping[str, float],
    behavioural: list[dict[str, Any]],
    champion: dict[str, Any] | None,
    fairness: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The gate decision: absolute thresholds, champion/challenger (relative margin), behavioural checks,
    and the contract's fairness maxima (``fairness``: :func:`pipelines.fairness.fairness_report`)."""
    config = contract.evaluation
    reasons: list[str] = []
    for name, bound in config.min.items():
        value = metrics.get(name)
        if value is None or not value >= bound:
            reasons.append(f"{name} {value} is below the minimum {bound}")
    for name, bound in config.max.items():
        value = metrics.get(name)
        if value is None or not value <= bound:
            reasons.append(f"{name} {value} is above the maximum {bound}")
    reasons += [
        f"behavioural {b['kind']} check on '{b['column']}' failed" for b in behavioural if not b["passed"]
    ]
    if champion is not None and _worse_than_champion(metrics, champion, config.champion.margin):
        name = champion["metric"]
        reasons.append(
            f"{name} {metrics[name]:.4f} is worse than the champion's {champion['metrics'][name]:.4f} "
            f"by more than {config.champion.margin:.0%}"
        )
    if fairness is not None:
        reasons += list(fairness["reasons"])
    thresholds: dict[str, Any] = {
        "min": dict(config.min),
        "max": dict(config.max),
        "champion_margin": config.champion.margin,
    }
    if fairness is not None:
        thresholds["fairness"] = dict(fairness["limits"])
    return {
        "passed": not reasons,
        "reasons": reasons or ["all thresholds, behavioural checks and the champion rule passed"],
        "thresholds": thresholds,
        "champion": champion,
    }


def _worse_than_champion(metrics: Mapping[str, float], champion: dict[str, Any], margin: float) -> bool:
    """True when the challenger's primary metric is worse than the champion's by more than ``margin`` (relative)."""
    name = champion["metric"]
    ours, theirs = metrics.get(name), champion["metrics"].get(name)
    if ours is None or theirs is None:
        return False
    if name in LOWER_IS_BETTER:
        return ours > theirs * (1 + margin)
    return ours < theirs * (1 - margin)


def primary_metric(contract: DatasetContract) -> str:
    """The champion/challenger metric: configured, else AUC (classification) or RMSE (regression)."""
    return contract.evaluation.champion.metric or ("auc" if contract.is_classification else "rmse")


# --- the step ----------------------------------------------------------------------------------


@dataclass
class EvaluationResult:
    """The evaluation report and where its files were written."""

    report: dict[str, Any]
    uris: list[str]

    @property
    def passed(self) -> bool:
        """The gate's decision."""
        return bool(self.report["gate"]["passed"])


def evaluation_prefix(model_name: str, run_id: str) -> str:
    """``models/<model_name>/<run_id>/evaluation/``."""
    return f"models/{model_name}/{run_id}/evaluation/"


def read_features(s3: Any, features_uri: str) -> pd.DataFrame:
    """Every Parquet file under an S3 features prefix, concatenated in key order."""
    import pandas as pd

    from pipelines.train import download_prefix, read_channel

    with tempfile.TemporaryDirectory(prefix="mlops-eval-") as tmp:
        download_prefix(s3, features_uri, Path(tmp))
        frame = read_channel(Path(tmp))
    return pd.DataFrame(frame)


def champion_model(
    clients: AwsClients, loaded: LoadedModel, test: pd.DataFrame, model: ModelTarget | None = None
) -> dict[str, Any] | None:
    """The model's latest Approved package of the same contract, re-scored on ``test`` (or its recorded
    metrics); None when the model has no group or no approved package. Another contract's package is
    never a champion."""
    from pipelines.aws import split_s3_uri
    from pipelines.packages import latest_approved_package

    target = model or clients.settings.model_target(loaded.contract.name)
    group = target.model_package_group_name
    if not group:
        return None
    package = latest_approved_package(clients.sagemaker, group, loaded.contract.name)
    if package is None:
        return None
    metric = primary_metric(loaded.contract)
    bucket, key = split_s3_uri(package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"])
    try:
        champion = load_model_archive(clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        metrics, source = model_metrics(champion, test), "rescored on this test split"
    except Exception as exc:  # an older champion may not fit today's features: fall back to its report
        stats = package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri")
        if not stats:
            return {
                "model_package_arn": package["ModelPackageArn"],
                "metric": metric,
                "metrics": {},
                "source": f"unavailable ({exc})",
            }
        bucket, key = split_s3_uri(stats)
        metrics = json.loads(clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read())["metrics"]
        source = f"recorded evaluation (re-scoring failed: {exc})"
    return {
        "model_package_arn": package["ModelPackageArn"],
        "metric": metric,
        "metrics": metrics,
        "source": source,
    }


def serving_runtime_check(loaded: LoadedModel, test_inputs: pd.DataFrame) -> dict[str, Any]:
    """Check the inference server's fast runtime against scikit-learn on the held-out rows.

    The server compiles supported pipelines into a NumPy fast path and re-verifies it on probe rows
    when it loads a model; this records, at evaluation time and on the real test set, whether that
    runtime reproduces scikit-learn's outputs within its tolerance. ``runtime`` is
    ``fast-path:<kind>`` when it does, ``scikit-learn`` otherwise (with the reason).
    """
    from pipelines.serving.artifact import FeatureSpec
    from pipelines.serving.fastpath import DEFAULT_TOLERANCE, UnsupportedModelError, compile_model, verify

    features = [FeatureSpec(name=f["name"], kind=f["kind"]) for f in loaded.metadata["features"]]
    result: dict[str, Any] = {"tolerance": DEFAULT_TOLERANCE, "rows": len(test_inputs)}
    try:
        fast = compile_model(loaded.model, features)
        columns = {name: test_inputs[name].to_numpy() for name in test_inputs.columns}
        difference = verify(fast, loaded.model, columns, DEFAULT_TOLERANCE)
    except UnsupportedModelError as error:
        return {**result, "runtime": "scikit-learn", "reason": str(error)}
    return {**result, "runtime": f"fast-path:{fast.kind}", "max_abs_difference": difference}


def explainability_of(loaded: LoadedModel, test: pd.DataFrame, seed: int = 0) -> dict[str, Any]:
    """``evaluation.json``'s ``explainability``: permutation importance per model input (mean, std)."""
    from pipelines.explain import permutation_importance

    config = loaded.contract.evaluation.explainability
    if not config.enabled:
        return {"method": "permutation", "status": "disabled", "reason": "evaluation.explainability.enabled"}
    return permutation_importance(loaded, test, config.n_repeats, config.max_rows, seed)


def fairness_of(loaded: LoadedModel, test: pd.DataFrame) -> dict[str, Any] | None:
    """``evaluation.json``'s ``fairness`` (None when the contract has no ``fairness`` section).

    Raises:
        EvaluationError: a sensitive attribute is missing from the features.
    """
    from pipelines.explain import target_values
    from pipelines.fairness import fairness_report
    from pipelines.train import model_inputs

    config = loaded.contract.fairness
    if config is None:
        return None
    try:
        return fairness_report(
            config, test, target_values(loaded, test), loaded.scores(model_inputs(test, loaded.contract))
        )
    except KeyError as error:
        raise EvaluationError(str(error.args[0])) from None


def evaluate_frames(
    loaded: LoadedModel, frame: pd.DataFrame, champion: dict[str, Any] | None = None, seed: int = 0
) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    """Evaluate on the ``test`` split of ``frame`` and baseline on its ``train`` split (pure, no AWS)."""
    from pipelines.train import model_inputs, split_rows

    contract = loaded.contract
    test, train = split_rows(frame, "test"), split_rows(frame, "train")
    if len(test) == 0:
        raise EvaluationError(
            "no held-out rows: the features have no 'test' split; check the contract's split fractions"
        )
    metrics = model_metrics(loaded, test)
    behavioural = behavioural_checks(loaded, test, seed)
    fairness = fairness_of(loaded, test)
    report = {
        "schema_version": SCHEMA_VERSION,
        "task": contract.task,
        "model_name": contract.name,
        "run_id": loaded.metadata.get("run_id"),
        "test_rows": len(test),
        "metrics": metrics,
        "gate": gate(contract, metrics, behavioural, champion, fairness),
        "behavioural": behavioural,
        "serving_runtime": serving_runtime_check(loaded, model_inputs(test, contract)),
        "explainability": explainability_of(loaded, test, seed),
    }
    if fairness is not None:
        report["fairness"] = fairness
    inputs = model_inputs(train, contract).reset_index(drop=True)
    scores = loaded.scores(inputs)
    return report, baseline(inputs, scores, contract), baseline_sample(inputs, scores, seed)


def evaluate_model(
    clients: AwsClients,
    model_uri: str,
    features_uri: str,
    compare_with_champion: bool = True,
    model: ModelTarget | None = None,
) -> EvaluationResult:
    """Evaluate ``model.tar.gz`` at ``model_uri`` on the features at ``features_uri`` and write the reports.

    The champion is ``model``'s latest approved package (default: the catalog model of the archive's
    contract).
    """
    from pipelines.aws import put_all_or_nothing, split_s3_uri
    from pipelines.train import split_rows

    s3 = clients.s3
    bucket, key = split_s3_uri(model_uri)
    loaded = load_model_archive(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    frame = read_features(s3, features_uri)
    test = split_rows(frame, "test")
    champion = champion_model(clients, loaded, test, model) if compare_with_champion else None
    report, base, sample = evaluate_frames(loaded, frame, champion)
    report["model_uri"], report["features_uri"] = model_uri, features_uri
    prefix = evaluation_prefix(loaded.contract.name, str(loaded.metadata["run_id"]))
    artifacts = clients.settings.require("artifacts_bucket")
    uris = put_all_or_nothing(
        s3,
        artifacts,
        [
            (prefix + "evaluation.json", strict_json(report).encode()),
            (prefix + "baseline.json", strict_json(base).encode()),
            (prefix + "baseline_sample.parquet", sample),
        ],
        clients.settings.ml_key_arn,
    )
    return EvaluationResult(report, uris)


def strict_json(value: Any) -> str:
    """JSON that every parser accepts (:func:`pipelines.jsonio.strict_json`)."""
    from pipelines.jsonio import strict_json as write

    return write(value)
