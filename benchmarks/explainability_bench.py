"""Explainability benchmark: permutation importance (the pipeline's choice) vs. its alternatives.

On the churn model (the shipped contract and estimator, seeded synthetic data, the pandas feature job),
it times, on this machine's cores with ``n_jobs=1`` as the evaluate step runs:

* permutation importance with the evaluate step's defaults (5 repeats, at most 1,000 test rows),
  and with other repeat counts and sample sizes;
* drop-column importance (refit without each input), the model-agnostic alternative;
* the logistic regression's coefficients (free, but only for linear models and in one-hot/scaled
  space, not per contract input).

It prints a table (seconds, the top inputs) and the rank agreement (Spearman) of each method with the
all-rows, 20-repeat permutation reference.

Usage (from the repository root)::

    .venv/bin/python benchmarks/explainability_bench.py [--rows 5000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _churn(rows: int) -> tuple[Any, Any, Any]:
    """The churn model fitted on the train split of ``rows`` synthetic rows; (loaded model, train, test)."""
    from pipelines.contract import load_contract
    from pipelines.evaluate import LoadedModel
    from pipelines.features.spec import build_features_pandas, feature_spec
    from pipelines.synthetic import generate
    from pipelines.train import build_pipeline, model_inputs, split_rows, target_values

    contract = load_contract("churn")
    frame = build_features_pandas(generate("churn", rows, 1), feature_spec(contract))
    train, test = split_rows(frame, "train"), split_rows(frame, "test")
    model = build_pipeline(contract, contract.training.hyperparameters)
    model.fit(model_inputs(train, contract), target_values(train, contract))
    metadata = {"positive_class": contract.positive_class, "classes": [0, 1]}
    return LoadedModel(model=model, metadata=metadata, contract=contract), train, test


def _spearman(a: dict[str, float], b: dict[str, float]) -> float:
    from scipy.stats import spearmanr

    names = sorted(a)
    result: Any = spearmanr([a[n] for n in names], [b[n] for n in names])
    return float(result.statistic)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a Markdown table."""
    from pipelines.explain import drop_column_importance, permutation_importance

    parser = argparse.ArgumentParser(description="Explainability benchmark on the churn model.")
    parser.add_argument(
        "--rows", type=int, default=5000, help="synthetic churn rows (the rehearsal's default)"
    )
    args = parser.parse_args(argv)
    loaded, train, test = _churn(args.rows)
    print(
        f"churn: {len(train)} train rows, {len(test)} test rows, {len(loaded.contract.feature_names)} inputs"
    )

    def perm(n_repeats: int, max_rows: int) -> tuple[float, dict[str, float]]:
        started = time.perf_counter()
        out = permutation_importance(loaded, test, n_repeats=n_repeats, max_rows=max_rows, seed=0)
        return time.perf_counter() - started, {k: v["mean"] for k, v in out["features"].items()}

    _, reference = perm(20, len(test))
    rows: list[tuple[str, float, dict[str, float]]] = []
    for n_repeats, max_rows in ((5, 1000), (3, 500), (10, 2000), (5, 2000)):
        seconds, importances = perm(n_repeats, max_rows)
        rows.append((f"permutation, {n_repeats} repeats, <= {max_rows} rows", seconds, importances))
    started = time.perf_counter()
    dropped = drop_column_importance(loaded, train, test, max_rows=1000, seed=0)
    rows.append(("drop-column (refit per input), <= 1000 rows", time.perf_counter() - started, dropped))
    print("| method | seconds | rank agreement with reference | top 3 inputs |")
    print("|---|---:|---:|---|")
    for name, seconds, importances in rows:
        top = ", ".join(sorted(importances, key=lambda k: -importances[k])[:3])
        print(f"| {name} | {seconds:.2f} | {_spearman(importances, reference):.2f} | {top} |")
    started = time.perf_counter()
    coefficients = loaded.model.named_steps["model"].coef_[0]
    print(
        f"| logistic coefficients ({len(coefficients)} one-hot/scaled columns, not per input) | "
        f"{time.perf_counter() - started:.4f} | n/a | n/a |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
