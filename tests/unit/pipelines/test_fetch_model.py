"""``mlops pipeline fetch-model`` against moto: the registered model unpacks into a servable folder, safely."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlops_cli.main import app
from pipelines.evaluate import evaluate_model
from pipelines.fetch import FetchError, UnsafeArchiveError, fetch_model, safe_extract
from pipelines.register import register_model
from pipelines.serving.artifact import load_artifact
from pipelines.train import run_training_locally
from tests.unit.pipelines.conftest import Platform
from tests.unit.pipelines.helpers import contract_path, prepare_features

runner = CliRunner(env={"COLUMNS": "250"})


def _register(platform: Platform) -> str:
    from pipelines.contract import load_contract

    contract = load_contract("housing")
    features = prepare_features(platform, contract, rows=800)
    model_uri = run_training_locally(platform.clients, contract_path(contract), "run-1", features.uri)
    assert evaluate_model(platform.clients, model_uri, features.uri).passed
    return register_model(platform.clients, model_uri).model_package_arn


def _outputs(platform: Platform, tmp_path: Path) -> Path:
    s = platform.settings
    path = tmp_path / "outputs.json"
    path.write_text(
        json.dumps(
            {
                "environment": "dev",
                "region": s.region,
                "artifactsBucket": s.artifacts_bucket,
                "mlKeyArn": s.ml_key_arn,
                "modelPackageGroupName": s.model_package_group_name,
            }
        )
    )
    return path


def test_fetch_latest_approved_and_by_arn_gives_a_servable_folder(platform: Platform, tmp_path: Path) -> None:
    arn = _register(platform)
    fetched = fetch_model(platform.clients, tmp_path / "latest")
    assert fetched.model_package_arn == arn
    assert {"model.joblib", "metadata.json", "contract.yaml", "code/inference.py"} <= set(fetched.files)
    artifact = load_artifact(fetched.model_dir)  # what `mlops serve --model-dir` loads
    assert artifact.metadata["model_name"] == "housing"

    by_arn = fetch_model(platform.clients, tmp_path / "by-arn", package_arn=arn)
    assert by_arn.files == fetched.files
    with pytest.raises(FetchError, match="is not empty"):
        fetch_model(platform.clients, tmp_path / "by-arn", package_arn=arn)

    result = runner.invoke(
        app,
        [
            "pipeline",
            "fetch-model",
            "--model-dir",
            str(tmp_path / "cli"),
            "--outputs",
            str(_outputs(platform, tmp_path)),
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"fetched {arn}" in result.output
    assert f"mlops serve --model-dir {tmp_path / 'cli'}" in result.output
    assert (tmp_path / "cli" / "model.joblib").is_file()


def test_an_empty_group_and_an_unknown_package_are_explained(platform: Platform, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="has no Approved package") as caught:
        fetch_model(platform.clients, tmp_path / "m")
    assert caught.value.hint is not None
    assert "--package-arn" in caught.value.hint
    missing = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-test-models/9"
    with pytest.raises(FetchError, match="cannot describe model package"):
        fetch_model(platform.clients, tmp_path / "m", package_arn=missing)
    result = runner.invoke(
        app,
        [
            "pipeline",
            "fetch-model",
            "-d",
            str(tmp_path / "m"),
            "--outputs",
            str(_outputs(platform, tmp_path)),
        ],
    )
    assert result.exit_code == 1
    assert "has no Approved package" in result.output
    assert not (tmp_path / "m").exists()


def _archive(*entries: tarfile.TarInfo) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        ok = tarfile.TarInfo("metadata.json")
        ok.size = 2
        archive.addfile(ok, io.BytesIO(b"{}"))
        for entry in entries:
            archive.addfile(entry, io.BytesIO(b"x" * entry.size) if entry.isfile() else None)
    return buffer.getvalue()


def _file(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 1
    return info


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (_file("../escape.txt"), "parent-relative"),
        (_file("code/../../escape.txt"), "parent-relative"),
        (_file("/etc/escape.txt"), "absolute"),
        (_link("code/link", "/etc/passwd", tarfile.SYMTYPE), "link or special file"),
        (_link("code/hard", "metadata.json", tarfile.LNKTYPE), "link or special file"),
        (_link("fifo", "", tarfile.FIFOTYPE), "link or special file"),
    ],
)
def test_unsafe_entries_are_refused_before_anything_is_written(
    tmp_path: Path, entry: tarfile.TarInfo, message: str
) -> None:
    target = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match=message) as caught:
        safe_extract(_archive(entry), target)
    assert caught.value.exit_code == 2
    assert not target.exists() or not any(target.iterdir())
    assert not (tmp_path / "escape.txt").exists()


def test_size_limit_and_garbage(tmp_path: Path) -> None:
    with pytest.raises(UnsafeArchiveError, match=r"3 bytes \(more than 1\)"):
        safe_extract(_archive(_file("code/a.py")), tmp_path / "a", max_bytes=1)
    with pytest.raises(UnsafeArchiveError, match="not a readable tar archive"):
        safe_extract(b"not a tarball", tmp_path / "b")
