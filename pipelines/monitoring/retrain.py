"""Retrain decision and trigger: decide from drift, model quality and schedule; trigger the training
DAG at most once per monitoring window.

The once-per-window rule is enforced by a marker object written with an S3 conditional put
(``IfNoneMatch="*"``) before the trigger: a second monitor run for the same window (a retry, a
concurrent run) gets ``412 PreconditionFailed`` and does not trigger. If the trigger call itself
fails the marker is removed, so a later retry can claim the window again. The DAG run id is also
derived from the window, so Airflow rejects a duplicate run as a second line of defence.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from pipelines.errors import PipelineError
from pipelines.monitoring.drift import DriftReport


@dataclass(frozen=True)
class RetrainPolicy:
    """When to retrain.

    Args:
        on_dataset_drift: retrain when the window's dataset-level verdict is drift.
        critical_features: retrain when any of these features drifts, whatever the share.
        on_prediction_drift: retrain when the prediction (score) distribution drifts.
        quality_min: metric -> lowest acceptable value (e.g. ``{"auc": 0.75}``) when labels exist.
        quality_max: metric -> highest acceptable value (e.g. ``{"log_loss": 0.6}``).
        max_model_age_days: scheduled refresh: retrain when the model is older than this.
        min_rows: ignore drift verdicts from windows with fewer captured rows.
    """

    on_dataset_drift: bool = True
    critical_features: tuple[str, ...] = ()
    on_prediction_drift: bool = False
    quality_min: Mapping[str, float] = field(default_factory=dict)
    quality_max: Mapping[str, float] = field(default_factory=dict)
    max_model_age_days: float | None = 30.0
    min_rows: int = 100


@dataclass(frozen=True)
class RetrainDecision:
    """Whether to retrain, and every reason that fired (empty when not)."""

    retrain: bool
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"retrain": self.retrain, "reasons": list(self.reasons)}


def decide_retrain(
    report: DriftReport | None,
    policy: RetrainPolicy,
    *,
    quality: Mapping[str, float | None] | None = None,
    model_created_at: datetime | None = None,
    now: datetime | None = None,
) -> RetrainDecision:
    """Apply the policy to a drift report, optional quality metrics and the model's age."""
    reasons: list[str] = []
    if report is not None and report.current_rows >= policy.min_rows and report.status != "insufficient_data":
        if policy.on_dataset_drift and report.dataset_drift:
            reasons.append(
                f"dataset drift: {len(report.drifted_features)} of {report.evaluated_features} features drifted "
                f"(share {report.drift_share:.2f}): {', '.join(report.drifted_features)}"
            )
        critical = [name for name in policy.critical_features if name in report.drifted_features]
        if critical:
            reasons.append(f"critical feature drift: {', '.join(critical)}")
        if policy.on_prediction_drift and report.prediction is not None and report.prediction.drifted:
            reasons.append(f"prediction drift ({report.prediction.method} {report.prediction.statistic:.4g})")
    for metric, lowest in policy.quality_min.items():
        value = (quality or {}).get(metric)
        if value is not None and value < lowest:
            reasons.append(f"model quality: {metric} {value:.4g} below {lowest}")
    for metric, highest in policy.quality_max.items():
        value = (quality or {}).get(metric)
        if value is not None and value > highest:
            reasons.append(f"model quality: {metric} {value:.4g} above {highest}")
    if policy.max_model_age_days is not None and model_created_at is not None:
        current = now or datetime.now(UTC)
        created = model_created_at if model_created_at.tzinfo else model_created_at.replace(tzinfo=UTC)
        age = current - created
        if age > timedelta(days=policy.max_model_age_days):
            reasons.append(f"schedule: model is {age.days} days old (max {policy.max_model_age_days:g})")
    return RetrainDecision(retrain=bool(reasons), reasons=tuple(reasons))


# --------------------------------------------------------------------------------------------------
# triggers


class PipelineTrigger(Protocol):
    """Starts a training DAG run; returns the DAG run id."""

    def trigger(self, dag_id: str, dag_run_id: str, conf: Mapping[str, Any]) -> str:
        """Start ``dag_id`` with ``conf`` under ``dag_run_id``."""
        ...


class TriggerError(PipelineError):
    """The orchestrator refused or failed to start the DAG run."""


def _dag_run_body(dag_run_id: str, conf: Mapping[str, Any]) -> dict[str, Any]:
    # Airflow 3 requires logical_date in the body (null = now); Airflow 2 ignores nothing it knows
    return {"dag_run_id": dag_run_id, "logical_date": None, "conf": dict(conf)}


