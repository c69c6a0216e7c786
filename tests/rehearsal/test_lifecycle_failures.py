"""The rehearsal exits non-zero naming the stage when the training DAG or the model deploy breaks."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from rehearsal import lifecycle
from rehearsal import stages as base
from rehearsal.run import EXIT_STAGE_FAILED, Evidence, RehearsalOptions, RunContext, Stage, run_stages

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _quiet() -> object:
    from rich.console import Console

    return Console(file=io.StringIO())


def _first(names: tuple[str, ...]) -> list[Stage]:
    by_name = {s.name: s for s in lifecycle.lifecycle_stages(RehearsalOptions(quick=True))}
    return [by_name[n] for n in names]


def test_a_batch_the_dag_rejects_fails_the_train_stage(tmp_path: Path) -> None:
    def bad_data(ctx: RunContext) -> Evidence:
        evidence = base.prepare_data(ctx)
        path = Path(ctx.values["data_file"])
        path.write_text(path.read_text().replace("month", "year", 1))  # a contract column renamed
        return evidence

    stages = [*_first(("emulator", "deploy")), Stage("data", bad_data, "data", lambda e, c: None)]
    stages += _first(("train",))
    ctx = RunContext(options=RehearsalOptions(out=tmp_path, quick=True), out=tmp_path)
    summary = run_stages(stages, ctx, console=_quiet())  # type: ignore[arg-type]
    assert summary.exit_code == EXIT_STAGE_FAILED
    assert summary.failed is not None
    assert summary.failed.stage == "train"
    assert "the training DAG ended failed" in str(summary.failed.reason)
    assert "'validate': 'failed'" in str(summary.failed.reason)
    assert summary.message.startswith("rehearsal failed at stage 'train'")


def test_a_package_without_inference_code_fails_the_deploy_model_stage(tmp_path: Path) -> None:
    def register_codeless(ctx: RunContext) -> Evidence:
        assert ctx.emulator is not None
        assert ctx.deployment is not None
        outputs = ctx.deployment.outputs
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            data = b"not a model"
            info = tarfile.TarInfo("model.joblib")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        key = "models/churn/codeless/output/model.tar.gz"
        ctx.emulator.client("s3").put_object(
            Bucket=outputs["artifactsBucket"], Key=key, Body=buffer.getvalue()
        )
        from rehearsal.training import published_sklearn_image

        arn = ctx.emulator.client("sagemaker").create_model_package(
            ModelPackageGroupName=outputs["modelPackageGroupName"],
            ModelApprovalStatus="Approved",
            InferenceSpecification={
                "Containers": [
                    {
                        "Image": published_sklearn_image(ctx.emulator.region, "1.9-0"),
                        "ModelDataUrl": f"s3://{outputs['artifactsBucket']}/{key}",
                    }
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
        )["ModelPackageArn"]
        ctx.values["packages"] = [arn]
        return {"package_arn": arn}

    stages = [*_first(("emulator", "deploy")), Stage("register", register_codeless, "r", lambda e, c: None)]
    stages += _first(("deploy-model",))
    ctx = RunContext(options=RehearsalOptions(out=tmp_path, quick=True), out=tmp_path)
    summary = run_stages(stages, ctx, console=_quiet())  # type: ignore[arg-type]
    assert summary.exit_code == EXIT_STAGE_FAILED
    assert summary.failed is not None
    assert summary.failed.stage == "deploy-model"
    assert "not InService" in str(summary.failed.reason)
