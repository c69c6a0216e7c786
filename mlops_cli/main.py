"""The ``mlops`` command: one front door for the platform's offline tools and pipeline steps.

Sub-commands import their modules lazily so ``mlops --help`` stays fast and the pipeline commands
never import Pulumi.
"""

from __future__ import annotations

import typer

from mlops_cli import check as check_cmd
from mlops_cli import lineage as lineage_cmd
from mlops_cli import rehearse as rehearse_cmd
from mlops_cli import reproduce as reproduce_cmd
from mlops_cli import synth as synth_cmd
from pipelines.cli import pipeline_app
from pipelines.contract_cli import contract_app
from pipelines.fetch_cli import fetch_model_command
from pipelines.monitoring import cli as monitor_cmd
from pipelines.serving import cli as serve_cmd

app = typer.Typer(
    name="mlops",
    help="MLOps platform blueprint: synthesize stacks offline, run pipeline steps, serve and monitor models.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
app.command("synth")(synth_cmd.synth)
app.command("rehearse")(rehearse_cmd.rehearse)
app.command("check")(check_cmd.check)
app.command("reproduce")(reproduce_cmd.reproduce)
app.command("lineage")(lineage_cmd.lineage)
app.command("serve")(serve_cmd.serve)
app.add_typer(monitor_cmd.app, name="monitor")
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(contract_app, name="contract")
pipeline_app.command("fetch-model")(fetch_model_command)


@app.callback()
def _root() -> None:
    """MLOps platform blueprint for AWS."""


if __name__ == "__main__":  # pragma: no cover
    app()
