"""``mlops serve``: run the inference server locally or as a custom container's entry point.

Importing this module imports nothing heavy; the HTTP server, scikit-learn and pandas load inside the
command.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from pipelines.cli_errors import cli_errors
from pipelines.cli_options import LogLevel


def serve(
    model_dir: Annotated[
        Path, typer.Option("--model-dir", help="Directory holding metadata.json and model.joblib.")
    ] = Path("model"),
    host: Annotated[str, typer.Option(help="Interface to bind; 0.0.0.0 inside a container.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (SageMaker's contract is 8080).")] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes (each holds a copy of the model).")] = 1,
    max_body_mb: Annotated[float, typer.Option(help="Largest accepted request body in MB.")] = 6.0,
    log_level: Annotated[LogLevel, typer.Option(help="Log level.")] = LogLevel.INFO,
) -> None:
    """Serve a model directory on /ping and /invocations (the SageMaker serving contract).

    Exit codes as every ``mlops`` command: 2 when the model directory is rejected (missing file,
    bad checksum), 3 when something is not configured.
    """
    with cli_errors():
        from pipelines.serving.server import serve as run_server

        run_server(
            model_dir,
            host=host,
            port=port,
            workers=max(1, workers),
            max_body_bytes=int(max_body_mb * 1024 * 1024),
            log_level=log_level.value,
        )


def container_main(argv: list[str]) -> None:
    """Entry point of a custom serving container: SageMaker runs the image with the argument ``serve``.

    Port, workers and model directory come from SageMaker's environment (``SAGEMAKER_BIND_TO_PORT``,
    ``SAGEMAKER_MODEL_SERVER_WORKERS``, ``SM_MODEL_DIR``) with the contract's defaults.
    """
    from pipelines.serving.server import DEFAULT_PORT, SAGEMAKER_MODEL_DIR
    from pipelines.serving.server import serve as run_server

    args = [a for a in argv if a != "serve"]
    if args:
        raise SystemExit(f"unexpected arguments {args}: the container takes only 'serve'")
    run_server(
        os.environ.get("SM_MODEL_DIR", SAGEMAKER_MODEL_DIR),
        host="0.0.0.0",  # noqa: S104 - a serving container must listen on its network interface
        port=int(os.environ.get("SAGEMAKER_BIND_TO_PORT", str(DEFAULT_PORT))),
        workers=int(os.environ.get("SAGEMAKER_MODEL_SERVER_WORKERS", str(os.cpu_count() or 1))),
        log_level=os.environ.get("SERVING_LOG_LEVEL", "info"),
    )