class AirflowRestTrigger:
    """Airflow's stable REST API (``POST /api/v2/dags/{dag_id}/dagRuns``; ``api_version="v1"`` for Airflow 2).

    Args:
        base_url: the Airflow API server, e.g. ``http://127.0.0.1:8080``.
        client: an ``httpx.Client`` (auth, timeouts and transport are the caller's).
        token: a bearer token (Airflow 3's ``/auth/token``), if the client does not carry auth.
    """

    def __init__(
        self, base_url: str, client: Any, *, token: str | None = None, api_version: str = "v2"
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.token = token
        self.api_version = api_version

    def trigger(self, dag_id: str, dag_run_id: str, conf: Mapping[str, Any]) -> str:
        """POST the DAG run; a 409 (run id exists) counts as already triggered and returns the id."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = self.client.post(
            f"{self.base_url}/api/{self.api_version}/dags/{dag_id}/dagRuns",
            json=_dag_run_body(dag_run_id, conf),
            headers=headers,
        )
        if response.status_code == 409:
            return dag_run_id
        if response.status_code >= 300:
            raise TriggerError(
                f"Airflow refused DAG run {dag_run_id} of {dag_id}: {response.status_code} {response.text[:300]}"
            )
        return str(response.json().get("dag_run_id", dag_run_id))


class MwaaTrigger:
    """Amazon MWAA through ``invoke_rest_api`` (no web login or CLI token needed).

    Args:
        mwaa: a boto3 ``mwaa`` client.
        environment_name: the MWAA environment.
    """

    def __init__(self, mwaa: Any, environment_name: str) -> None:
        self.mwaa = mwaa
        self.environment_name = environment_name

    def trigger(self, dag_id: str, dag_run_id: str, conf: Mapping[str, Any]) -> str:
        """Invoke ``POST /dags/{dag_id}/dagRuns`` on the environment's Airflow REST API."""
        from botocore.exceptions import ClientError

        try:
            response = self.mwaa.invoke_rest_api(
                Name=self.environment_name,
                Path=f"/dags/{dag_id}/dagRuns",
                Method="POST",
                Body=_dag_run_body(dag_run_id, conf),
            )
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 409 or "already exists" in str(error):
                return dag_run_id
            raise TriggerError(
                f"MWAA {self.environment_name} refused DAG run {dag_run_id}: {error}"
            ) from error
        body = response.get("RestApiResponse") or {}
        return str(body.get("dag_run_id", dag_run_id)) if isinstance(body, dict) else dag_run_id


# --------------------------------------------------------------------------------------------------
# once per window


@dataclass(frozen=True)
class TriggerOutcome:
    """What :func:`trigger_once` did."""

    status: Literal["triggered", "already_triggered", "not_needed"]
    dag_run_id: str | None
    marker_key: str | None
    reasons: tuple[str, ...] = ()


def dag_run_id_for(endpoint: str, window: str) -> str:
    """Deterministic DAG run id for a window (Airflow rejects a duplicate)."""
    return f"retrain__{endpoint}__{window}"


def trigger_once(
    decision: RetrainDecision,
    trigger: PipelineTrigger,
    *,
    s3: Any,
    bucket: str,
    marker_key: str,
    dag_id: str,
    dag_run_id: str,
    conf: Mapping[str, Any] | None = None,
    kms_key_id: str | None = None,
) -> TriggerOutcome:
    """Trigger the DAG if the decision says so and nobody has for this window yet.

    The marker is claimed with ``put_object(IfNoneMatch="*")`` before triggering; a 412/409 answer
    means another run claimed the window and nothing is triggered.
    """
    from botocore.exceptions import ClientError

    if not decision.retrain:
        return TriggerOutcome("not_needed", None, None, decision.reasons)
    marker = {
        "dag_id": dag_id,
        "dag_run_id": dag_run_id,
        "reasons": list(decision.reasons),
        "claimed_at": datetime.now(UTC).isoformat(),
    }
    extra: dict[str, str] = (
        {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id} if kms_key_id else {}
    )
    try:
        s3.put_object(
            Bucket=bucket,
            Key=marker_key,
            Body=json.dumps(marker).encode(),
            IfNoneMatch="*",
            ContentType="application/json",
            **extra,
        )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412):
            return TriggerOutcome("already_triggered", None, marker_key, decision.reasons)
        raise
    try:
        run_id = trigger.trigger(
            dag_id, dag_run_id, dict(conf or {}) | {"retrain_reasons": list(decision.reasons)}
        )
    except Exception:
        s3.delete_object(Bucket=bucket, Key=marker_key)  # let a retry claim the window again
        raise
    return TriggerOutcome("triggered", run_id, marker_key, decision.reasons)
