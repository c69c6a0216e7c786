"""Training entry point: the SageMaker container contract, reproducibility, artifact contents."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import joblib
import pandas as pd
import pytest

from pipelines.contract import load_contract, resolve_contract_path
from pipelines.evaluate import load_model_archive
from pipelines.features.spec import build_features_pandas, feature_spec
from pipelines.synthetic import generate
from pipelines.train import TrainingEnvironment, TrainingError, main, package_model, read_hyperparameters
from pipelines.validate import check_batch


def _features(name: str, rows: int = 1500, seed: int = 5) -> pd.DataFrame:
    contract = load_contract(name)
    report, curated = check_batch(generate(name, rows, seed).to_csv(index=False).encode(), "x.csv", contract)
    assert curated is not None, report.summary()
    return build_features_pandas(curated, feature_spec(contract))


def _opt_ml(root: Path, frame: pd.DataFrame, hyperparameters: dict[str, object]) -> dict[str, str]:
    """An /opt/ml-like tree under ``root`` and the SM_* environment pointing at it."""
    train = root / "input" / "data" / "train"
    train.mkdir(parents=True)
    frame.iloc[: len(frame) // 2].to_parquet(train / "part-00000.parquet", index=False)
    frame.iloc[len(frame) // 2 :].to_parquet(train / "part-00001.parquet", index=False)
    config = root / "input" / "config"
    config.mkdir(parents=True)
    # SageMaker writes every hyperparameter value as a string
    (config / "hyperparameters.json").write_text(
        json.dumps({k: json.dumps(v) for k, v in hyperparameters.items()})
    )
    return {
        "SM_MODEL_DIR": str(root / "model"),
        "SM_OUTPUT_DATA_DIR": str(root / "output" / "data"),
        "SM_INPUT_CONFIG_DIR": str(config),
        "SM_CHANNEL_TRAIN": str(train),
        "TRAINING_JOB_NAME": "job-123",
    }


@pytest.fixture(scope="module")
def churn_features() -> pd.DataFrame:
    return _features("churn")


def test_entry_point_writes_the_artifact_contract(tmp_path: Path, churn_features: pd.DataFrame) -> None:
    contract_file = resolve_contract_path("churn")
    env = _opt_ml(
        tmp_path, churn_features, {"contract": str(contract_file), "C": 0.5, "sagemaker_program": "x.py"}
    )
    assert main([], env) == 0
    model_dir = tmp_path / "model"
    assert sorted(p.name for p in model_dir.iterdir()) == [
        "code",
        "contract.yaml",
        "metadata.json",
        "model.joblib",
    ]
    assert (model_dir / "code" / "inference.py").is_file()
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert metadata["schema_version"] == 1
    assert metadata["model_name"] == "churn"
    assert metadata["task"] == "binary_classification"
    assert metadata["target"] == "churned"
    assert metadata["positive_class"] == 1
    assert metadata["classes"] == [0, 1]
    assert [f["name"] for f in metadata["features"]] == load_contract("churn").feature_names
    assert metadata["hyperparameters"]["C"] == 0.5
    assert "sagemaker_program" not in metadata["hyperparameters"]
    assert metadata["run_id"] == "job-123"
    assert set(metadata["library_versions"]) >= {"python", "scikit-learn", "numpy", "pandas"}
    assert len(metadata["training_data_sha256"]) == 64
    assert (model_dir / "contract.yaml").read_text() == contract_file.read_text()
    model = joblib.load(model_dir / "model.joblib")
    assert hasattr(model, "predict_proba")
    metrics = json.loads((tmp_path / "output" / "data" / "metrics.json").read_text())
    assert metrics["validation"]["auc"] > 0.75


def test_training_is_reproducible(tmp_path: Path, churn_features: pd.DataFrame) -> None:
    contract_file = str(resolve_contract_path("churn"))
    runs = []
    for name in ("a", "b"):
        env = _opt_ml(tmp_path / name, churn_features, {"contract": contract_file, "seed": 3})
        main([], env)
        runs.append(tmp_path / name / "model")
    first, second = (json.loads((r / "metadata.json").read_text()) for r in runs)
    assert first["training_data_sha256"] == second["training_data_sha256"]
    models = [joblib.load(r / "model.joblib") for r in runs]
    x = churn_features[load_contract("churn").feature_names].head(200)
    from pipelines.train import model_inputs

    inputs = model_inputs(x, load_contract("churn"))
    assert (models[0].predict_proba(inputs) == models[1].predict_proba(inputs)).all()


def test_arguments_override_the_hyperparameter_file(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "hyperparameters.json").write_text(
        json.dumps({"C": "0.1", "max_iter": "50", "sagemaker_region": "x"})
    )
    env = TrainingEnvironment(tmp_path, tmp_path, config, {}, None)
    assert read_hyperparameters(env, ["--C", "2.5"]) == {"C": 2.5, "max_iter": 50}


def test_arguments_as_the_training_toolkit_renders_them(tmp_path: Path) -> None:
    """One-letter keys come as ``-C``; values are ``str()`` of the decoded JSON (``False``, ``{'a': 1}``)."""
    config = tmp_path / "config"
    config.mkdir()
    hps = {"C": 0.5, "fit_intercept": False, "class_weight": {"a": 1}, "solver": "lbfgs", "layers": [1, 2]}
    (config / "hyperparameters.json").write_text(json.dumps({k: json.dumps(v) for k, v in hps.items()}))
    env = TrainingEnvironment(tmp_path, tmp_path, config, {}, None)
    argv = ["-C", "0.5", "--fit_intercept", "False", "--class_weight", "{'a': 1}", "--solver", "lbfgs"]
    assert read_hyperparameters(env, [*argv, "--layers", "[1, 2]"]) == hps
    with pytest.raises(TrainingError, match="expected --key"):
        read_hyperparameters(env, ["C", "1"])


def test_regression_entry_point_and_archive_roundtrip(tmp_path: Path) -> None:
    frame = _features("housing")
    env = _opt_ml(tmp_path, frame, {"contract": str(resolve_contract_path("housing"))})
    main([], env)
    loaded = load_model_archive(package_model(tmp_path / "model"))
    assert loaded.metadata["task"] == "regression"
    assert loaded.metadata["classes"] == []
    assert loaded.contract.name == "housing"
    with tarfile.open(fileobj=io.BytesIO(package_model(tmp_path / "model"))) as archive:
        names = archive.getnames()
    assert sorted(n for n in names if not n.startswith("code/")) == [
        "contract.yaml",
        "metadata.json",
        "model.joblib",
    ]
    assert "code/inference.py" in names
    assert "code/pipelines/serving/inference.py" in names


@pytest.mark.parametrize(
    ("hyperparameters", "message"),
    [
        ({"estimator": "ridge"}, "is for regression"),
        ({"bogus": 1}, "not accepted by LogisticRegression"),
        ({"estimator": "deep_net"}, "unknown estimator"),
    ],
)
def test_bad_hyperparameters_are_explained(
    tmp_path: Path, churn_features: pd.DataFrame, hyperparameters: dict[str, object], message: str
) -> None:
    env = _opt_ml(
        tmp_path, churn_features, {"contract": str(resolve_contract_path("churn")), **hyperparameters}
    )
    with pytest.raises(TrainingError, match=message):
        main([], env)
    assert not (tmp_path / "model" / "model.joblib").exists()


def test_missing_channel_is_explained(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="SM_CHANNEL_TRAIN"):
        main([], {"SM_MODEL_DIR": str(tmp_path), "SM_INPUT_CONFIG_DIR": str(tmp_path)})


def test_tampered_archive_is_refused(tmp_path: Path, churn_features: pd.DataFrame) -> None:
    from pipelines.evaluate import ModelArchiveError

    env = _opt_ml(tmp_path, churn_features, {"contract": str(resolve_contract_path("churn"))})
    main([], env)
    (tmp_path / "model" / "model.joblib").write_bytes(b"not the model")
    with pytest.raises(ModelArchiveError, match="model_sha256"):
        load_model_archive(package_model(tmp_path / "model"))
    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w:gz") as archive:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 1
        archive.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ModelArchiveError, match="unexpected entry"):
        load_model_archive(evil.getvalue())


def test_model_accepts_categoricals_however_they_are_encoded(
    tmp_path: Path, churn_features: pd.DataFrame
) -> None:
    """JSON booleans, CSV text and missing values reach the same one-hot columns as at training."""
    env = _opt_ml(tmp_path, churn_features, {"contract": str(resolve_contract_path("churn"))})
    main([], env)
    model = joblib.load(tmp_path / "model" / "model.joblib")
    names = load_contract("churn").feature_names
    row = churn_features[names].iloc[[0]].copy()
    as_bool = row.astype(object).assign(paperless_billing=True)
    as_text = row.astype(object).assign(paperless_billing="True")
    assert (model.predict_proba(as_bool) == model.predict_proba(as_text)).all()
    with_missing = row.astype(object).assign(region=None, contract_type=float("nan"), total_charges=None)
    assert model.predict_proba(with_missing).shape == (1, 2)
