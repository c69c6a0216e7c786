"""CodePipeline executions that run their stages, with manual approvals that wait for a person.

moto records a StartPipelineExecution as ``Succeeded`` at once and has neither GetPipelineState nor
PutApprovalResult. :class:`CodePipelineExtension` makes an execution ``InProgress`` and walks its
stages in order, actions of a stage by ``runOrder`` (actions sharing a runOrder run in parallel):

- ``Approval``/``Manual`` actions wait, with a token shown by GetPipelineState, for PutApprovalResult:
  ``Approved`` succeeds the action, ``Rejected`` fails it (and the stage and the execution, as on AWS);
- ``Source``/``S3`` actions check that the configured object exists in the emulated S3 and record its
  version as the revision (the S3 source action's contract);
- every other action (CodeBuild, CodeStarSourceConnection, ...) runs the handler the rehearsal
  registered for it with :meth:`CodePipelineExtension.set_handler`; the emulator cannot run a CodeBuild
  container, so an action without a handler *fails* with a message saying so, never passes silently.

The execution ends ``Succeeded`` when every stage succeeded, ``Failed`` (with a statusSummary naming
the stage and action) otherwise. ``executionMode`` is honoured: ``QUEUED`` runs one execution at a
time in start order, ``SUPERSEDED`` lets a newer execution supersede an older one at its next stage
boundary (or while the older waits for an approval), ``PARALLEL`` runs them independently.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rehearsal.emulator import Emulator


@dataclass(frozen=True)
class ActionRun:
    """What a handler is given: the action being executed and its execution."""

    pipeline: str
    execution_id: str
    stage: str
    action: dict[str, Any]
    """The action's declaration as created (``name``, ``actionTypeId``, ``configuration``, ...)."""
    variables: dict[str, str]
    """The execution's pipeline variables (name -> value)."""

    @property
    def provider(self) -> str:
        """``actionTypeId.provider`` (``CodeBuild``, ``S3``, ...)."""
        return str(self.action.get("actionTypeId", {}).get("provider", ""))

    @property
    def configuration(self) -> dict[str, str]:
        """The action's configuration map."""
        return dict(self.action.get("configuration") or {})


ActionHandler = Callable[[ActionRun], "str | None"]
"""Runs one action: return a summary (or None) to succeed, raise to fail (the message becomes errorDetails)."""


class ApprovalRejectedError(RuntimeError):
    """A manual approval was rejected."""


@dataclass
class _ActionState:
    name: str
    execution_id: str
    action_execution_id: str
    status: str = "InProgress"
    summary: str | None = None
    token: str | None = None
    error: dict[str, str] | None = None
    revision: dict[str, Any] | None = None
    changed: datetime = field(default_factory=lambda: datetime.now(UTC))
    done: threading.Event = field(default_factory=threading.Event)
    result: dict[str, str] | None = None

    def set(self, status: str, summary: str | None = None, error: dict[str, str] | None = None) -> None:
        self.status, self.summary, self.error = status, summary, error
        self.changed = datetime.now(UTC)


@dataclass
class _StageState:
    execution_id: str
    status: str = "InProgress"
    actions: dict[str, _ActionState] = field(default_factory=dict)


@dataclass
class _PipelineState:
    stages: dict[str, _StageState] = field(default_factory=dict)
    queue_lock: threading.Lock = field(default_factory=threading.Lock)
    started: list[str] = field(default_factory=list)


def _ts(value: datetime) -> float:
    return value.timestamp()


