"""A tiny trained model written exactly per docs/pipeline-contracts.md (independent of the training code).

``make_training_frame`` is a seeded churn-like table; ``write_artifact`` fits a scikit-learn
pipeline on it and writes ``model.joblib``, ``metadata.json``, ``contract.yaml``, ``baseline.json``
and ``baseline_sample.parquet`` into a directory.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

NUMERIC = ["tenure_months", "monthly_charges", "support_calls"]
CATEGORICAL = ["plan", "region"]
FEATURES = [*NUMERIC, *CATEGORICAL]
PLANS = ["basic", "standard", "premium"]
REGIONS = ["north", "south", "east", "west"]


def make_training_frame(rows: int = 1500, seed: int = 7) -> pd.DataFrame:
    """Seeded synthetic churn table with a learnable target."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "tenure_months": rng.gamma(2.0, 12.0, rows).round(1),
            "monthly_charges": rng.normal(60.0, 15.0, rows).round(2),
            "support_calls": rng.poisson(2.0, rows).astype(float),
            "plan": rng.choice(PLANS, rows, p=[0.5, 0.3, 0.2]),
            "region": rng.choice(REGIONS, rows),
        }
    )
    logit = (
        -0.05 * frame["tenure_months"]
        + 0.03 * (frame["monthly_charges"] - 60)
        + 0.4 * frame["support_calls"]
        - 0.5
    )
    frame["churned"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def build_pipeline() -> Pipeline:
    """Preprocessing + logistic regression, the shape the training step produces."""
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMERIC),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="missing"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                CATEGORICAL,
            ),
        ]
    )
    return Pipeline([("pre", pre), ("model", LogisticRegression(max_iter=500))])


def _numeric_baseline(values: pd.Series) -> dict[str, Any]:
    present = values.dropna().to_numpy(dtype=float)
    counts, edges = np.histogram(present, bins=10)
    return {
        "kind": "numeric",
        "count": int(values.size),
        "missing": int(values.isna().sum()),
        "mean": float(present.mean()),
        "std": float(present.std()),
        "min": float(present.min()),
        "max": float(present.max()),
        "quantiles": {
            q: float(np.quantile(present, float(q))) for q in ("0.01", "0.25", "0.5", "0.75", "0.99")
        },
        "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
    }


def _categorical_baseline(values: pd.Series) -> dict[str, Any]:
    return {
        "kind": "categorical",
        "count": int(values.size),
        "missing": int(values.isna().sum()),
        "frequencies": {str(k): int(v) for k, v in values.dropna().value_counts().items()},
    }


def write_artifact(
    directory: Path, *, rows: int = 1500, seed: int = 7, sample_rows: int | None = None
) -> Path:
    """Train the tiny model and write the whole artifact + baseline into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    frame = make_training_frame(rows, seed)
    pipeline = build_pipeline().fit(frame[FEATURES], frame["churned"])
    model_path = directory / "model.joblib"
    joblib.dump(pipeline, model_path)
    metadata = {
        "schema_version": 1,
        "model_name": "churn-test",
        "task": "binary_classification",
        "target": "churned",
        "positive_class": 1,
        "classes": [0, 1],
        "features": [{"name": n, "kind": "numeric"} for n in NUMERIC]
        + [{"name": n, "kind": "categorical"} for n in CATEGORICAL],
        "model_file": "model.joblib",
        "model_sha256": hashlib.sha256(model_path.read_bytes()).hexdigest(),
        "training_data_sha256": hashlib.sha256(frame.to_csv().encode()).hexdigest(),
        "code_version": "test",
        "hyperparameters": {"max_iter": 500},
        "library_versions": {"scikit-learn": "1.9.1"},
        "created_at": "2026-11-24T17:00:00Z",
        "run_id": "run-test-1",
    }
    (directory / "metadata.json").write_text(json.dumps(metadata, indent=2))
    (directory / "contract.yaml").write_text("name: churn-test\n")
    scores = pipeline.predict_proba(frame[FEATURES])[:, 1]
    sample = frame[FEATURES].copy()
    sample["__prediction__"] = scores
    if sample_rows is not None:
        sample = sample.sample(n=sample_rows, random_state=seed)
    sample.reset_index(drop=True).to_parquet(directory / "baseline_sample.parquet", index=False)
    baseline = {
        "schema_version": 1,
        "row_count": len(frame),
        "features": {
            **{n: _numeric_baseline(frame[n]) for n in NUMERIC},
            **{n: _categorical_baseline(frame[n]) for n in CATEGORICAL},
        },
        "prediction": _numeric_baseline(pd.Series(scores)),
    }
    (directory / "baseline.json").write_text(json.dumps(baseline, indent=2))
    return directory


def sample_rows(count: int, seed: int = 11) -> pd.DataFrame:
    """Fresh rows from the training distribution (features only)."""
    return make_training_frame(count, seed)[FEATURES]
