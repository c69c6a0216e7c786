"""IAM in the rehearsal's stages: the enforcement switch, denials as stage failures, the final report.

* :func:`iam_mode` is the one switch: ``MLOPS_REHEARSAL_IAM`` = ``enforce`` (default: refuse what IAM
  refuses), ``record`` (decide and record, refuse nothing: to list every denial of a run at once) or
  ``off`` (no authorizer: every step uses the account's root keys, the pre-IAM behaviour);
* :func:`guarded` makes a stage fail on the first denial it caused, naming role, action, resource,
  the missing or denying statement and the component to fix (also when the refusal surfaced as some
  other error inside the step, e.g. a DAG task that failed);
* :func:`iam_stage` is the last stage: it writes ``iam.json`` (every authorized (role, action,
  resource), the denials, the unused grants per role) and puts the unused-grant report in
  ``summary.json``; a run that fails earlier writes ``iam.json`` at the failing stage.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rehearsal.run import Evidence, RunContext, Stage

if TYPE_CHECKING:
    from rehearsal.iam.authorizer import Authorizer

IAM_ENV = "MLOPS_REHEARSAL_IAM"
MODES = ("enforce", "record", "off")
RECORD_FILE = "iam.json"


def iam_mode() -> str:
    """The rehearsal's IAM mode from ``MLOPS_REHEARSAL_IAM`` (default ``enforce``)."""
    mode = os.environ.get(IAM_ENV, "enforce").strip().lower() or "enforce"
    if mode not in MODES:
        raise ValueError(f"{IAM_ENV}={mode!r}: use one of {', '.join(MODES)} (default enforce)")
    return mode


def authorizer_of_ctx(ctx: RunContext) -> Authorizer | None:
    """The running emulator's authorizer, or None."""
    from rehearsal.iam.identities import authorizer_of

    return authorizer_of(ctx.emulator)


def denial_problem(ctx: RunContext, since: int) -> str | None:
    """The stage failure for denials recorded after index ``since`` (None: none, or record mode)."""
    authorizer = authorizer_of_ctx(ctx)
    if authorizer is None or not authorizer.enforce:
        return None
    denials = authorizer.denials[since:]
    if not denials:
        return None
    first = denials[0]
    more = f" (+{len(denials) - 1} more denials, see {RECORD_FILE})" if len(denials) > 1 else ""
    statement = f" Statement: {first.statement.statement}." if first.statement is not None else ""
    return (
        f"IAM denied {first.action} on {first.resource} to role {first.role_arn} "
        f"(during {first.operation}): {first.decisive}.{statement} Fix: {first.hint}{more}"
    )


def guarded(stage: Stage) -> Stage:
    """``stage`` failing with the IAM denial it caused, in front of whatever else went wrong."""
    marks: dict[int, int] = {}

    def run(ctx: RunContext) -> Evidence:
        authorizer = authorizer_of_ctx(ctx)
        marks[id(ctx)] = len(authorizer.denials) if authorizer is not None else 0
        try:
            evidence = stage.run(ctx)
            _mark_stage(ctx, stage.name)
        except Exception as exc:
            _mark_stage(ctx, stage.name)
            problem = denial_problem(ctx, marks[id(ctx)])
            write_record(ctx)  # a failed run keeps its record of what each role did
            if problem is not None:
                raise IamStageError(problem) from exc
            raise
        return evidence

    def check(evidence: Evidence, ctx: RunContext) -> str | None:
        authorizer = authorizer_of_ctx(ctx)
        since = marks.get(id(ctx), 0)
        problem = denial_problem(ctx, since)
        if problem is not None:
            write_record(ctx)
            return problem
        if authorizer is not None and not authorizer.enforce:
            found = authorizer.denials[since:]
            if found:
                evidence["iam_denials_recorded"] = [d.as_dict() for d in found]
        try:
            reason = stage.check(evidence, ctx)
        finally:
            _mark_stage(ctx, stage.name)
        if reason is not None:
            write_record(ctx)
        return reason

    return Stage(stage.name, run, stage.claim, check, stage.headline)


