"""Training: a SageMaker-contract entry point (also run locally) and a SageMaker training-job launcher.

The entry point honours the training container contract: data channels in ``SM_CHANNEL_<NAME>``,
hyperparameters from ``$SM_INPUT_CONFIG_DIR/hyperparameters.json`` (or ``--key value`` arguments),
the model written to ``SM_MODEL_DIR`` (SageMaker tars it into ``model.tar.gz``) and extra outputs to
``SM_OUTPUT_DATA_DIR``. The default paths below are the only place ``/opt/ml`` appears.

The entry point needs only scikit-learn, pandas, pyarrow, joblib, pydantic and PyYAML, so it runs in
the prebuilt SageMaker scikit-learn image with a ``requirements.txt`` for the last two.
"""

from __future__ import annotations

import ast
import functools
import gzip
import hashlib
import importlib
import io
import json
import os
import platform
import sys
import tarfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from pipelines.contract import SPLIT_COLUMN, DatasetContract, contract_sha256, load_contract
from pipelines.errors import PipelineError
from pipelines.jsonio import strict_json

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from pipelines.aws import AwsClients

SCHEMA_VERSION = 1
MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
CONTRACT_FILE = "contract.yaml"
RESERVED_HYPERPARAMETERS = {"contract", "code_version", "run_id"}
# as_text() turns every missing categorical into None; impute it as its own category
_MISSING_AS_CATEGORY: dict[str, Any] = {
    "missing_values": None,
    "strategy": "constant",
    "fill_value": "__missing__",
}

# estimator name -> (module, class, task); "seed" maps to random_state where the estimator has one.
ESTIMATORS: dict[str, tuple[str, str, str]] = {
    "logistic_regression": ("sklearn.linear_model", "LogisticRegression", "binary_classification"),
    "random_forest_classifier": ("sklearn.ensemble", "RandomForestClassifier", "binary_classification"),
    "hist_gradient_boosting_classifier": (
        "sklearn.ensemble",
        "HistGradientBoostingClassifier",
        "binary_classification",
    ),
    "ridge": ("sklearn.linear_model", "Ridge", "regression"),
    "random_forest_regressor": ("sklearn.ensemble", "RandomForestRegressor", "regression"),
    "hist_gradient_boosting_regressor": ("sklearn.ensemble", "HistGradientBoostingRegressor", "regression"),
}


class TrainingError(PipelineError):
    """Training could not run: bad data channel, contract or hyperparameters."""


# --- the SageMaker training container contract -------------------------------------------------


@dataclass(frozen=True)
class TrainingEnvironment:
    """Paths and names from the SageMaker training environment (defaults: the /opt/ml layout)."""

    model_dir: Path
    output_data_dir: Path
    input_config_dir: Path
    channels: dict[str, Path]
    job_name: str | None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TrainingEnvironment:
        """Read ``SM_MODEL_DIR``, ``SM_OUTPUT_DATA_DIR``, ``SM_INPUT_CONFIG_DIR``, ``SM_CHANNEL_*``."""
        env = os.environ if environ is None else environ
        channels = {
            key.removeprefix("SM_CHANNEL_").lower(): Path(value)
            for key, value in env.items()
            if key.startswith("SM_CHANNEL_")
        }
        if not channels and Path("/opt/ml/input/data/train").is_dir():
            channels["train"] = Path("/opt/ml/input/data/train")
        return cls(
            model_dir=Path(env.get("SM_MODEL_DIR", "/opt/ml/model")),
            output_data_dir=Path(env.get("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data")),
            input_config_dir=Path(env.get("SM_INPUT_CONFIG_DIR", "/opt/ml/input/config")),
            channels=channels,
            job_name=env.get("TRAINING_JOB_NAME"),
        )


