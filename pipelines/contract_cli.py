"""``mlops contract ...``: draft a contract from your data (``init``) and check one offline (``check``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from pipelines.errors import PipelineError

contract_app = typer.Typer(
    name="contract",
    help="Dataset contracts: draft one from a CSV/Parquet file, check one before any run.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@contextmanager
def pipeline_errors() -> Iterator[None]:
    """Print a :class:`PipelineError` (and its hint) without a traceback and exit with its code."""
    try:
        yield
    except PipelineError as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        if error.hint:
            typer.echo(f"hint: {error.hint}", err=True)
        raise typer.Exit(error.exit_code) from None


@contract_app.command("init")
def init(
    data: Annotated[Path, typer.Argument(help="CSV or Parquet file to draft the contract from.")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Contract file to write (default: contracts/<name>.yaml)."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Contract name (default: from the file name).")] = None,
    target: Annotated[
        str | None, typer.Option(help="Column to predict (default: guessed; check it).")
    ] = None,
    key: Annotated[
        list[str] | None, typer.Option(help="Unique key column (repeat for a compound key).")
    ] = None,
    guess_key: Annotated[bool, typer.Option(help="Guess a unique key column from the data.")] = False,
    task: Annotated[
        str | None, typer.Option(help="binary_classification or regression (default: from the target).")
    ] = None,
    max_categories: Annotated[
        int, typer.Option(help="Most distinct texts a categorical column may have.")
    ] = 20,
    delimiter: Annotated[str, typer.Option(help="CSV field delimiter.")] = ",",
    force: Annotated[bool, typer.Option(help="Overwrite the output file.")] = False,
) -> None:
    """Draft a contract from DATA: types, nulls, ranges, categories, features, task and gate defaults."""
    from pipelines.contract_init import DraftError, DraftOptions, contract_name, init_contract

    with pipeline_errors():
        if task not in {None, "binary_classification", "regression"}:
            raise DraftError(f"--task {task!r} is not a task", hint="use binary_classification or regression")
        options = DraftOptions(
            name=name,
            target=target,
            key=list(key or []),
            guess_key=guess_key,
            task=task,  # pyright: ignore[reportArgumentType] - checked just above
            max_categories=max_categories,
        )
        chosen = output or Path("contracts") / f"{name or contract_name(data.stem)}.yaml"
        draft = init_contract(data, chosen, options, overwrite=force, delimiter=delimiter)
    typer.echo(f"wrote {chosen} ({len(draft.contract['columns'])} columns, task {draft.contract['task']})")
    for note in draft.notes:
        typer.echo(f"  - {note}")
    typer.echo(f"next: edit it, then run `mlops contract check {chosen}`")


@contract_app.command("check")
def check(file: Annotated[Path, typer.Argument(help="Contract YAML file.")]) -> None:
    """Check a contract offline: gate metrics, estimator and hyperparameters, features, split, target, keys."""
    from pipelines.contract_check import require_valid_contract

    with pipeline_errors():
        require_valid_contract(file)
    typer.echo(f"{file}: ok")
