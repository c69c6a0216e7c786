"""The rehearsal's stage runner: stages as data, each claim checked, nothing left running.

A :class:`Stage` is a name, a function that does the work and returns its evidence (a JSON-friendly
dict), the claim it makes, and a check that reads the evidence (and may look at the emulator) and
returns the reason the claim does not hold, or None. :func:`run_stages` runs the stages in order
with a progress display, stops at the first stage whose function raises or whose check fails, and
always closes the :class:`RunContext` (emulator stopped, child processes ended), also on Ctrl-C.
``summary.json`` is rewritten after every stage, so a run cut short still leaves its evidence.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from rehearsal.deploy import DeployResult
    from rehearsal.emulator import Emulator

SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.html"

EXIT_OK = 0
EXIT_STAGE_FAILED = 1
EXIT_BAD_OPTIONS = 2
EXIT_INTERRUPTED = 130

Evidence = dict[str, Any]


class RehearsalOptionsError(ValueError):
    """The command line asks for something that cannot run (missing file, unparsable contract)."""


@dataclass(frozen=True)
class RehearsalOptions:
    """What the user asked for on the command line."""

    out: Path = Path("rehearsal-report")
    data: Path | None = None
    contract: Path | None = None
    seed: int = 42
    quick: bool = False
    tune: bool = False
    """Train the first model through a hyperparameter tuning job (rehearsal.tuning_stage)."""
    ingest_features: bool = False
    """Give the feature groups an online store (as staging and prod have), so the feature job also
    PutRecords every row (``TargetStores=["OnlineStore"]``). Off by default: one PutRecord per row costs
    about 4 ms on the emulator, about 70 s per 20,000-row training run, which the 5-minute rehearsal
    cannot carry. The offline store is written either way (one Iceberg commit per batch)."""

    @property
    def rows(self) -> int:
        """Rows of generated data: small for the CI variant."""
        return 2_000 if self.quick else 20_000

    def validated(self) -> RehearsalOptions:
        """Check the options before anything starts; raise :class:`RehearsalOptionsError` naming the fix."""
        if (self.data is None) != (self.contract is None):
            raise RehearsalOptionsError(
                "--data and --contract go together: give the dataset file and the contract describing it"
            )
        if self.data is not None:
            if not self.data.is_file():
                raise RehearsalOptionsError(f"--data {self.data}: no such file")
            if self.data.suffix not in (".csv", ".parquet"):
                raise RehearsalOptionsError(f"--data {self.data}: must be a .csv or .parquet file")
        if self.contract is not None:
            from pipelines.contract import ContractError, load_contract

            if not self.contract.is_file():
                raise RehearsalOptionsError(f"--contract {self.contract}: no such file")
            try:
                load_contract(self.contract)
            except ContractError as exc:
                raise RehearsalOptionsError(f"--contract {self.contract}: {exc}") from None
        if self.out.exists() and not self.out.is_dir():
            raise RehearsalOptionsError(f"--out {self.out}: exists and is not a folder")
        return self


@dataclass
class TimelineEvent:
    """Something the report's timeline shows: a deployment, a traffic split, an alarm transition."""

    at: float
    """Seconds since the rehearsal started."""
    kind: str
    label: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunContext:
    """Shared state of one rehearsal: options, output folder, emulator, deploy, and what to clean up."""

    options: RehearsalOptions
    out: Path
    started: float = field(default_factory=time.monotonic)
    started_at: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    emulator: Emulator | None = None
    deployment: DeployResult | None = None
    values: dict[str, Any] = field(default_factory=dict)
    """What stages hand to later stages (data file, contract, ingested batch...)."""
    timeline: list[TimelineEvent] = field(default_factory=list)
    drift_reports: list[Any] = field(default_factory=list)
    """``pipelines.monitoring.drift.DriftReport`` objects for the report's drift plots."""
    metrics: dict[str, float] = field(default_factory=dict)
    alarms_fired: list[dict[str, Any]] = field(default_factory=list)
    _cleanups: list[tuple[str, Callable[[], None]]] = field(default_factory=list)
    _children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def elapsed(self) -> float:
        """Seconds since the rehearsal started."""
        return time.monotonic() - self.started

    def event(self, kind: str, label: str, **detail: Any) -> None:
        """Add an event to the timeline at the current time."""
        self.timeline.append(TimelineEvent(round(self.elapsed(), 3), kind, label, detail))

    def on_close(self, name: str, cleanup: Callable[[], None]) -> None:
        """Run ``cleanup`` when the rehearsal ends (last registered first), whatever the outcome."""
        self._cleanups.append((name, cleanup))

    def spawn(self, args: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """Start a child process that :meth:`close` ends (its own process group, so its children too).

        ``kwargs`` go to :class:`subprocess.Popen` (binary pipes: no ``text``/``encoding``).
        """
        child: Any = subprocess.Popen(list(args), start_new_session=True, **kwargs)  # noqa: S603
        self._children.append(child)
        return child

    def close(self) -> list[str]:
        """End child processes and run the cleanups; return the problems met (never raises)."""
        problems: list[str] = []
        for child in reversed(self._children):
            try:
                end_process_group(child)
            except Exception as exc:  # keep ending the others
                problems.append(f"child {child.pid}: {exc}")
        self._children.clear()
        while self._cleanups:
            name, cleanup = self._cleanups.pop()
            try:
                cleanup()
            except Exception as exc:
                problems.append(f"{name}: {exc}")
        return problems


def end_process_group(child: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """End ``child`` and its process group: SIGTERM, then SIGKILL after ``grace`` seconds."""
    if child.poll() is not None:
        return
    try:
        os.killpg(child.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        child.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=grace)


@dataclass(frozen=True)
class Stage:
    """One step of the rehearsal and the claim it must prove."""

    name: str
    run: Callable[[RunContext], Evidence]
    claim: str
    check: Callable[[Evidence, RunContext], str | None]
    """Returns why the claim does not hold (None: it holds)."""
    headline: Callable[[Evidence], str] | None = None
    """One short line of what the stage showed, for the terminal summary (None: an evidence excerpt)."""


@dataclass
class StageResult:
    """How a stage went: verdict ``passed``, ``failed``, ``interrupted`` or ``not run``."""

    stage: str
    claim: str
    verdict: str
    duration_s: float
    evidence: Evidence = field(default_factory=dict)
    reason: str | None = None
    started_s: float | None = None
    headline: str | None = None
    """The stage's one-line headline (set when it passed and has a headline function)."""

    def to_json(self) -> dict[str, Any]:
        """The shape written to ``summary.json``."""
        return {
            "stage": self.stage,
            "claim": self.claim,
            "verdict": self.verdict,
            "duration_s": round(self.duration_s, 3),
            "started_s": None if self.started_s is None else round(self.started_s, 3),
            "reason": self.reason,
            "headline": self.headline,
            "evidence": self.evidence,
        }


@dataclass
class RunSummary:
    """The outcome of a rehearsal."""

    results: list[StageResult]
    exit_code: int
    started_at: str
    duration_s: float
    cleanup_problems: list[str] = field(default_factory=list)

    @property
    def failed(self) -> StageResult | None:
        """The stage that stopped the run, if any."""
        return next((r for r in self.results if r.verdict in ("failed", "interrupted")), None)

    @property
    def message(self) -> str:
        """One line: passed, or which stage failed and why."""
        failed = self.failed
        if failed is None:
            return f"rehearsal passed: {len(self.results)} stages in {self.duration_s:.1f} s"
        return f"rehearsal {failed.verdict} at stage '{failed.stage}': {failed.reason}"

    def to_json(self) -> dict[str, Any]:
        """``summary.json``: overall verdict plus one entry per stage."""
        return {
            "verdict": "passed" if self.exit_code == EXIT_OK else "failed",
            "exit_code": self.exit_code,
            "message": self.message,
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 3),
            "cleanup_problems": self.cleanup_problems,
            "stages": [r.to_json() for r in self.results],
        }


def _jsonable(value: Any) -> Any:
    """Evidence as plain JSON (paths and other objects become strings)."""
    return json.loads(json.dumps(value, default=str))


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C, and Ctrl-C as KeyboardInterrupt, while the stages run (main thread only)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, _raise)
    # Ctrl-C must interrupt even when this process inherited SIGINT ignored (a child of a shell's
    # background job, or of a process that ignores it: POSIX keeps SIG_IGN across exec, and Python
    # then installs no KeyboardInterrupt handler) or something imported earlier replaced the handler.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def run_stages(
    stages: Sequence[Stage],
    ctx: RunContext,
    *,
    console: Console | None = None,
    finish: Callable[[RunContext, RunSummary], None] | None = None,
) -> RunSummary:
    """Run ``stages`` in order; stop at the first failure; always close ``ctx``; write ``summary.json``.

    ``finish`` runs after the last stage and before ``ctx`` closes (while the emulator still answers):
    the report uses it to read alarm history. The exit code is 0 (all claims held), 1 (a stage failed)
    or 130 (interrupted).
    """
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = console or Console(stderr=True)
    results = [StageResult(s.name, s.claim, "not run", 0.0) for s in stages]
    exit_code = EXIT_OK
    interrupted: BaseException | None = None
    ctx.out.mkdir(parents=True, exist_ok=True)

    def summary() -> RunSummary:
        return RunSummary(results, exit_code, ctx.started_at, ctx.elapsed())

    try:
        with _sigterm_as_interrupt():
            progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                TextColumn("[dim]{task.fields[claim]}"),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            )
            with progress:
                for index, stage in enumerate(stages):
                    task = progress.add_task(stage.name, total=1, claim=stage.claim)
                    start = time.monotonic()
                    result = results[index]
                    result.started_s = ctx.elapsed()
                    try:
                        evidence = _jsonable(stage.run(ctx) or {})
                        result.evidence = evidence
                        reason = stage.check(evidence, ctx)
                    except KeyboardInterrupt as exc:
                        result.verdict, result.reason = "interrupted", f"interrupted ({str(exc) or 'Ctrl-C'})"
                        result.duration_s = time.monotonic() - start
                        exit_code = EXIT_INTERRUPTED
                        interrupted = exc
                        break
                    except Exception as exc:
                        reason = f"{type(exc).__name__}: {exc}"
                    result.duration_s = time.monotonic() - start
                    progress.update(task, completed=1)
                    if reason is not None:
                        result.verdict, result.reason = "failed", reason
                        exit_code = EXIT_STAGE_FAILED
                        break
                    result.verdict = "passed"
                    result.headline = stage_headline(stage, result.evidence)
                    write_summary(summary(), ctx.out)
            if finish is not None:
                try:
                    finish(ctx, summary())
                except Exception as exc:
                    console.print(f"[yellow]report:[/] {type(exc).__name__}: {exc}")
    except KeyboardInterrupt as exc:  # a second Ctrl-C while finishing
        exit_code, interrupted = EXIT_INTERRUPTED, exc
    finally:
        problems = ctx.close()
    final = RunSummary(results, exit_code, ctx.started_at, ctx.elapsed(), problems)
    write_summary(final, ctx.out)
    if interrupted is not None:
        console.print("[yellow]interrupted:[/] the emulator and child processes were stopped")
    return final


