"""Models for benchmarks/serving_bench.py: a model directory plus the payload rows to send it.

``fixture``: the serving tests' tiny model (``tests/unit/serving/model_fixture.py``).
``pipeline``: a churn model trained by the platform's own training code (``pipelines.train.train``)
on seeded synthetic data that went through the same steps as in the pipeline (synthetic batch ->
``validate.check_batch`` -> ``features.build_features_pandas``), offline and without AWS. Its
payload rows come from the same generator and steps, with a different seed, as the feature
columns in the model's order. Unlike the fixture, this model has the ``FunctionTransformer(as_text)``
step, so every process that loads it must be able to import ``pipelines.transforms``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

MODEL_KINDS = ("fixture", "pipeline")
PIPELINE_DATASET = "churn"
PIPELINE_TRAINING_ROWS = 4000  # about 70 % of them land in the 'train' split
PIPELINE_SEED = 42
PAYLOAD_SEEDS = {1: 1, 100: 2}  # payload rows -> generator seed (same seeds for both kinds)


@dataclass(frozen=True)
class BenchModel:
    """A model directory that ``pipelines.serving.inference.model_fn`` accepts, and its payloads."""

    kind: str
    model_dir: Path
    payloads: dict[int, pd.DataFrame]  # rows -> feature columns in the model's order
    details: dict[str, Any]


def build_model(kind: str, work: Path) -> BenchModel:
    """Write the ``kind`` model into ``work/model`` and make its payloads."""
    if kind == "fixture":
        return fixture_model(work)
    if kind == "pipeline":
        return pipeline_model(work)
    raise ValueError(f"unknown model kind {kind!r}; choose one of {MODEL_KINDS}")


def fixture_model(work: Path) -> BenchModel:
    """The serving tests' fixture model and rows (no ``as_text`` step)."""
    from tests.unit.serving.model_fixture import sample_rows, write_artifact

    model_dir = write_artifact(work / "model")
    payloads = {rows: sample_rows(rows, seed=seed) for rows, seed in PAYLOAD_SEEDS.items()}
    return BenchModel("fixture", model_dir, payloads, {"model_name": "churn-test"})


def pipeline_features(rows: int, seed: int) -> pd.DataFrame:
    """Synthetic churn rows, validated and featurized as the pipeline does (keys, features, target, split)."""
    from pipelines.contract import load_contract
    from pipelines.features.spec import build_features_pandas, feature_spec
    from pipelines.synthetic import generate
    from pipelines.validate import check_batch

    contract = load_contract(PIPELINE_DATASET)
    raw = generate(contract.name, rows, seed).to_csv(index=False).encode()
    report, curated = check_batch(raw, f"{contract.name}.csv", contract)
    if curated is None:
        raise RuntimeError(f"synthetic {contract.name} batch failed validation: {report.summary()}")
    return build_features_pandas(curated, feature_spec(contract))


def pipeline_model(work: Path) -> BenchModel:
    """Train the churn contract's model with ``pipelines.train.train`` on a local training channel."""
    from pipelines.contract import load_contract, resolve_contract_path
    from pipelines.train import train

    contract = load_contract(PIPELINE_DATASET)
    train_dir = work / "train"
    train_dir.mkdir(parents=True, exist_ok=True)
    pipeline_features(PIPELINE_TRAINING_ROWS, PIPELINE_SEED).to_parquet(
        train_dir / "part-00000.parquet", index=False
    )
    result = train(
        resolve_contract_path(contract.name),
        train_dir,
        work / "model",
        run_id="serving-bench",
        code_version="serving-bench",
    )
    payloads = {
        rows: pipeline_features(rows, seed)[contract.feature_names].reset_index(drop=True)
        for rows, seed in PAYLOAD_SEEDS.items()
    }
    details = {
        "model_name": contract.name,
        "estimator": contract.training.estimator,
        "training_rows": result.metadata["training_rows"],
        "seed": PIPELINE_SEED,
        "validation_metrics": result.metrics,
    }
    return BenchModel("pipeline", result.model_dir, payloads, details)


def fast_path_kind(model_dir: Path) -> str | None:
    """The verified NumPy fast path's kind for the model in ``model_dir`` (``None``: served by scikit-learn)."""
    from pipelines.serving.inference import model_fn

    fast = model_fn(model_dir).fast
    return None if fast is None else str(fast.kind)
