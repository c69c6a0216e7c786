"""The model artifact and the training source run where SageMaker runs them: from their own files alone.

Each test unpacks what AWS would receive (``model.tar.gz`` of a registered package, the training job's
``sourcedir.tar.gz``) and runs it with :mod:`rehearsal.container`, which sees only those files plus
the image's libraries. Libraries the prebuilt scikit-learn image lacks are blocked as well (its
``requirements.txt``, https://github.com/aws/sagemaker-scikit-learn-container: no orjson, httptools,
typer or pydantic), since an endpoint with network isolation cannot install them.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from pipelines.contract import load_contract, resolve_contract_path
from pipelines.evaluate import evaluate_model
from pipelines.features.spec import build_features_pandas, feature_spec
from pipelines.fetch import safe_extract
from pipelines.register import register_model
from pipelines.synthetic import generate
from pipelines.train import package_model, run_training_locally, source_archive
from pipelines.validate import check_batch
from rehearsal.container import ContainerCommand, base_environment, start, unsatisfied_requirements
from tests.unit.pipelines.conftest import Platform
from tests.unit.pipelines.helpers import contract_path, prepare_features

NOT_IN_SKLEARN_IMAGE = ("orjson", "httptools", "typer", "pydantic")

# What the scikit-learn container does with the package's Environment, minus the pip install of code/:
# import SAGEMAKER_PROGRAM from SAGEMAKER_SUBMIT_DIRECTORY, then model_fn once and, per request,
# transform_fn when the module has one, else the three handlers.
SERVE_PROBE = """
import importlib, json, os, sys
model_dir = sys.argv[1]
program = os.environ["SAGEMAKER_PROGRAM"].removesuffix(".py")
user_module = importlib.import_module(program)
model = user_module.model_fn(model_dir)
rows = open(sys.argv[2], "rb").read().decode()  # text/csv arrives as str
if hasattr(user_module, "transform_fn"):
    body, content_type = user_module.transform_fn(model, rows, "text/csv", "application/json")
else:
    data = user_module.input_fn(rows, "text/csv")
    body, content_type = user_module.output_fn(user_module.predict_fn(data, model), "application/json")
print("CONTENT_TYPE", content_type)
print("BODY", body.decode() if isinstance(body, bytes) else body)
loaded = sorted(m.split(".")[0] for m in sys.modules if m.split(".")[0] in {blocked!r})
print("BLOCKED_LOADED", loaded)
"""


def _image_without(folder: Path, names: tuple[str, ...]) -> Path:
    """A code path that makes ``import <name>`` fail as it does in an image without those libraries."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / f"{name}.py").write_text(
            f"raise ModuleNotFoundError({f'No module named {name!r} (not in the scikit-learn image)'!r}, "
            f"name={name!r})\n"
        )
    return folder


def _run(command: ContainerCommand, cwd: Path, log: Path) -> tuple[int, str]:
    proc = start(command, cwd=cwd, log_path=log)
    try:
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, log.read_text()


def _serve_row(model_dir: Path, environment: dict[str, str], csv_rows: str, tmp: Path) -> tuple[int, str]:
    """Start the handlers the way the container does, with ``/opt/ml/model`` mapped to ``model_dir``."""
    submit = Path(environment["SAGEMAKER_SUBMIT_DIRECTORY"])
    code_dir = model_dir / submit.relative_to("/opt/ml/model")
    tmp.mkdir(parents=True, exist_ok=True)
    probe = tmp / "serve_probe.py"
    probe.write_text(SERVE_PROBE.replace("{blocked!r}", repr(set(NOT_IN_SKLEARN_IMAGE))))
    rows = tmp / "rows.csv"
    rows.write_text(csv_rows)
    blocker = _image_without(tmp / "image-blocks", NOT_IN_SKLEARN_IMAGE)
    command = ContainerCommand(
        code_paths=[blocker, code_dir],
        script=probe,
        args=[str(model_dir), str(rows)],
        env={**base_environment(tmp), **environment},
    )
    return _run(command, tmp, tmp / "serve.log")


