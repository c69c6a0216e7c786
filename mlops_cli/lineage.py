"""``mlops lineage``: what is serving and where it came from (endpoint -> package -> run -> data -> code)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def lineage(
    endpoint: Annotated[
        str | None,
        typer.Option("--endpoint", "-e", help="One endpoint (default: every endpoint of the environment)."),
    ] = None,
    package: Annotated[
        str | None, typer.Option("--package", "-p", help="One model package ARN instead of endpoints.")
    ] = None,
    outputs: Annotated[
        Path | None,
        typer.Option(
            "--outputs", "-o", envvar="MLOPS_OUTPUTS_FILE", help="Stack outputs JSON (mlops synth --outputs)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the lineage document as JSON.")] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 3 when a link of the chain is not recorded.")
    ] = False,
) -> None:
    """Trace what is serving: endpoint -> variants -> model package (approval) -> MLflow run -> training job
    -> data batches (URIs, hashes) -> validation reports -> contract -> code version.

    Reads only the model registry, the MLflow tracking store and S3, so it answers the same on AWS and
    in the rehearsal. Links that were never recorded are listed as missing, with what to do.
    """
    from rich.console import Console

    from pipelines.aws import AwsClients
    from pipelines.cli_errors import cli_errors
    from pipelines.errors import ExitCode, InputRejectedError
    from pipelines.jsonio import strict_json
    from pipelines.provenance import lineage as trace
    from pipelines.provenance import missing_links, render_tree
    from pipelines.settings import load_settings

    err = Console(stderr=True)
    with cli_errors(err):
        if endpoint and package:
            raise InputRejectedError("pass --endpoint or --package, not both")
        document = trace(AwsClients(load_settings(outputs)), endpoint=endpoint, package_arn=package)
        if as_json:
            typer.echo(strict_json(document))
        else:
            Console().print(render_tree(document))
        gaps = missing_links(document)
        if gaps:
            err.print(
                f"[yellow]{len(gaps)} link(s) not recorded[/] (listed as missing above)", highlight=False
            )
            if strict:
                raise typer.Exit(ExitCode.NOT_CONFIGURED)