def _mark_stage(ctx: RunContext, name: str) -> None:
    """Remember which authorized calls (by index) a stage made: ``ctx.values["iam_stages"]``."""
    authorizer = authorizer_of_ctx(ctx)
    if authorizer is None:
        return
    marks: list[tuple[str, int]] = ctx.values.setdefault("iam_stages", [])
    marks.append((name, len(authorizer.authorized)))  # calls below this index: this or earlier stages


def _stage_of(marks: list[tuple[str, int]], index: int) -> str:
    for name, end in marks:  # in the order the stages ran
        if index < end:
            return name
    return "after the stages"


class IamStageError(RuntimeError):
    """A stage failed because IAM refused one of its calls."""


def record(authorizer: Authorizer, stages: list[tuple[str, int]] | None = None) -> dict[str, Any]:
    """Every authorized call (deduplicated, counted, with the stage that made it), every denial, and
    the unused grants per role."""
    counts: dict[tuple[str, str, str, str, str], int] = {}
    for index, call in enumerate(authorizer.authorized):
        stage = _stage_of(stages or [], index)
        key = (call.role_arn, call.action, call.resource, call.operation, stage)
        counts[key] = counts.get(key, 0) + 1
    return {
        "enforced": authorizer.enforce,
        "calls": [
            {
                "role": role,
                "action": action,
                "resource": resource,
                "operation": operation,
                "stage": stage,
                "count": n,
            }
            for (role, action, resource, operation, stage), n in sorted(counts.items())
        ],
        "denials": [d.as_dict() for d in authorizer.denials],
        "unused_grants": authorizer.unused_grant_report().as_dict(),
    }


def write_record(ctx: RunContext) -> Path | None:
    """Write ``iam.json`` into the rehearsal's folder (None when the emulator has no IAM)."""
    authorizer = authorizer_of_ctx(ctx)
    if authorizer is None:
        return None
    path = ctx.out / RECORD_FILE
    path.write_text(json.dumps(record(authorizer, ctx.values.get("iam_stages")), indent=2) + "\n")
    ctx.values["iam_record"] = str(path)
    return path


def _iam_report(ctx: RunContext) -> Evidence:
    authorizer = authorizer_of_ctx(ctx)
    path = write_record(ctx)
    if authorizer is None or path is None:
        return {"iam": "off"}
    data = json.loads(path.read_text())
    roles = sorted({c["role"] for c in data["calls"]})
    unused = data["unused_grants"]
    return {
        "iam": "enforce" if authorizer.enforce else "record",
        "record_file": str(path),
        "roles_acting": roles,
        "authorized_calls": sum(c["count"] for c in data["calls"]),
        "distinct_calls": len(data["calls"]),
        "denials": len(data["denials"]),
        "unused_grants": {role: len(grants) for role, grants in unused["roles"].items()},
        "unused_grant_report": unused,
    }


def _check_iam_report(evidence: Evidence, ctx: RunContext) -> str | None:
    if evidence.get("iam") == "off":
        return None
    if not evidence["roles_acting"]:
        return "no call was made as a role: every step ran with the root keys"
    return None


def _iam_headline(evidence: Evidence) -> str:
    if evidence.get("iam") == "off":
        return "IAM enforcement off (MLOPS_REHEARSAL_IAM=off): every step ran with the root keys"
    unused = sum(evidence["unused_grants"].values())
    return (
        f"{evidence['iam']}: {evidence['authorized_calls']} calls by {len(evidence['roles_acting'])} roles, "
        f"{evidence['denials']} denied; {unused} granted actions no call used"
    )


def iam_stage() -> Stage:
    """The last stage: the record of what each role did, and the grants no rehearsed call used."""
    return Stage(
        "iam",
        _iam_report,
        "every step ran as its role; each role's calls and unused grants are recorded",
        _check_iam_report,
        _iam_headline,
    )


def with_iam(stages: list[Stage]) -> list[Stage]:
    """Each stage guarded by :func:`guarded`, then :func:`iam_stage`."""
    return [*(guarded(s) for s in stages), iam_stage()]