def write_summary(summary: RunSummary, out: Path) -> Path:
    """Write ``summary.json`` into ``out``."""
    path = out / SUMMARY_FILE
    path.write_text(json.dumps(summary.to_json(), indent=2) + "\n")
    return path


HEADLINE_LIMIT = 100
"""Characters of a headline or evidence excerpt in the terminal table (a failure's reason is never cut)."""


def stage_headline(stage: Stage, evidence: Evidence) -> str | None:
    """``stage.headline(evidence)``; None when the stage has none or it fails (the excerpt stands in)."""
    if stage.headline is None:
        return None
    try:
        text = stage.headline(evidence).strip()
    except Exception:  # a headline is a summary of evidence already checked: never fail a stage for it
        return None
    return text or None


def evidence_excerpt(evidence: Evidence, items: int = 3, limit: int = HEADLINE_LIMIT) -> str:
    """The first few short evidence values as ``key=value``: what a stage without a headline shows."""
    parts = [f"{key}={_short(value, 40)}" for key, value in evidence.items() if _is_scalar(value)]
    if not parts:
        parts = [f"{key}={_short(value, 40)}" for key, value in evidence.items()]
    return _short(", ".join(parts[:items]), limit) if parts else ""


def summary_line(result: StageResult) -> str:
    """What the summary table says of a stage: the reason in full when it failed, else its headline."""
    if result.verdict in ("failed", "interrupted"):
        return result.reason or result.verdict
    if result.verdict == "not run":
        return ""
    return _short(result.headline, HEADLINE_LIMIT) if result.headline else evidence_excerpt(result.evidence)


