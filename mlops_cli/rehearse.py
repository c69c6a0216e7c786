"""``mlops rehearse``: the platform's lifecycle on an emulated AWS account, every claim checked."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def rehearse(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for summary.json, report.html, outputs.json and the data.")
    ] = Path("rehearsal-report"),
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Your dataset (CSV or Parquet) instead of the generated churn data."),
    ] = None,
    contract: Annotated[
        Path | None, typer.Option("--contract", help="The dataset contract (YAML) describing --data.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated data.")] = 42,
    quick: Annotated[
        bool, typer.Option("--quick", help="Reduced variant (smaller data), as CI runs it.")
    ] = False,
    tune: Annotated[
        bool,
        typer.Option("--tune", help="Train the first model through a (bounded) hyperparameter tuning job."),
    ] = False,
    ingest_features: Annotated[
        bool,
        typer.Option(
            "--ingest-features",
            help="Give the feature groups an online store, so the feature job also PutRecords every row "
            "(about 70 s more per training run on the emulator; the offline store is written either way).",
        ),
    ] = False,
) -> None:
    """Rehearse the platform offline: start the emulator, deploy dev, then run the pipeline on it.

    Exits 0 when every stage's claim held, 1 naming the stage and the reason when one did not,
    2 for bad options and 130 when interrupted. Nothing is left running on exit.
    """
    from rich.console import Console

    from rehearsal.run import EXIT_BAD_OPTIONS, RehearsalOptions, RehearsalOptionsError
    from rehearsal.run import rehearse as run

    err = Console(stderr=True)
    # Absolute paths: the emulator's job folders and Airflow's SQLite URL break on a relative --out.
    options = RehearsalOptions(
        out=out.absolute(),
        data=data.absolute() if data else None,
        contract=contract.absolute() if contract else None,
        seed=seed,
        quick=quick,
        tune=tune,
        ingest_features=ingest_features,
    )
    try:
        options.validated()
    except RehearsalOptionsError as exc:
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True, highlight=False)
        raise typer.Exit(EXIT_BAD_OPTIONS) from None
    summary = run(options, console=err)
    if summary.exit_code:
        raise typer.Exit(summary.exit_code)
