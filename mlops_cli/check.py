"""``mlops check``: run the policy pack over a stack's offline synth and report violations."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

EXIT_VIOLATIONS = 1
EXIT_BAD_INPUT = 2


def check(
    stack: Annotated[
        str, typer.Option("--stack", "-s", help="Stack name: reads stacks/Pulumi.<stack>.yaml.")
    ] = "dev",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    stacks_dir: Annotated[
        Path | None, typer.Option("--stacks-dir", help="Folder holding Pulumi.<stack>.yaml files.")
    ] = None,
) -> None:
    """Check a stack against the platform's policy pack, offline (no Pulumi CLI or AWS account).

    Prints violations grouped by level (mandatory, advisory, accepted exceptions) with the
    resource, the rule, why it matters and how to fix it. Exit codes: 0 no mandatory violation,
    1 mandatory violations found, 2 bad input (unknown stack, invalid stack config).
    """
    from policies.check import check_stack
    from stacks.config import ConfigError

    err = Console(stderr=True)
    try:
        if as_json:
            report = check_stack(stack, stacks_dir)
        else:
            with err.status(f"synthesizing and checking stack [bold]{stack}[/]..."):
                report = check_stack(stack, stacks_dir)
    except (ConfigError, FileNotFoundError) as exc:
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True, highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    if as_json:
        json.dump(report.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print(report, Console())
    if report.blocking:
        raise typer.Exit(EXIT_VIOLATIONS)


def _print(report: object, console: Console) -> None:
    from policies.check import CheckReport
    from policies.core import Level
    from policies.engine import all_rules

    assert isinstance(report, CheckReport)
    groups = [
        ("mandatory", "bold red", [v for v in report.violations if v.blocking]),
        (
            "advisory",
            "yellow",
            [v for v in report.violations if v.level is Level.ADVISORY and not v.accepted],
        ),
        ("accepted exception", "cyan", [v for v in report.violations if v.accepted]),
    ]
    for label, style, items in groups:
        if not items:
            continue
        table = Table(title=f"[{style}]{label}: {len(items)}[/]", show_lines=True, expand=True)
        table.add_column("resource", overflow="fold", ratio=2)
        table.add_column("rule", overflow="fold", ratio=2)
        table.add_column("violation", overflow="fold", ratio=3)
        table.add_column("why it matters / how to fix", overflow="fold", ratio=4)
        for v in items:
            note = f"{v.rule.why}\n[bold]Fix:[/] {v.rule.fix}"
            if v.accepted:
                note = f"[bold]Accepted ({v.accepted.name}):[/] {v.accepted.reason}"
            table.add_row(
                f"{v.resource.name}\n[dim]{v.resource.type}[/]",
                f"{v.rule.id}\n[dim]{', '.join(v.rule.mirrors)}[/]",
                v.message,
                note,
            )
        console.print(table)
    blocking = len(report.blocking)
    verdict = "[bold red]FAILED[/]" if blocking else "[bold green]passed[/]"
    console.print(
        f"stack [bold]{report.stack}[/] ({report.environment}): {report.resources} resources, "
        f"{len(all_rules())} rules: {verdict}: {blocking} mandatory, "
        f"{sum(1 for v in report.violations if v.level is Level.ADVISORY and not v.accepted)} advisory, "
        f"{sum(1 for v in report.violations if v.accepted)} accepted",
        highlight=False,
    )