def parse_value(value: Any) -> Any:
    """SageMaker passes hyperparameters as strings: turn ``"0.1"``/``"true"``/``"[1,2]"`` into values."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _parse_argument(value: str) -> Any:
    """A value as the training toolkit renders it on the command line: ``str()`` of the decoded value.

    So ``False`` arrives as ``"False"`` and a dict as ``"{'a': 1}"``; JSON first, then a Python literal,
    else the string itself.
    """
    parsed = parse_value(value)
    if parsed is not value:
        return parsed
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def read_hyperparameters(env: TrainingEnvironment, argv: list[str]) -> dict[str, Any]:
    """Hyperparameters from ``hyperparameters.json`` then command-line arguments (which win).

    The SageMaker training toolkit passes each hyperparameter as ``--key value``, or ``-k value`` for a
    one-letter key (``sagemaker_training.mapping.to_cmd_args``), with the value rendered by ``str()``.
    """
    values: dict[str, Any] = {}
    path = env.input_config_dir / "hyperparameters.json"
    if path.is_file():
        values.update({k: parse_value(v) for k, v in json.loads(path.read_text()).items()})
    if len(argv) % 2:
        raise TrainingError(f"arguments must be --key value pairs, got {argv}")
    for flag, value in zip(argv[::2], argv[1::2], strict=True):
        if flag.startswith("--") and len(flag) > 2:
            key = flag[2:]
        elif flag.startswith("-") and len(flag) == 2 and flag[1] != "-":
            key = flag[1:]
        else:
            raise TrainingError(f"expected --key (or -k for a one-letter key) before {value!r}, got {flag!r}")
        values[key.replace("-", "_")] = _parse_argument(value)
    return {k: v for k, v in values.items() if not k.startswith("sagemaker_")}


# --- data --------------------------------------------------------------------------------------


def data_files(folder: Path) -> list[Path]:
    """Parquet/CSV files under ``folder``, sorted by relative path."""
    files = [p for p in folder.rglob("*") if p.is_file() and p.suffix in {".parquet", ".csv"}]
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def files_sha256(files: list[Path]) -> str:
    """SHA-256 over the files' bytes, in the given (name-sorted) order."""
    digest = hashlib.sha256()
    for path in files:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def read_lineage(folder: Path) -> dict[str, Any] | None:
    """The feature step's ``_lineage.json`` at the channel root (validated data and contract hashes), if any."""
    path = folder / "_lineage.json"  # pipelines.lineage.LINEAGE_FILE; that module is not shipped to the job
    if not path.is_file():
        return None
    value = json.loads(path.read_text())
    return value if isinstance(value, dict) else None


def read_channel(folder: Path) -> pd.DataFrame:
    """All rows of a channel folder (Parquet or CSV files, read in name order)."""
    import pandas as pd

    files = data_files(folder)
    if not files:
        raise TrainingError(f"no .parquet or .csv files in channel folder {folder}")
    frames = [pd.read_parquet(f) if f.suffix == ".parquet" else pd.read_csv(f) for f in files]
    return pd.concat(frames, ignore_index=True)


def model_inputs(frame: pd.DataFrame, contract: DatasetContract) -> pd.DataFrame:
    """The feature columns in model order: numeric as float64, categorical as text (missing as None)."""
    import pandas as pd

    from pipelines.transforms import category_text

    missing = [n for n in contract.feature_names if n not in frame.columns]
    if missing:
        raise TrainingError(f"feature column(s) missing from the data: {missing}")
    out = pd.DataFrame(index=frame.index)
    for name, kind in contract.feature_kinds:
        column = frame[name]
        if kind == "numeric":
            out[name] = cast("pd.Series", pd.to_numeric(column, errors="coerce")).astype("float64")
        else:
            out[name] = column.astype(object).map(category_text).astype(object)
    return out


def target_values(frame: pd.DataFrame, contract: DatasetContract) -> Any:
    """The target as a numpy array (classes keep their type; regression as float)."""
    column = frame[contract.target]
    if contract.is_classification:
        return column.astype(object).to_numpy() if column.dtype == object else column.to_numpy(dtype="int64")
    return column.to_numpy(dtype="float64")


def split_rows(frame: pd.DataFrame, split: str) -> pd.DataFrame:
    """Rows of ``split`` (``train``/``validation``/``test``); all rows when there is no split column."""
    if SPLIT_COLUMN not in frame.columns:
        return frame
    return cast("pd.DataFrame", frame.loc[frame[SPLIT_COLUMN] == split])


