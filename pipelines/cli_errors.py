"""The one place the ``mlops`` commands turn errors into a message and an exit code.

A :class:`~pipelines.errors.PipelineError` prints its message (and hint) and exits with its
``exit_code``; an AWS error a setting fixes is translated first (:func:`pipelines.errors.from_aws_error`);
any other AWS error is a failed step (exit 1). Everything else (a ``ValueError`` from a library, a
``KeyError``...) is a bug and propagates with its traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from pipelines.errors import ExitCode, PipelineError, from_aws_error


def print_error(error: PipelineError, console: Console | None = None) -> None:
    """Print ``error`` the way every command does: a red head line, the message, the hint."""
    console = console or Console(stderr=True)
    from pipelines.validate import BatchValidationError

    head = "batch rejected" if isinstance(error, BatchValidationError) else "error:"
    separator = "\n" if isinstance(error, BatchValidationError) else " "
    console.print(f"[bold red]{head}[/]{separator}{escape(str(error))}", soft_wrap=True, highlight=False)
    if error.hint:
        console.print(f"[yellow]hint:[/] {escape(error.hint)}", soft_wrap=True, highlight=False)


@contextmanager
def cli_errors(
    console: Console | None = None, on_error: Callable[[BaseException], None] | None = None
) -> Iterator[None]:
    """Run a command body: a :class:`PipelineError` (or a translated AWS error) exits with its code.

    ``on_error`` runs first for every handled error (e.g. to print the run id of a failed run).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except PipelineError as error:
        if on_error is not None:
            on_error(error)
        print_error(error, console)
        raise typer.Exit(error.exit_code) from None
    except (ClientError, BotoCoreError) as error:
        if on_error is not None:
            on_error(error)
        translated = from_aws_error(error) or PipelineError(f"AWS: {error}")
        print_error(translated, console)
        raise typer.Exit(translated.exit_code) from None


__all__ = ["ExitCode", "cli_errors", "print_error"]
