"""``mlops pipeline fetch-model``: download a registered model and unpack it for ``mlops serve``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def fetch_model_command(
    model_dir: Annotated[
        Path,
        typer.Option(
            "--model-dir", "-d", help="Folder to unpack into (what `mlops serve --model-dir` takes)."
        ),
    ] = Path("model"),
    package_arn: Annotated[
        str | None, typer.Option(help="Model package ARN (default: latest approved).")
    ] = None,
    group: Annotated[
        str | None, typer.Option(help="Model package group (default: the model_package_group_name setting).")
    ] = None,
    outputs: Annotated[
        Path | None,
        typer.Option(
            "--outputs", "-o", envvar="MLOPS_OUTPUTS_FILE", help="Stack outputs JSON (mlops synth --outputs)."
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Unpack into a folder that is not empty.")] = False,
) -> None:
    """Download a model package's model.tar.gz (by ARN, or the group's latest approved) and unpack it safely."""
    from pipelines.aws import AwsClients
    from pipelines.contract_cli import pipeline_errors
    from pipelines.fetch import fetch_model
    from pipelines.settings import load_settings

    with pipeline_errors():
        fetched = fetch_model(AwsClients(load_settings(outputs)), model_dir, package_arn, group, overwrite)
    typer.echo(f"fetched {fetched.model_package_arn}")
    typer.echo(f"  from {fetched.model_data_url}")
    typer.echo(f"  into {fetched.model_dir} ({len(fetched.files)} files)")
    typer.echo(f"serve it: mlops serve --model-dir {fetched.model_dir}")