def split_frames(
    train: pd.DataFrame, validation: pd.DataFrame | None, contract: DatasetContract
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Use the ``__split__`` column when present: train rows to fit, validation rows to report on."""
    if SPLIT_COLUMN in train.columns:
        if validation is None:
            validation = split_rows(train, "validation")
        train = split_rows(train, "train")
    if contract.unique_keys:  # row order must not depend on how files were partitioned
        train = train.sort_values(contract.unique_keys, kind="stable")
    if len(train) == 0:
        raise TrainingError("the training channel has no rows in the 'train' split")
    return train.reset_index(drop=True), None if validation is None else validation.reset_index(drop=True)


# --- the model ---------------------------------------------------------------------------------


def build_estimator(contract: DatasetContract, hyperparameters: Mapping[str, Any]) -> Any:
    """The estimator named in the contract's ``training.estimator`` with the given hyperparameters."""
    name = str(hyperparameters.get("estimator", contract.training.estimator))
    if name not in ESTIMATORS:
        raise TrainingError(f"unknown estimator '{name}'; choose one of {sorted(ESTIMATORS)}")
    module, cls_name, task = ESTIMATORS[name]
    if task != contract.task:
        raise TrainingError(
            f"estimator '{name}' is for {task}, but contract '{contract.name}' is {contract.task}"
        )
    cls = getattr(importlib.import_module(module), cls_name)
    valid = set(cls().get_params())
    params = {k: v for k, v in hyperparameters.items() if k not in {"estimator", "seed"}}
    unknown = sorted(set(params) - valid)
    if unknown:
        raise TrainingError(f"hyperparameter(s) {unknown} not accepted by {cls_name}; valid: {sorted(valid)}")
    if "random_state" in valid and "random_state" not in params:
        params["random_state"] = int(hyperparameters.get("seed", 0))
    return cls(**params)


def build_pipeline(contract: DatasetContract, hyperparameters: Mapping[str, Any]) -> Pipeline:
    """Preprocessing (impute + scale numeric, impute + one-hot categorical) and the estimator."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    from pipelines.transforms import as_text

    numeric = [n for n, kind in contract.feature_kinds if kind == "numeric"]
    categorical = [n for n, kind in contract.feature_kinds if kind == "categorical"]
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        transformers.append(
            (
                "numeric",
                Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                numeric,
            )
        )
    if categorical:
        encode = Pipeline(
            [
                ("text", FunctionTransformer(as_text, feature_names_out="one-to-one")),
                ("impute", SimpleImputer(**_MISSING_AS_CATEGORY)),
                ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]
        )
        transformers.append(("categorical", encode, categorical))
    preprocess = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
    return Pipeline([("preprocess", preprocess), ("model", build_estimator(contract, hyperparameters))])


def _stock_pickle_dispatch() -> dict[type, Any]:
    """The pure-Python pickler's type dispatch table as this Python ships it.

    joblib pickles with ``pickle._Pickler`` (pure Python) and copies its ``dispatch`` dict when
    ``joblib.numpy_pickle`` is first imported. That dict is process-wide state: ``import dill`` (which
    ``pulumi`` and Airflow import) replaces its ``type``, ``function`` and ``dict`` entries in place,
    so in a process that imported dill before joblib, ``slice`` (``ColumnTransformer.output_indices_``)
    pickles as ``dill._dill._load_type('slice')``: other bytes, and a pickle the serving image (no
    dill) cannot load. A fresh, private copy of the ``pickle`` module gives the untouched table; its
    entries are mapped to the same-named methods of ``pickle._Pickler`` (identical code).
    """
    import importlib.util
    import pickle

    spec = importlib.util.find_spec("pickle")
    if spec is None or spec.loader is None:
        raise TrainingError("the standard library's pickle module source cannot be found")
    fresh = importlib.util.module_from_spec(spec)  # not put in sys.modules: nothing else sees it
    spec.loader.exec_module(fresh)
    return {kind: getattr(pickle._Pickler, save.__name__) for kind, save in fresh._Pickler.dispatch.items()}


@functools.cache
def _canonical_pickler() -> type:
    """joblib's ``NumpyPickler`` with the stock dispatch table and value-based sharing (built once)."""
    import pickle

    import numpy as np
    from joblib.numpy_pickle import NumpyPickler

    def interned(value: Any) -> Any:
        return sys.intern(value) if type(value) is str else value

    intern_items = np.frompyfunc(interned, 1, 1)

    class CanonicalPickler(NumpyPickler):
        """Pickles equal values alike whatever their identity: every ``str`` as its interned object,
        every numpy dtype as the first one of its pickled value, object arrays with interned items."""

        dispatch = _stock_pickle_dispatch()

        def __init__(self, handle: Any) -> None:
            super().__init__(handle, protocol=None)  # joblib.dump's default protocol
            self._dtypes: dict[bytes, Any] = {}

        def save(self, obj: Any) -> None:
            if type(obj) is str:
                obj = sys.intern(obj)
            elif isinstance(obj, np.dtype):
                obj = self._dtypes.setdefault(pickle.dumps(obj), obj)
            elif type(obj) is np.ndarray and obj.dtype == object and obj.ndim:
                # joblib pickles an object array's items with a separate pickle.dump (its own memo),
                # so they are interned in a copy (same shape and memory order; the model keeps its own)
                obj = intern_items(obj)
            super().save(obj)

    return CanonicalPickler


def dump_model(model: Any, target: Path | IO[bytes]) -> None:
    """Write a fitted model as ``model.joblib`` (what ``joblib.dump(model, path)`` writes), canonically.

    Pickle writes an object once and refers back to it where the *same object* recurs (its memo), and
    the pure-Python pickler joblib uses takes its per-type handlers from process-wide state; so the
    same model could pickle to other bytes depending on what else the process did: a model trained
    after another was loaded pickled ``'drop'`` twice instead of once, object arrays read back from a
    pickle carry one dtype object each, and after ``import dill`` (pulumi, Airflow) ``slice`` pickled
    through dill. Here equal strings and equal dtypes are written once whatever their identity and
    the stock handlers are used, so equal fitted models give equal bytes in any process with the
    same library versions. The model is not modified; ``joblib.load`` (the serving image) reads it.
    """
    pickler = _canonical_pickler()
    if isinstance(target, Path):
        with target.open("wb") as handle:
            pickler(handle).dump(model)
    else:
        pickler(target).dump(model)


def quick_metrics(model: Pipeline, frame: pd.DataFrame, contract: DatasetContract) -> dict[str, float]:
    """A few metrics on ``frame`` (reported by the training job; the gate uses the evaluate step)."""
    from sklearn import metrics

    x, y = model_inputs(frame, contract), target_values(frame, contract)
    if contract.is_classification:
        classes = list(model.classes_)
        proba = model.predict_proba(x)[:, classes.index(_positive(contract, classes))]
        y_bin = (y == _positive(contract, classes)).astype(int)
        auc = metrics.roc_auc_score(y_bin, proba) if len(set(y_bin)) > 1 else float("nan")
        return {"auc": float(auc), "accuracy": float(metrics.accuracy_score(y, model.predict(x)))}
    predicted = model.predict(x)
    return {
        "rmse": float(metrics.root_mean_squared_error(y, predicted)),
        "r2": float(metrics.r2_score(y, predicted)),
    }


def _positive(contract: DatasetContract, classes: list[Any]) -> Any:
    for cls in classes:
        if cls == contract.positive_class or str(cls) == str(contract.positive_class):
            return cls
    raise TrainingError(f"positive_class {contract.positive_class!r} not among the labels {classes}")


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries the model depends on."""
    import joblib
    import numpy
    import pandas
    import sklearn

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "joblib": joblib.__version__,
    }


def default_code_version() -> str:
    """``MLOPS_CODE_VERSION``, else the git commit of this checkout, else the package version, else ``unknown``."""
    if os.environ.get("MLOPS_CODE_VERSION"):
        return os.environ["MLOPS_CODE_VERSION"]
    import subprocess
    from importlib import metadata

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607 - git from PATH is the point; absent git is handled
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        if commit:
            return commit
    except (OSError, subprocess.SubprocessError):
        pass

    try:
        return metadata.version("mlops-platform-blueprint")
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class TrainingResult:
    """What the entry point wrote."""

    model_dir: Path
    metadata: dict[str, Any]
    metrics: dict[str, float]


def train(
    contract_path: Path,
    train_dir: Path,
    model_dir: Path,
    output_data_dir: Path | None = None,
    validation_dir: Path | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    code_version: str | None = None,
) -> TrainingResult:
    """Fit the contract's pipeline on ``train_dir`` and write ``model.joblib``, ``metadata.json``, ``contract.yaml``."""
    contract = load_contract(contract_path)
    given = dict(hyperparameters or {})
    params = {
        **contract.training.hyperparameters,
        **{k: v for k, v in given.items() if k not in RESERVED_HYPERPARAMETERS},
    }
    train_frame, validation_frame = split_frames(
        read_channel(train_dir), read_channel(validation_dir) if validation_dir else None, contract
    )
    model = build_pipeline(contract, params)
    model.fit(model_inputs(train_frame, contract), target_values(train_frame, contract))

    model_dir.mkdir(parents=True, exist_ok=True)
    model_path = model_dir / MODEL_FILE
    dump_model(model, model_path)
    (model_dir / CONTRACT_FILE).write_bytes(Path(contract_path).read_bytes())
    write_serving_code(model_dir)  # an endpoint starts the model from model.tar.gz's code/ alone
    classes = [c.item() if hasattr(c, "item") else c for c in getattr(model, "classes_", [])]
    metadata = {
        "schema_version": SCHEMA_VERSION,
        "model_name": contract.name,
        "task": contract.task,
        "target": contract.target,
        "positive_class": _positive(contract, classes) if contract.is_classification else None,
        "classes": classes,
        "features": [
            {"name": name, "kind": kind, "dtype": "float64" if kind == "numeric" else "string"}
            for name, kind in contract.feature_kinds
        ],
        "model_file": MODEL_FILE,
        "model_sha256": hashlib.sha256(model_path.read_bytes()).hexdigest(),
        "training_data_sha256": files_sha256(data_files(train_dir)),
        "contract_sha256": contract_sha256(contract),
        "data_lineage": read_lineage(train_dir),
        "code_version": code_version or str(given.get("code_version") or default_code_version()),
        "hyperparameters": params,
        "library_versions": library_versions(),
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "run_id": run_id or str(given.get("run_id") or f"local-{int(time.time())}"),
        "training_rows": len(train_frame),
    }
    (model_dir / METADATA_FILE).write_text(strict_json(metadata))
    metrics = (
        quick_metrics(model, validation_frame, contract)
        if validation_frame is not None and len(validation_frame)
        else {}
    )
    if output_data_dir is not None:
        output_data_dir.mkdir(parents=True, exist_ok=True)
        (output_data_dir / "metrics.json").write_text(strict_json({"validation": metrics}))
    return TrainingResult(model_dir, metadata, metrics)


def find_contract(env: TrainingEnvironment, hyperparameters: Mapping[str, Any]) -> Path:
    """The contract file: ``contract`` hyperparameter, a ``contract`` channel, or ``contract.yaml`` here."""
    if hyperparameters.get("contract"):
        return Path(str(hyperparameters["contract"]))
    channel = env.channels.get("contract")
    if channel is not None:
        found = sorted(channel.glob("*.yaml")) + sorted(channel.glob("*.yml"))
        if found:
            return found[0]
    for candidate in (Path.cwd() / CONTRACT_FILE, Path(sys.argv[0]).resolve().parent / CONTRACT_FILE):
        if candidate.is_file():
            return candidate
    raise TrainingError("no contract: pass the 'contract' hyperparameter or a 'contract' channel")


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """The training entry point: ``python -m pipelines.train [--key value ...]``."""
    env = TrainingEnvironment.from_env(environ)
    hyperparameters = read_hyperparameters(env, sys.argv[1:] if argv is None else argv)
    if "train" not in env.channels:
        raise TrainingError("no training channel: set SM_CHANNEL_TRAIN to the training data folder")
    result = train(
        find_contract(env, hyperparameters),
        env.channels["train"],
        env.model_dir,
        env.output_data_dir,
        env.channels.get("validation"),
        hyperparameters,
        run_id=str(hyperparameters.get("run_id") or env.job_name or "") or None,
    )
    for name, value in result.metrics.items():
        print(f"validation:{name}={value:.6f}")  # picked up by SageMaker metric definitions
    return 0


# --- packaging and running as a job -------------------------------------------------------------


SERVING_CODE_DIR = "code"
"""Folder of the model directory holding the inference code (``/opt/ml/model/code`` on an endpoint)."""

SERVING_PROGRAM = "inference.py"
"""The script the scikit-learn container imports (``SAGEMAKER_PROGRAM``), at the top of ``code/``."""

# The SageMaker scikit-learn serving container imports SAGEMAKER_PROGRAM from SAGEMAKER_SUBMIT_DIRECTORY
# (sagemaker_sklearn_container.serving.import_module -> sagemaker_containers._modules.import_module,
# which copies that folder to /opt/ml/code, pip-installs it with a generated setup.py and imports the
# module); the SDK's repack puts the folder at model.tar.gz's code/ for the same reason
# (sagemaker-python-sdk src/sagemaker/workflow/_repack_model.py), and the endpoint unpacks it at /opt/ml/model:
# https://docs.aws.amazon.com/sagemaker/latest/dg/adapt-inference-container.html
# It exports model_fn and transform_fn only: the image refuses transform_fn next to input_fn/predict_fn/
# output_fn, and only transform_fn can answer a bad request with 4xx there (pipelines.serving.inference).
_INFERENCE_SCRIPT = b'''"""SageMaker scikit-learn container entry point (SAGEMAKER_PROGRAM): model_fn and transform_fn."""

from pipelines.serving.inference import model_fn, transform_fn

__all__ = ["model_fn", "transform_fn"]
'''

# Roots of the import closures shipped with a model (serving) and with a training job.
SERVING_ROOT_MODULES = ("pipelines.serving.inference",)
TRAINING_ROOT_MODULES = ("pipelines.train",)


def _is_type_checking_block(node: Any) -> bool:
    import ast

    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported_modules(source: str) -> set[tuple[str, bool]]:
    """``(name, is_module)`` for every ``import``/``from ... import`` at any depth, outside
    ``if TYPE_CHECKING``; ``is_module`` is False for a name that may be an attribute (``from m import x``)."""
    import ast

    found: set[tuple[str, bool]] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking_block(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update((alias.name, True) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                found.add((child.module, True))
                found.update((f"{child.module}.{alias.name}", False) for alias in child.names)
            visit(child)

    visit(ast.parse(source))
    return found


def module_closure(roots: tuple[str, ...]) -> dict[str, bytes]:
    """The ``pipelines`` source files the ``roots`` import, transitively (package ``__init__`` files included).

    Keys are archive paths (``pipelines/serving/codec.py``); the files are read from this package, so
    a training job running from its source archive ships the same files it was started with.

    Raises:
        TrainingError: a module that is imported is not there (an incomplete source archive).
    """
    base = Path(__file__).resolve().parent.parent
    files: dict[str, bytes] = {}
    pending = [(root, True) for root in roots]
    seen: set[str] = set()
    while pending:
        name, is_module = pending.pop()
        if name in seen or name.split(".")[0] != "pipelines":
            continue
        parts = name.split(".")
        module_file = base.joinpath(*parts).with_suffix(".py")
        package_init = base.joinpath(*parts, "__init__.py")
        path = module_file if module_file.is_file() else package_init if package_init.is_file() else None
        if path is None:
            if is_module:
                raise TrainingError(
                    f"module {name} is imported but not found under {base}: the source archive is incomplete"
                )
            continue  # ``from pipelines.x import name``: a function or class, not a module
        seen.add(name)
        for depth in range(1, len(parts)):
            init = base.joinpath(*parts[:depth], "__init__.py")
            if init.is_file():
                files[init.relative_to(base).as_posix()] = init.read_bytes()
        source = path.read_bytes()
        files[path.relative_to(base).as_posix()] = source
        pending.extend(_imported_modules(source.decode()))
    return dict(sorted(files.items()))


def serving_code_files() -> dict[str, bytes]:
    """The ``code/`` folder of a model: ``inference.py`` and the ``pipelines`` modules serving imports.

    Only modules the prebuilt scikit-learn image can run are included (no ``requirements.txt``: an
    endpoint may run with network isolation, so nothing can be installed when it starts).
    """
    return {SERVING_PROGRAM: _INFERENCE_SCRIPT, **module_closure(SERVING_ROOT_MODULES)}


def write_serving_code(model_dir: Path) -> Path:
    """Write :func:`serving_code_files` under ``model_dir/code`` (SageMaker tars ``SM_MODEL_DIR`` as is)."""
    code_dir = model_dir / SERVING_CODE_DIR
    for relative, data in serving_code_files().items():
        target = code_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return code_dir


def package_model(model_dir: Path) -> bytes:
    """``model.tar.gz`` bytes with the tree of ``model_dir`` at the archive root (as SageMaker does),
    ``code/`` included; entries sorted, owners and times zeroed, so the same model gives the same bytes."""
    buffer = io.BytesIO()
    files = sorted(
        (p for p in model_dir.rglob("*") if p.is_file() and "__pycache__" not in p.parts),
        key=lambda p: p.relative_to(model_dir).as_posix(),
    )
    # gzip's header carries a modification time (time.time() unless given): zero it too
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as packed,
        tarfile.open(fileobj=packed, mode="w") as archive,
    ):
        for path in files:
            info = archive.gettarinfo(str(path), arcname=path.relative_to(model_dir).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode = 0o644
            with path.open("rb") as handle:
                archive.addfile(info, handle)
    return buffer.getvalue()


def model_output_key(model_name: str, run_id: str) -> str:
    """``models/<model_name>/<run_id>/output/model.tar.gz``."""
    return f"models/{model_name}/{run_id}/output/model.tar.gz"


def download_prefix(s3: Any, uri: str, folder: Path) -> list[Path]:
    """Download every object under an ``s3://bucket/prefix`` into ``folder`` (keeping relative paths)."""
    from pipelines.aws import list_keys, split_s3_uri

    bucket, prefix = split_s3_uri(uri)
    paths: list[Path] = []
    for key in list_keys(s3, bucket, prefix):
        relative = key[len(prefix) :].lstrip("/") or Path(key).name
        target = (folder / relative).resolve()
        if not target.is_relative_to(folder.resolve()):
            raise TrainingError(f"refusing to write {key} outside {folder}")
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(target))
        paths.append(target)
    if not paths:
        raise TrainingError(f"no objects under {uri}")
    return paths


def run_training_locally(
    clients: AwsClients,
    contract_path: Path,
    run_id: str,
    train_uri: str,
    hyperparameters: Mapping[str, Any] | None = None,
    workdir: Path | None = None,
) -> str:
    """Run the entry point in a local /opt/ml-like tree on data from S3; upload ``model.tar.gz``; return its URI."""
    import tempfile

    from pipelines.aws import put_bytes

    settings = clients.settings
    bucket = settings.require("artifacts_bucket")
    contract = load_contract(contract_path)
    with tempfile.TemporaryDirectory(prefix="mlops-train-", dir=workdir) as tmp:
        root = Path(tmp)
        train_dir = root / "input" / "data" / "train"
        download_prefix(clients.s3, train_uri, train_dir)
        config_dir = root / "input" / "config"
        config_dir.mkdir(parents=True)
        hps = {
            **dict(hyperparameters or {}),
            "contract": str(Path(contract_path).resolve()),
            "run_id": run_id,
        }
        hps["code_version"] = settings.code_version or default_code_version()
        (config_dir / "hyperparameters.json").write_text(
            json.dumps({k: json.dumps(v) for k, v in hps.items()})
        )
        environ = {
            "SM_MODEL_DIR": str(root / "model"),
            "SM_OUTPUT_DATA_DIR": str(root / "output" / "data"),
            "SM_INPUT_CONFIG_DIR": str(config_dir),
            "SM_CHANNEL_TRAIN": str(train_dir),
            "TRAINING_JOB_NAME": run_id,
        }
        main([], environ)
        archive = package_model(root / "model")
    return put_bytes(
        clients.s3, bucket, model_output_key(contract.name, run_id), archive, settings.ml_key_arn
    )


def source_archive(contract_path: Path) -> bytes:
    """``sourcedir.tar.gz`` for script mode: the entry script, the contract, requirements, and every
    ``pipelines`` module the training entry point and the serving code it copies into the model import."""
    entry = b"from pipelines.train import main\n\nif __name__ == '__main__':\n    raise SystemExit(main())\n"
    files: dict[str, bytes] = {
        "train_entry.py": entry,
        # the scikit-learn image has PyYAML but not pydantic; training jobs may reach PyPI (serving never)
        "requirements.txt": b"pydantic>=2,<3\npyyaml>=6,<7\n",
        CONTRACT_FILE: Path(contract_path).read_bytes(),
        **module_closure(TRAINING_ROOT_MODULES + SERVING_ROOT_MODULES),
    }
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as packed,
        tarfile.open(fileobj=packed, mode="w") as archive,
    ):
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


_FAST_IMAGE_PARTITIONS = {"aws": "amazonaws.com", "aws-us-gov": "amazonaws.com"}
"""Partitions whose ECR domain is plain ``amazonaws.com`` (other partitions take the library's path)."""


def sklearn_image_uri(region: str, version: str, scope: str) -> str:
    """The prebuilt SageMaker scikit-learn image URI, as ``sagemaker.core.image_uris.retrieve`` gives it.

    Importing ``sagemaker.core`` takes 3-5 s (it loads every API shape), which each DAG step that
    builds a request would pay; the URI comes from the library's own table
    (``sagemaker/core/image_uri_config/sklearn.json``) read directly. Anything the table does not
    plainly answer (an unknown version or region, several processors, another partition's domain)
    goes through ``image_uris.retrieve`` itself, which raises its own clear error.
    """
    import json
    from importlib import metadata

    # located through the distribution's metadata: importlib.resources would import the package
    table_file = metadata.distribution("sagemaker-core").locate_file(
        "sagemaker/core/image_uri_config/sklearn.json"
    )
    table = json.loads(Path(str(table_file)).read_text())
    entry = table.get(scope, {}).get("versions", {}).get(version)
    account = (entry or {}).get("registries", {}).get(region)
    if entry and account and entry.get("processors") == ["cpu"] and len(entry.get("py_versions", [])) == 1:
        from boto3.session import Session

        domain = _FAST_IMAGE_PARTITIONS.get(Session().get_partition_for_region(region))
        if domain is not None:
            tag = f"{version}-cpu-{entry['py_versions'][0]}"
            return f"{account}.dkr.ecr.{region}.{domain}/{entry['repository']}:{tag}"
    from sagemaker.core import image_uris

    return image_uris.retrieve("sklearn", region=region, version=version, image_scope=scope)


def training_image(region: str, version: str) -> str:
    """The prebuilt SageMaker scikit-learn training image URI (:func:`sklearn_image_uri`)."""
    return sklearn_image_uri(region, version, "training")


def training_job_request(
    clients: AwsClients,
    contract_path: Path,
    run_id: str,
    train_uri: str,
    source_uri: str,
    hyperparameters: Mapping[str, Any] | None = None,
    max_runtime_s: int = 3600,
) -> dict[str, Any]:
    """The CreateTrainingJob request (job name = ``run_id``, so the output lands at the contract's key)."""
    settings = clients.settings
    contract = load_contract(contract_path)
    bucket = settings.require("artifacts_bucket")
    hps: dict[str, str] = {
        k: json.dumps(v) for k, v in {**dict(hyperparameters or {}), "run_id": run_id}.items()
    }
    hps["code_version"] = json.dumps(
        settings.code_version or default_code_version()
    )  # no git in the container
    hps.update(
        {
            "contract": json.dumps(CONTRACT_FILE),
            "sagemaker_program": json.dumps("train_entry.py"),
            "sagemaker_submit_directory": json.dumps(source_uri),
            "sagemaker_region": json.dumps(settings.region),
        }
    )
    request: dict[str, Any] = {
        "TrainingJobName": run_id,
        "AlgorithmSpecification": {
            "TrainingImage": training_image(settings.region, settings.sklearn_image_version),
            "TrainingInputMode": "File",
            "MetricDefinitions": [
                {"Name": f"validation:{m}", "Regex": f"validation:{m}=([0-9.eE+-]+)"}
                for m in (["auc", "accuracy"] if contract.is_classification else ["rmse", "r2"])
            ],
        },
        "RoleArn": settings.require("sagemaker_role_arn"),
        "HyperParameters": hps,
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": train_uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "ContentType": "application/x-parquet",
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/models/{contract.name}/"},
        "ResourceConfig": {
            "InstanceType": settings.training_instance_type,
            "InstanceCount": 1,
            "VolumeSizeInGB": 30,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_s},
        "EnableNetworkIsolation": False,  # script mode installs requirements.txt
        "EnableInterContainerTrafficEncryption": True,
        "Tags": [
            {"Key": "mlops:model", "Value": contract.name},
            {"Key": "mlops:environment", "Value": settings.environment},
        ],
    }
    if settings.ml_key_arn:
        request["OutputDataConfig"]["KmsKeyId"] = settings.ml_key_arn
        request["ResourceConfig"]["VolumeKmsKeyId"] = settings.ml_key_arn
    if settings.private_subnet_ids:
        # The jobs' own group: the interface endpoints' group has no egress, so a job in it could reach
        # neither S3 nor its requirements (https://docs.aws.amazon.com/sagemaker/latest/dg/train-vpc.html).
        request["VpcConfig"] = {
            "Subnets": settings.private_subnet_ids,
            "SecurityGroupIds": [settings.require("training_security_group_id")],
        }
    return request


def start_training_job(
    clients: AwsClients,
    contract_path: Path,
    run_id: str,
    train_uri: str,
    hyperparameters: Mapping[str, Any] | None = None,
    wait: bool = True,
    timeout_s: float = 7200,
    poll_s: float = 30,
) -> str:
    """Upload the source, start a SageMaker training job, wait, and return the ``model.tar.gz`` URI."""
    from pipelines.aws import put_bytes

    settings = clients.settings
    contract = load_contract(contract_path)
    bucket = settings.require("artifacts_bucket")
    source_uri = put_bytes(
        clients.s3,
        bucket,
        f"models/{contract.name}/{run_id}/source/sourcedir.tar.gz",
        source_archive(contract_path),
        settings.ml_key_arn,
    )
    request = training_job_request(clients, contract_path, run_id, train_uri, source_uri, hyperparameters)
    clients.sagemaker.create_training_job(**request)
    expected = f"s3://{bucket}/{model_output_key(contract.name, run_id)}"
    if not wait:
        return expected
    job = wait_for_training_job(clients, run_id, timeout_s, poll_s)
    return job.get("ModelArtifacts", {}).get("S3ModelArtifacts") or expected


def wait_for_training_job(
    clients: AwsClients, name: str, timeout_s: float = 7200, poll_s: float = 30
) -> dict[str, Any]:
    """Poll DescribeTrainingJob until Completed; raise :class:`TrainingError` on Failed/Stopped/timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = clients.sagemaker.describe_training_job(TrainingJobName=name)
        status = job["TrainingJobStatus"]
        if status == "Completed":
            return job
        if status in {"Failed", "Stopped"}:
            raise TrainingError(
                f"training job {name} {status}: {job.get('FailureReason', 'no reason given')}"
            )
        if time.monotonic() >= deadline:
            raise TrainingError(f"training job {name} still {status} after {timeout_s:.0f}s")
        time.sleep(poll_s)


if __name__ == "__main__":
    raise SystemExit(main())