class CodePipelineExtension:
    """Runs CodePipeline executions stage by stage (see the module docstring).

    Args:
        approval_timeout_s: a manual approval not answered within this time fails, as AWS fails one
            after 7 days (the default); a rehearsal may shorten it.
    """

    name = "codepipeline"

    def __init__(self, *, approval_timeout_s: float = 7 * 24 * 3600) -> None:
        self.approval_timeout_s = approval_timeout_s
        self._handlers: dict[tuple[str | None, str | None, str | None, str | None], ActionHandler] = {}
        self._pipelines: dict[str, _PipelineState] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._originals: dict[str, Any] = {}
        self._added: list[str] = []

    # ------------------------------------------------------------------ registration

    def set_handler(
        self,
        handler: ActionHandler,
        *,
        provider: str | None = None,
        pipeline: str | None = None,
        stage: str | None = None,
        action: str | None = None,
    ) -> None:
        """Register what an action does in the rehearsal.

        The most specific registration wins: (pipeline, stage, action), then (pipeline, provider),
        then provider alone, e.g. ``set_handler(run_deploy, provider="CodeBuild")``.
        """
        if provider is None and action is None:
            raise ValueError("name the provider, or the pipeline/stage/action, the handler is for")
        self._handlers[(pipeline, stage, action, provider)] = handler

    def _handler_for(self, pipeline: str, stage: str, run: ActionRun) -> ActionHandler | None:
        name = str(run.action["name"])
        for key in (
            (pipeline, stage, name, None),
            (None, stage, name, None),
            (pipeline, None, None, run.provider),
            (None, None, None, run.provider),
        ):
            if key in self._handlers:
                return self._handlers[key]
        return None

    # ------------------------------------------------------------------ install / close

    def install(self, emulator: Emulator) -> None:
        """Hook moto's CodePipeline backend and add GetPipelineState and PutApprovalResult."""
        from moto.codepipeline.models import CodePipelineBackend
        from moto.codepipeline.responses import CodePipelineResponse

        self._emulator = emulator
        original_start = CodePipelineBackend.start_pipeline_execution
        self._originals["start_pipeline_execution"] = original_start
        ext = self

        def start_pipeline_execution(backend: Any, name: str, variables: Any) -> str:
            execution_id = original_start(backend, name, variables)
            ext._begin(backend, name, execution_id)
            return execution_id

        def get_pipeline_state(response: Any) -> str:
            return json.dumps(ext._pipeline_state(response.codepipeline_backend, response._get_param("name")))

        def put_approval_result(response: Any) -> str:
            p = response._get_param
            approved_at = ext._approve(
                response.codepipeline_backend,
                p("pipelineName"),
                p("stageName"),
                p("actionName"),
                p("result") or {},
                p("token"),
            )
            return json.dumps({"approvedAt": approved_at})

        CodePipelineBackend.start_pipeline_execution = start_pipeline_execution  # type: ignore[method-assign]
        for attr, fn in (
            ("get_pipeline_state", get_pipeline_state),
            ("put_approval_result", put_approval_result),
        ):
            if hasattr(CodePipelineResponse, attr):
                self._originals[f"response.{attr}"] = getattr(CodePipelineResponse, attr)
            else:
                self._added.append(attr)
            setattr(CodePipelineResponse, attr, fn)

    def close(self) -> None:
        """Stop walking executions (waiting approvals are abandoned) and restore moto."""
        from moto.codepipeline.models import CodePipelineBackend
        from moto.codepipeline.responses import CodePipelineResponse

        self._closing.set()
        with self._lock:
            for state in self._pipelines.values():
                for stage in state.stages.values():
                    for action in stage.actions.values():
                        action.done.set()
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=30)
        if "start_pipeline_execution" in self._originals:
            CodePipelineBackend.start_pipeline_execution = self._originals.pop("start_pipeline_execution")  # type: ignore[method-assign]
        for key, original in list(self._originals.items()):
            setattr(CodePipelineResponse, key.removeprefix("response."), original)
        for attr in self._added:
            if hasattr(CodePipelineResponse, attr):
                delattr(CodePipelineResponse, attr)
        self._originals.clear()
        self._added.clear()

    def wait(self, pipeline: str, execution_id: str, timeout_s: float = 60) -> str:
        """Block until the execution is no longer InProgress; return its status (a rehearsal helper)."""
        from moto.codepipeline.models import codepipeline_backends

        assert self._emulator is not None
        backend = codepipeline_backends[self._emulator.account_id][self._emulator.region]
        deadline = time.monotonic() + timeout_s
        while True:
            execution = backend.get_pipeline_execution(pipeline, execution_id)
            if execution.status not in ("InProgress", "Stopping"):
                return str(execution.status)
            if time.monotonic() >= deadline:
                return str(execution.status)
            time.sleep(0.05)

    # ------------------------------------------------------------------ executions

    def _begin(self, backend: Any, name: str, execution_id: str) -> None:
        codepipeline = backend.pipelines[name]
        execution = codepipeline.executions[execution_id]
        execution.status = "InProgress"
        execution.status_summary = None
        with self._lock:
            state = self._pipelines.setdefault(name, _PipelineState())
            state.started.append(execution_id)
        thread = threading.Thread(
            target=self._execute,
            args=(codepipeline, execution, state),
            name=f"codepipeline-{name}-{execution_id[:8]}",
            daemon=True,
        )
        self._threads.append(thread)
        thread.start()

    def _execute(self, codepipeline: Any, execution: Any, state: _PipelineState) -> None:
        mode = codepipeline.pipeline.get("executionMode", "SUPERSEDED")
        try:
            if mode == "QUEUED":
                with state.queue_lock:
                    self._walk(codepipeline, execution, state, mode)
            else:
                self._walk(codepipeline, execution, state, mode)
        except Exception as exc:  # the emulator failed: say so rather than stay InProgress
            self._end(execution, "Failed", f"internal error in the emulator: {exc!r}")

    def _superseded(self, state: _PipelineState, execution_id: str, mode: str) -> bool:
        if mode != "SUPERSEDED":
            return False
        with self._lock:
            return state.started[-1] != execution_id

    def _walk(self, codepipeline: Any, execution: Any, state: _PipelineState, mode: str) -> None:
        pipeline = codepipeline.pipeline
        name = pipeline["name"]
        variables = {v["name"]: v["value"] for v in execution.variables}
        for stage in pipeline["stages"]:
            if self._closing.is_set():
                return
            if self._superseded(state, execution.pipeline_execution_id, mode):
                self._end(execution, "Superseded", "superseded by a newer execution")
                return
            stage_state = _StageState(execution.pipeline_execution_id)
            with self._lock:
                state.stages[stage["name"]] = stage_state
            failure = self._run_stage(name, stage, stage_state, execution, variables, state, mode)
            if failure == "Superseded":
                stage_state.status = "Cancelled"
                self._end(execution, "Superseded", "superseded by a newer execution")
                return
            if failure is not None:
                stage_state.status = "Failed"
                self._end(execution, "Failed", failure)
                return
            stage_state.status = "Succeeded"
        self._end(execution, "Succeeded", None)

    def _run_stage(
        self,
        pipeline: str,
        stage: dict[str, Any],
        stage_state: _StageState,
        execution: Any,
        variables: dict[str, str],
        state: _PipelineState,
        mode: str,
    ) -> str | None:
        orders = sorted({int(a.get("runOrder", 1)) for a in stage["actions"]})
        for order in orders:
            group = [a for a in stage["actions"] if int(a.get("runOrder", 1)) == order]
            results: dict[str, str | None] = {}
            workers = []
            for action in group:
                action_state = _ActionState(
                    action["name"], execution.pipeline_execution_id, str(uuid.uuid4())
                )
                with self._lock:
                    stage_state.actions[action["name"]] = action_state
                run = ActionRun(pipeline, execution.pipeline_execution_id, stage["name"], action, variables)
                worker = threading.Thread(
                    target=self._record, args=(results, run, action_state, state, mode), daemon=True
                )
                workers.append(worker)
                worker.start()
            for worker in workers:
                worker.join()
            if any(v == "Superseded" for v in results.values()):
                return "Superseded"
            failed = [f"{name}: {v}" for name, v in results.items() if v is not None]
            if failed:
                return f"stage {stage['name']} failed: " + "; ".join(failed)
        return None

    def _record(
        self,
        results: dict[str, str | None],
        run: ActionRun,
        action_state: _ActionState,
        state: _PipelineState,
        mode: str,
    ) -> None:
        results[action_state.name] = self._run_action(run, action_state, state, mode)

    def _run_action(
        self, run: ActionRun, action_state: _ActionState, state: _PipelineState, mode: str
    ) -> str | None:
        """Run one action; return None on success, "Superseded", or the failure message."""
        category = run.action.get("actionTypeId", {}).get("category")
        try:
            if category == "Approval" and run.provider == "Manual":
                return self._await_approval(run, action_state, state, mode)
            if (
                category == "Source"
                and run.provider == "S3"
                and self._handler_for(run.pipeline, run.stage, run) is None
            ):
                summary = self._s3_source(run, action_state)
            else:
                handler = self._handler_for(run.pipeline, run.stage, run)
                if handler is None:
                    raise RuntimeError(
                        f"the emulator cannot run {category}/{run.provider} action {run.action['name']!r}; "
                        "register what it does in the rehearsal with CodePipelineExtension.set_handler"
                    )
                summary = handler(run)
        except Exception as exc:
            action_state.set("Failed", None, {"code": "JobFailed", "message": str(exc)[:5000]})
            return str(exc)
        action_state.set("Succeeded", summary)
        return None

    def _s3_source(self, run: ActionRun, action_state: _ActionState) -> str:
        # https://docs.aws.amazon.com/codepipeline/latest/userguide/action-reference-S3.html
        from moto.s3.models import s3_backends

        assert self._emulator is not None
        config = run.configuration
        bucket, key = config.get("S3Bucket", ""), config.get("S3ObjectKey", "")
        backend = s3_backends[self._emulator.account_id]["aws"]
        try:
            obj = backend.get_object(bucket, key)
        except Exception as exc:
            raise RuntimeError(f"the source object s3://{bucket}/{key} cannot be read: {exc}") from exc
        if obj is None:
            raise RuntimeError(f"the source object s3://{bucket}/{key} does not exist; upload it first")
        version = getattr(obj, "version_id", None) or "null"
        action_state.revision = {"revisionId": str(version), "created": _ts(datetime.now(UTC))}
        return f"Amazon S3 version id: {version}"

    def _await_approval(
        self, run: ActionRun, action_state: _ActionState, state: _PipelineState, mode: str
    ) -> str | None:
        action_state.token = str(uuid.uuid4())
        action_state.changed = datetime.now(UTC)
        deadline = time.monotonic() + self.approval_timeout_s
        while not action_state.done.wait(timeout=0.05):
            if self._superseded(state, run.execution_id, mode):
                action_state.set("Abandoned", "superseded by a newer execution")
                return "Superseded"
            if time.monotonic() >= deadline:
                action_state.set("Failed", None, {"code": "Timeout", "message": "the approval timed out"})
                return "the approval timed out"
        result = action_state.result
        if result is None:  # closing
            action_state.set("Abandoned")
            return "abandoned (the emulator stopped)"
        if result["status"] == "Approved":
            action_state.set("Succeeded", result.get("summary"))
            return None
        action_state.set("Failed", result.get("summary"), {"code": "Rejected", "message": "Rejected"})
        return f"rejected: {result.get('summary', '')}"

    def _end(self, execution: Any, status: str, summary: str | None) -> None:
        execution.status_summary = summary
        execution.last_update_time = datetime.now(UTC).replace(tzinfo=None)
        execution.status = status

    # ------------------------------------------------------------------ API

    def _pipeline_state(self, backend: Any, name: str) -> dict[str, Any]:
        declaration, metadata = backend.get_pipeline(name)  # PipelineNotFoundException as moto raises it
        with self._lock:
            state = self._pipelines.get(name, _PipelineState())
            stages = []
            for stage in declaration["stages"]:
                stage_state = state.stages.get(stage["name"])
                actions = []
                for action in stage["actions"]:
                    entry: dict[str, Any] = {"actionName": action["name"]}
                    action_state = stage_state.actions.get(action["name"]) if stage_state else None
                    if action_state is not None:
                        latest: dict[str, Any] = {
                            "actionExecutionId": action_state.action_execution_id,
                            "status": action_state.status,
                            "lastStatusChange": _ts(action_state.changed),
                        }
                        if action_state.summary:
                            latest["summary"] = action_state.summary
                        if action_state.token and action_state.status == "InProgress":
                            latest["token"] = action_state.token
                        if action_state.error:
                            latest["errorDetails"] = action_state.error
                        entry["latestExecution"] = latest
                        if action_state.revision:
                            entry["currentRevision"] = action_state.revision
                    actions.append(entry)
                item: dict[str, Any] = {
                    "stageName": stage["name"],
                    "inboundTransitionState": {"enabled": True},
                    "actionStates": actions,
                }
                if stage_state is not None:
                    item["latestExecution"] = {
                        "pipelineExecutionId": stage_state.execution_id,
                        "status": stage_state.status,
                    }
                stages.append(item)
        return {
            "pipelineName": name,
            "pipelineVersion": declaration["version"],
            "stageStates": stages,
            "created": metadata["created"],
            "updated": metadata["updated"],
        }

    def _approve(
        self, backend: Any, pipeline: str, stage: str, action: str, result: dict[str, str], token: str
    ) -> float:
        from moto.codepipeline.exceptions import PipelineNotFoundException
        from moto.core.exceptions import JsonRESTError

        declaration, _ = backend.get_pipeline(pipeline)
        stage_decl = next((s for s in declaration["stages"] if s["name"] == stage), None)
        if stage_decl is None:
            raise JsonRESTError("StageNotFoundException", f"Stage {stage} not found in pipeline {pipeline}")
        if not any(a["name"] == action for a in stage_decl["actions"]):
            raise JsonRESTError("ActionNotFoundException", f"Action {action} not found in stage {stage}")
        if result.get("status") not in ("Approved", "Rejected"):
            raise JsonRESTError("ValidationException", "result.status must be Approved or Rejected")
        with self._lock:
            state = self._pipelines.get(pipeline)
            if state is None:
                raise PipelineNotFoundException(
                    f"no execution of pipeline {pipeline} is waiting for an approval"
                )
            stage_state = state.stages.get(stage)
            action_state = stage_state.actions.get(action) if stage_state else None
            if action_state is None or action_state.token is None or action_state.token != token:
                raise JsonRESTError(
                    "InvalidApprovalTokenException",
                    f"The token {token} is not valid for action {action} of stage {stage}: read the current "
                    "token from GetPipelineState",
                )
            if action_state.status != "InProgress" or action_state.result is not None:
                raise JsonRESTError(
                    "ApprovalAlreadyCompletedException",
                    f"The approval of {stage}/{action} is already completed",
                )
            action_state.result = {"status": result["status"], "summary": result.get("summary", "")}
            action_state.done.set()
        return _ts(datetime.now(UTC))
