"""The NumPy fast path: same outputs as scikit-learn, falls back when it cannot be trusted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, OneHotEncoder, StandardScaler

from pipelines.serving.artifact import FeatureSpec, load_artifact
from pipelines.serving.codec import RawTable, align_to_features
from pipelines.serving.fastpath import UnsupportedModelError, build_verified, compile_model, verify
from pipelines.serving.inference import model_fn
from tests.unit.serving.model_fixture import CATEGORICAL, FEATURES, NUMERIC, make_training_frame, sample_rows

SPECS = tuple(
    [FeatureSpec(n, "numeric") for n in NUMERIC] + [FeatureSpec(n, "categorical") for n in CATEGORICAL]
)


def _columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return align_to_features(RawTable(layout="records", records=frame.to_dict(orient="records")), SPECS)


def _fit(estimator, *, numeric_steps=None, categorical_steps=None, target="churned") -> Pipeline:
    frame = make_training_frame(800, seed=3)
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(*(numeric_steps or [SimpleImputer(), StandardScaler()])), NUMERIC),
            (
                "cat",
                make_pipeline(
                    *(
                        categorical_steps
                        or [SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")]
                    )
                ),
                CATEGORICAL,
            ),
        ]
    )
    y = frame[target] if target == "churned" else frame["monthly_charges"]
    return Pipeline([("pre", pre), ("model", estimator)]).fit(frame[FEATURES], y)


def test_fixture_model_matches_sklearn(model_dir: Path) -> None:
    artifact = load_artifact(model_dir)
    fast = compile_model(artifact.model, artifact.features)
    rows = sample_rows(500, seed=2)
    rows.loc[rows.index[:20], "tenure_months"] = np.nan
    rows.loc[rows.index[20:40], "plan"] = None
    rows.loc[rows.index[40:60], "region"] = "atlantis"
    np.testing.assert_allclose(
        fast.predict(_columns(rows)), artifact.model.predict_proba(rows), rtol=0, atol=1e-12
    )


def test_model_fn_enables_verified_fast_path(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert model_fn(model_dir).fast is not None
    monkeypatch.setenv("SERVING_FAST_PATH", "0")
    assert model_fn(model_dir).fast is None


@pytest.mark.parametrize(
    "pipeline",
    [
        _fit(LogisticRegression(max_iter=300)),
        _fit(
            LogisticRegression(max_iter=300), numeric_steps=[SimpleImputer(strategy="median"), MinMaxScaler()]
        ),
        _fit(HistGradientBoostingClassifier(max_iter=20)),
        _fit(Ridge(), target="value"),
    ],
    ids=["logistic", "minmax", "hgb-estimator-called-directly", "ridge-regression"],
)
def test_supported_pipelines_verify(pipeline: Pipeline) -> None:
    fast = build_verified(pipeline, SPECS)
    assert fast is not None
    rows = sample_rows(200, seed=4)
    expected = pipeline.predict_proba(rows) if fast.is_classifier else pipeline.predict(rows)
    np.testing.assert_allclose(fast.predict(_columns(rows)), expected, atol=1e-9)


def test_multiclass_logistic_matches() -> None:
    frame = make_training_frame(600, seed=5)
    pipeline = Pipeline(
        [
            (
                "pre",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), NUMERIC),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
                    ]
                ),
            ),
            ("model", LogisticRegression(max_iter=500)),
        ]
    ).fit(frame[FEATURES], frame["plan"])
    fast = compile_model(pipeline, SPECS)
    assert fast.kind == "logistic-multinomial"
    rows = sample_rows(100, seed=6)
    verify(fast, pipeline, _columns(rows))


def test_unsupported_step_falls_back() -> None:
    pipeline = _fit(
        LogisticRegression(max_iter=300), numeric_steps=[SimpleImputer(), FunctionTransformer(np.log1p)]
    )
    with pytest.raises(UnsupportedModelError, match="FunctionTransformer"):
        compile_model(pipeline, SPECS)
    assert build_verified(pipeline, SPECS) is None


def test_missing_numeric_without_imputer_is_a_value_error() -> None:
    pipeline = _fit(LogisticRegression(max_iter=300), numeric_steps=[StandardScaler()])
    fast = compile_model(pipeline, SPECS)
    rows = sample_rows(3, seed=1)
    rows.loc[rows.index[0], "tenure_months"] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fast.predict(_columns(rows))


def test_unknown_category_with_strict_encoder_is_a_value_error() -> None:
    pipeline = _fit(
        LogisticRegression(max_iter=300),
        categorical_steps=[SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="error")],
    )
    fast = build_verified(pipeline, SPECS)
    assert fast is not None
    rows = sample_rows(2, seed=1)
    rows.loc[rows.index[0], "plan"] = "gold"
    with pytest.raises(ValueError, match="unknown categories"):
        fast.predict(_columns(rows))


def test_linear_models_are_folded_and_others_step_by_step(model_dir: Path) -> None:
    assert compile_model(load_artifact(model_dir).model, SPECS).kind == "logistic-binary-fused"
    assert compile_model(_fit(Ridge(), target="value"), SPECS).kind == "linear-fused"
    # an imputer after a scaler cannot be folded into the weights: the step-by-step path serves it
    unfoldable = _fit(LogisticRegression(max_iter=300), numeric_steps=[StandardScaler(), SimpleImputer()])
    fast = build_verified(unfoldable, SPECS)
    assert fast is not None
    assert fast.kind == "logistic-binary"
    assert compile_model(_fit(HistGradientBoostingClassifier(max_iter=5)), SPECS).kind.startswith("sklearn:")