def _feature_rows(platform: Platform, features_uri: str, names: list[str], count: int = 2) -> str:
    """The first rows of the feature table (what a client sends the endpoint) as header-less CSV."""
    bucket, prefix = features_uri[5:].split("/", 1)
    listed = platform.s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
    key = next(o["Key"] for o in listed if o["Key"].endswith(".parquet"))  # _lineage.json sits beside them
    frame = pd.read_parquet(io.BytesIO(platform.s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
    return frame[names].head(count).to_csv(index=False, header=False)


def _assert_served(code: int, log: str, rows: int = 2) -> None:
    assert code == 0, log
    assert "CONTENT_TYPE application/json" in log
    body = json.loads(log.split("BODY ", 1)[1].splitlines()[0])
    assert len(body["predictions"]) == rows
    assert all(0.0 <= p["score"] <= 1.0 for p in body["predictions"])
    assert "BLOCKED_LOADED []" in log


def test_registered_package_serves_from_its_artifact_alone(platform: Platform, tmp_path: Path) -> None:
    contract = load_contract("churn")
    features = prepare_features(platform, contract, rows=1200)
    model_uri = run_training_locally(platform.clients, contract_path(contract), "run-1", features.uri)
    assert evaluate_model(platform.clients, model_uri, features.uri).passed
    registration = register_model(platform.clients, model_uri)
    package = platform.clients.sagemaker.describe_model_package(
        ModelPackageName=registration.model_package_arn
    )
    container = package["InferenceSpecification"]["Containers"][0]
    environment = container["Environment"]
    assert environment["SAGEMAKER_PROGRAM"] == "inference.py"
    assert environment["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"

    bucket, key = container["ModelDataUrl"][5:].split("/", 1)
    model_dir = tmp_path / "opt-ml-model"
    files = safe_extract(platform.s3.get_object(Bucket=bucket, Key=key)["Body"].read(), model_dir)
    assert "code/inference.py" in files
    assert "code/pipelines/serving/inference.py" in files
    assert not any(name.endswith("requirements.txt") for name in files)  # nothing to install offline

    rows = _feature_rows(platform, features.uri, contract.feature_names)
    _assert_served(*_serve_row(model_dir, environment, rows, tmp_path))

    # the old layout (model files only, no code/) cannot start: the container finds no program
    for path in sorted((model_dir / "code").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (model_dir / "code").rmdir()
    code, log = _serve_row(model_dir, environment, rows, tmp_path / "old")
    assert code != 0
    assert "No module named 'inference'" in log


def test_inference_script_without_the_pipelines_package_fails(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    (model_dir / "code").mkdir(parents=True)
    (model_dir / "code" / "inference.py").write_text(
        "from pipelines.serving.inference import model_fn, transform_fn\n"
    )
    environment = {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}
    code, log = _serve_row(model_dir, environment, "1,2\n", tmp_path)
    assert code != 0
    assert "No module named 'pipelines'" in log


def _training_channel(folder: Path, rows: int = 900) -> None:
    contract = load_contract("housing")
    report, curated = check_batch(
        generate("housing", rows, 11).to_csv(index=False).encode(), "h.csv", contract
    )
    assert curated is not None, report.summary()
    folder.mkdir(parents=True)
    build_features_pandas(curated, feature_spec(contract)).to_parquet(
        folder / "part-00000.parquet", index=False
    )


def test_training_source_archive_runs_alone_and_its_model_serves(tmp_path: Path) -> None:
    archive = source_archive(resolve_contract_path("housing"))
    code_dir = tmp_path / "opt-ml-code"
    names = safe_extract(archive, code_dir)
    assert "train_entry.py" in names
    assert "contract.yaml" in names
    assert unsatisfied_requirements((code_dir / "requirements.txt").read_text()) == []

    train_dir = tmp_path / "input" / "data" / "train"
    _training_channel(train_dir)
    config_dir = tmp_path / "input" / "config"
    config_dir.mkdir(parents=True)
    # as CreateTrainingJob writes them (training_job_request): JSON-encoded strings
    (config_dir / "hyperparameters.json").write_text(
        json.dumps({"contract": json.dumps("contract.yaml"), "run_id": json.dumps("job-1")})
    )
    model_dir = tmp_path / "model"
    environment = {
        **base_environment(tmp_path),
        "SM_MODEL_DIR": str(model_dir),
        "SM_OUTPUT_DATA_DIR": str(tmp_path / "output" / "data"),
        "SM_INPUT_CONFIG_DIR": str(config_dir),
        "SM_CHANNEL_TRAIN": str(train_dir),
        "TRAINING_JOB_NAME": "job-1",
    }
    # the training image lacks the serving-only libraries too; pydantic comes from requirements.txt
    blocker = _image_without(tmp_path / "train-blocks", ("orjson", "httptools", "typer"))
    command = ContainerCommand(
        code_paths=[blocker, code_dir], script=code_dir / "train_entry.py", env=environment
    )
    code, log = _run(command, code_dir, tmp_path / "train.log")
    assert code == 0, log
    assert "validation:rmse=" in log
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert metadata["model_name"] == "housing"
    assert metadata["run_id"] == "job-1"

    # SageMaker tars SM_MODEL_DIR as it is: that archive serves from its code/ alone
    served = tmp_path / "served"
    safe_extract(package_model(model_dir), served)
    frame = pd.read_parquet(train_dir / "part-00000.parquet")
    rows = frame[load_contract("housing").feature_names].head(3).to_csv(index=False, header=False)
    environment = {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}
    code, log = _serve_row(served, environment, rows, tmp_path / "serve")
    assert code == 0, log
    body = json.loads(log.split("BODY ", 1)[1].splitlines()[0])
    assert len(body["predictions"]) == 3
    assert all(isinstance(p["score"], float) for p in body["predictions"])


def test_the_old_source_archive_cannot_ship_the_serving_code(tmp_path: Path) -> None:
    """The archive's old file list (no serving modules) fails loudly instead of a model without code."""
    full = tmp_path / "full"
    safe_extract(source_archive(resolve_contract_path("housing")), full)
    old_layout = [
        "train_entry.py",
        "requirements.txt",
        "contract.yaml",
        "pipelines/__init__.py",
        "pipelines/contract.py",
        "pipelines/errors.py",
        "pipelines/jsonio.py",
        "pipelines/train.py",
        "pipelines/transforms.py",
    ]
    code_dir = tmp_path / "code"
    for name in old_layout:
        (code_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (code_dir / name).write_bytes((full / name).read_bytes())
    train_dir = tmp_path / "train"
    _training_channel(train_dir, rows=300)
    environment = {
        **base_environment(tmp_path),
        "SM_MODEL_DIR": str(tmp_path / "model"),
        "SM_INPUT_CONFIG_DIR": str(tmp_path / "no-config"),
        "SM_CHANNEL_TRAIN": str(train_dir),
    }
    command = ContainerCommand(
        code_paths=[code_dir],
        script=code_dir / "train_entry.py",
        args=["--contract", "contract.yaml"],
        env=environment,
    )
    code, log = _run(command, code_dir, tmp_path / "log")
    assert code != 0
    assert "module pipelines.serving.inference is imported but not found" in log
    assert not (tmp_path / "model" / "code" / "inference.py").exists()


@pytest.mark.parametrize("module", ["pipelines.serving.inference", "pipelines.train"])
def test_shipped_code_imports_no_library_missing_from_the_image(module: str) -> None:
    import ast

    from pipelines.train import module_closure

    for name, source in module_closure((module,)).items():
        tree = ast.parse(source)
        top_level = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        imported = {
            (alias.name if isinstance(n, ast.Import) else n.module or "").split(".")[0]
            for n in top_level
            for alias in n.names
        }
        blocked = imported & {"orjson", "httptools", "typer", "pulumi", "rehearsal"}
        assert not blocked, f"{name} imports {blocked} at module level"
