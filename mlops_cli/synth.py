"""``mlops synth``: print a stack's resource graph, computed offline under Pulumi's mock engine."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pipelines.errors import ExitCode


def synth(
    stack: Annotated[
        str, typer.Option("--stack", "-s", help="Stack name: reads stacks/Pulumi.<stack>.yaml.")
    ] = "dev",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print every resource as JSON instead of a summary.")
    ] = False,
    outputs: Annotated[bool, typer.Option("--outputs", help="Print the stack outputs as JSON.")] = False,
    stacks_dir: Annotated[
        Path | None, typer.Option("--stacks-dir", help="Folder holding Pulumi.<stack>.yaml files.")
    ] = None,
) -> None:
    """Synthesize a stack offline (no Pulumi CLI, AWS account or network) and print its resources.

    The default output is a summary table by component and resource type. ``--json`` prints a list
    of ``{"urn", "type", "name", "parent", "inputs", ...}`` objects, the inputs as the provider would
    receive them.
    """
    from stacks.config import ConfigError
    from stacks.synth import STACKS_DIR, synthesize

    err = Console(stderr=True)
    try:
        if as_json or outputs:
            result = synthesize(stack, stacks_dir or STACKS_DIR)
        else:
            with err.status(f"synthesizing stack [bold]{stack}[/] under the mock engine..."):
                result = synthesize(stack, stacks_dir or STACKS_DIR)
    except (ConfigError, FileNotFoundError) as exc:
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True, highlight=False)
        raise typer.Exit(ExitCode.INPUT_REJECTED) from None
    if as_json:
        json.dump([r.to_json() for r in result.resources], sys.stdout, indent=2, sort_keys=False)
        sys.stdout.write("\n")
        return
    if outputs:
        json.dump(result.outputs, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    _summary(result, Console())


def _summary(result: object, console: Console) -> None:
    from stacks.synth import SynthResult

    assert isinstance(result, SynthResult)
    components = [r for r in result.resources if not r.custom]
    by_parent: dict[str | None, Counter[str]] = {}
    for r in result.resources:
        if r.custom:
            by_parent.setdefault(r.parent, Counter())[r.type] += 1
    table = Table(
        title=f"stack [bold]{result.stack}[/]: {sum(1 for r in result.resources if r.custom)} resources"
    )
    table.add_column("component")
    table.add_column("resource type", overflow="fold")
    table.add_column("count", justify="right")
    table.add_column("protected", justify="right")
    for comp in components:
        counts = by_parent.get(comp.urn, Counter())
        first = True
        for token, n in sorted(counts.items()):
            protected = sum(
                1 for r in result.resources if r.parent == comp.urn and r.type == token and r.protect
            )
            table.add_row(
                f"{comp.type.split(':')[-1]} {comp.name}" if first else "",
                token,
                str(n),
                str(protected) if protected else "",
            )
            first = False
        table.add_section()
    loose = by_parent.get(None, Counter())
    for token, n in sorted(loose.items()):
        table.add_row("(stack)", token, str(n), "")
    console.print(table)
    console.print(
        f"[dim]{len(result.outputs)} stack outputs; `mlops synth --stack {result.stack} --outputs` lists them.[/]"
    )
