"""Global explainability at evaluation: permutation importance of each model input on the test split.

Permutation importance (scikit-learn's ``permutation_importance``) shuffles one input column at a time and
measures how much the model's score drops: model-agnostic (it works for every estimator the contract can
name, through the fitted pipeline), needs no retraining, and costs ``n_repeats x inputs`` scoring passes
over at most ``max_rows`` rows. ``benchmarks/explainability_bench.py`` measures it against drop-column
importance and other sample sizes on the churn model (docs/benchmarks.md).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from pipelines.evaluate import LoadedModel

SCORING = {"binary_classification": "roc_auc", "regression": "neg_root_mean_squared_error"}
"""The score whose drop is each input's importance (higher is better for both)."""


def target_values(loaded: LoadedModel, frame: pd.DataFrame) -> np.ndarray:
    """The target as the model's scores see it: 0/1 (positive class) for classifiers, floats for regressors."""
    contract = loaded.contract
    target = frame[contract.target]
    if contract.is_classification:
        positive = loaded.metadata["positive_class"]
        return (
            target.astype(object).map(lambda v: v == positive or str(v) == str(positive)).to_numpy(dtype=int)
        )
    return target.to_numpy(dtype="float64")


class _Scorer:
    """A scorer over :meth:`LoadedModel.scores` (positive-class probability or prediction)."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded

    def __call__(self, estimator: Any, inputs: pd.DataFrame, y: np.ndarray) -> float:
        from sklearn import metrics

        scores = self.loaded.scores(inputs)
        if self.loaded.contract.is_classification:
            return float(metrics.roc_auc_score(y, scores))
        return -float(metrics.root_mean_squared_error(y, scores))


def permutation_importance(
    loaded: LoadedModel, test: pd.DataFrame, n_repeats: int = 5, max_rows: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Per-input importance (mean and standard deviation of the score drop over ``n_repeats`` shuffles) on a
    seeded sample of at most ``max_rows`` rows of ``test``; inputs sorted by importance, largest first.

    The same model, rows and seed give the same numbers. ``status`` is ``"skipped"`` (with the reason)
    when the score is undefined on these rows (a classifier's test rows hold one class only).
    """
    from sklearn.inspection import permutation_importance as sklearn_permutation_importance

    from pipelines.train import model_inputs

    contract = loaded.contract
    rows = test.sample(n=max_rows, random_state=seed) if len(test) > max_rows else test
    inputs = model_inputs(rows, contract).reset_index(drop=True)
    y = target_values(loaded, rows)
    result: dict[str, Any] = {
        "method": "permutation",
        "scoring": SCORING[contract.task],
        "n_repeats": n_repeats,
        "rows": len(inputs),
        "seed": seed,
    }
    if contract.is_classification and len(set(y.tolist())) < 2:
        return {
            **result,
            "status": "skipped",
            "reason": "the test rows hold one class only: AUC is undefined",
        }
    started = time.perf_counter()
    found = sklearn_permutation_importance(
        loaded.model, inputs, y, scoring=_Scorer(loaded), n_repeats=n_repeats, random_state=seed, n_jobs=1
    )
    means, stds = found["importances_mean"], found["importances_std"]
    features = {
        name: {"mean": float(means[i]), "std": float(stds[i])} for i, name in enumerate(inputs.columns)
    }
    ordered = dict(sorted(features.items(), key=lambda item: -item[1]["mean"]))
    return {
        **result,
        "status": "computed",
        "baseline_score": _Scorer(loaded)(loaded.model, inputs, y),
        "features": ordered,
        "seconds": round(time.perf_counter() - started, 3),
    }


def drop_column_importance(
    loaded: LoadedModel, train: pd.DataFrame, test: pd.DataFrame, max_rows: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Drop-column importance (refit without each input; score drop on the test rows): the costlier
    alternative the benchmark compares permutation importance with. Not used by the pipeline."""
    from sklearn.base import clone

    from pipelines.train import model_inputs

    contract = loaded.contract
    rows = test.sample(n=max_rows, random_state=seed) if len(test) > max_rows else test
    inputs, y = model_inputs(rows, contract), target_values(loaded, rows)
    train_inputs, train_y = model_inputs(train, contract), target_values(loaded, train)
    scorer = _Scorer(loaded)
    base = scorer(loaded.model, inputs, y)
    out: dict[str, float] = {}
    for name in inputs.columns:
        refit: Any = clone(loaded.model)
        # a constant column carries no information: the same pipeline, refit without the input's signal
        constant = train_inputs.assign(**{name: train_inputs[name].iloc[0]})
        refit.fit(constant, train_y)
        out[str(name)] = base - _Scorer(_with_model(loaded, refit))(
            refit, inputs.assign(**{name: inputs[name].iloc[0]}), y
        )
    return out


def _with_model(loaded: LoadedModel, model: Any) -> LoadedModel:
    from pipelines.evaluate import LoadedModel

    return LoadedModel(model=model, metadata=loaded.metadata, contract=loaded.contract)
