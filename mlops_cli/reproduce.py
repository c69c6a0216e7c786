"""``mlops reproduce <package-arn>``: re-train a registered model from its dataset manifest and compare."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, cast

import typer


def reproduce(
    package_arn: Annotated[str, typer.Argument(help="Model package ARN to reproduce.")],
    on: Annotated[
        str,
        typer.Option(
            "--on",
            help="Where training runs: 'local' (this process) or 'training-job' (a SageMaker training job).",
        ),
    ] = "local",
    outputs: Annotated[
        Path | None,
        typer.Option(
            "--outputs", "-o", envvar="MLOPS_OUTPUTS_FILE", help="Stack outputs JSON (mlops synth --outputs)."
        ),
    ] = None,
) -> None:
    """Re-run training on the package's immutable dataset version; exit 1 when the result differs."""
    from pipelines.aws import AwsClients
    from pipelines.contract_cli import pipeline_errors
    from pipelines.reproduce import ReproductionMismatchError, reproduce_package
    from pipelines.settings import load_settings

    if on not in ("local", "training-job"):
        typer.echo(f"--on {on!r}: choose 'local' or 'training-job'", err=True)
        raise typer.Exit(2)
    with pipeline_errors():
        result = reproduce_package(
            AwsClients(load_settings(outputs)), package_arn, cast(Literal["local", "training-job"], on)
        )
        typer.echo(f"package  {result.package_arn}")
        typer.echo(f"dataset  {result.manifest_uri} (version {result.dataset_version})")
        for name in sorted(result.registered_metrics):
            typer.echo(
                f"  {name:<12} registered {result.registered_metrics[name]!r:<22} "
                f"reproduced {result.reproduced_metrics.get(name)!r}"
            )
        typer.echo(
            f"  model.joblib registered {result.registered_model_sha256[:16]}  "
            f"reproduced {result.reproduced_model_sha256[:16]}"
        )
        typer.echo(result.verdict())
        if not result.matches:
            raise ReproductionMismatchError(result.verdict())