def print_summary(summary: RunSummary, console: Console) -> None:
    """The terminal summary: stage, duration, verdict and one headline per stage.

    The raw evidence is in ``summary.json`` and the HTML report; a failed stage shows its reason in full.
    """
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="rehearsal summary", title_justify="left")
    table.add_column("stage", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("what it showed", overflow="fold")
    colours = {"passed": "green", "failed": "red", "interrupted": "yellow", "not run": "dim"}
    for result in summary.results:
        colour = colours.get(result.verdict, "white")
        line = escape(summary_line(result))
        table.add_row(
            result.stage,
            f"{result.duration_s:.1f} s" if result.verdict != "not run" else "",
            f"[{colour}]{result.verdict}[/]",
            f"[{colour}]{line}[/]" if result.verdict in ("failed", "interrupted") else line,
        )
    console.print(table)
    style = "green" if summary.exit_code == EXIT_OK else "red"
    console.print(f"[bold {style}]{escape(summary.message)}[/]", soft_wrap=True, highlight=False)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and not (isinstance(value, str) and len(value) > 80)


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def rehearse(options: RehearsalOptions, *, console: Console | None = None) -> RunSummary:
    """Run the rehearsal's stages (:func:`rehearsal.stages.default_stages`) and write the report."""
    from rich.console import Console

    from rehearsal.report import write_report
    from rehearsal.stages import default_stages

    console = console or Console(stderr=True)
    options = options.validated()
    ctx = RunContext(options=options, out=options.out)

    def finish(ctx: RunContext, summary: RunSummary) -> None:
        from rehearsal.report import collect_alarm_history

        collect_alarm_history(ctx)

    summary = run_stages(default_stages(options), ctx, console=console, finish=finish)
    report = write_report(summary, ctx)
    print_summary(summary, console)
    console.print(f"[dim]report: {report}  summary: {options.out / SUMMARY_FILE}[/]")
    return summary
