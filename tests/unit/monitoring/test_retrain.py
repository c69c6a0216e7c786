"""Retrain decision cases and the trigger: Airflow REST, MWAA, and never twice for one window (moto S3)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import httpx
import pytest
from botocore.stub import Stubber

from pipelines.monitoring.drift import DriftReport, FeatureDrift
from pipelines.monitoring.retrain import (
    AirflowRestTrigger,
    MwaaTrigger,
    RetrainDecision,
    RetrainPolicy,
    TriggerError,
    dag_run_id_for,
    decide_retrain,
    trigger_once,
)

NOW = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)


def _feature(name: str, drifted: bool) -> FeatureDrift:
    return FeatureDrift(
        name=name, kind="numeric", method="wasserstein", statistic=0.5 if drifted else 0.01, threshold=0.1,
        drifted=drifted, status="drift" if drifted else "ok", reference_rows=1000, current_rows=500, current_missing=0,
        reference_missing_rate=0.0, current_missing_rate=0.0,
    )  # fmt: skip


def _report(drifted: list[str], rows: int = 500, prediction_drift: bool = False) -> DriftReport:
    names = ["a", "b", "c", "d"]
    features = [_feature(n, n in drifted) for n in names]
    share = len(drifted) / len(names)
    return DriftReport(
        features=features, prediction=_feature("__prediction__", prediction_drift), dataset_drift=share >= 0.5,
        drift_share=share, drifted_features=drifted, evaluated_features=4, missing_value_rate=0.0, current_rows=rows,
        reference_rows=1000, config={"drift_share": 0.5}, status="drift" if share >= 0.5 else "ok",
    )  # fmt: skip


FRESH = NOW - timedelta(days=1)


@pytest.mark.parametrize(
    ("report", "policy", "quality", "created", "retrain", "reason"),
    [
        (_report(["a", "b"]), RetrainPolicy(), None, FRESH, True, "dataset drift: 2 of 4"),
        (_report(["a"]), RetrainPolicy(), None, FRESH, False, None),
        (
            _report(["a"]),
            RetrainPolicy(critical_features=("a",)),
            None,
            FRESH,
            True,
            "critical feature drift: a",
        ),
        (
            _report([]),
            RetrainPolicy(quality_min={"auc": 0.8}),
            {"auc": 0.7},
            FRESH,
            True,
            "auc 0.7 below 0.8",
        ),
        (
            _report([]),
            RetrainPolicy(quality_max={"log_loss": 0.5}),
            {"log_loss": 0.6},
            FRESH,
            True,
            "log_loss 0.6 above 0.5",
        ),
        (_report([]), RetrainPolicy(quality_min={"auc": 0.8}), {"auc": 0.9}, FRESH, False, None),
        (
            _report([]),
            RetrainPolicy(max_model_age_days=30),
            None,
            NOW - timedelta(days=45),
            True,
            "schedule: model is 45 days old",
        ),
        (None, RetrainPolicy(max_model_age_days=30), None, NOW - timedelta(days=45), True, "schedule"),
        (
            _report(["a", "b", "c"], rows=20),
            RetrainPolicy(),
            None,
            FRESH,
            False,
            None,
        ),  # too few rows to trust
        (
            _report([], prediction_drift=True),
            RetrainPolicy(on_prediction_drift=True),
            None,
            FRESH,
            True,
            "prediction drift",
        ),
        (_report(["a", "b"]), RetrainPolicy(on_dataset_drift=False), None, FRESH, False, None),
    ],
)
def test_decision_cases(report, policy, quality, created, retrain, reason) -> None:
    decision = decide_retrain(report, policy, quality=quality, model_created_at=created, now=NOW)
    assert decision.retrain is retrain
    if reason:
        assert any(reason in r for r in decision.reasons), decision.reasons
    else:
        assert decision.reasons == ()


class FakeTrigger:
    """Records DAG runs; optionally fails."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.fail = fail

    def trigger(self, dag_id: str, dag_run_id: str, conf: Any) -> str:
        self.calls.append((dag_id, dag_run_id, dict(conf)))
        if self.fail:
            raise TriggerError("airflow is down")
        return dag_run_id


YES = RetrainDecision(retrain=True, reasons=("dataset drift",))
MARKER = "monitoring/churn-ep/20261124T160000Z_20261124T170000Z/retrain-trigger.json"


def _once(aws, trigger, decision: RetrainDecision = YES):
    return trigger_once(
        decision, trigger, s3=aws["s3"], bucket=aws["artifacts_bucket"], marker_key=MARKER, dag_id="churn_training",
        dag_run_id=dag_run_id_for("churn-ep", "20261124T160000Z_20261124T170000Z"), conf={"endpoint_name": "churn-ep"},
        kms_key_id=aws["key_arn"],
    )  # fmt: skip


def test_never_triggers_twice_for_the_same_window(aws) -> None:
    trigger = FakeTrigger()
    first = _once(aws, trigger)
    second = _once(aws, trigger)
    assert first.status == "triggered"
    assert second.status == "already_triggered"
    assert len(trigger.calls) == 1
    dag_id, run_id, conf = trigger.calls[0]
    assert (dag_id, run_id) == ("churn_training", "retrain__churn-ep__20261124T160000Z_20261124T170000Z")
    assert conf["retrain_reasons"] == ["dataset drift"]
    marker = aws["s3"].get_object(Bucket=aws["artifacts_bucket"], Key=MARKER)
    assert marker["ServerSideEncryption"] == "aws:kms"
    assert json.loads(marker["Body"].read())["dag_run_id"] == run_id


def test_failed_trigger_releases_the_window(aws) -> None:
    with pytest.raises(TriggerError):
        _once(aws, FakeTrigger(fail=True))
    retry = FakeTrigger()
    assert _once(aws, retry).status == "triggered"
    assert len(retry.calls) == 1


def test_no_marker_when_not_needed(aws) -> None:
    trigger = FakeTrigger()
    outcome = _once(aws, trigger, RetrainDecision(retrain=False, reasons=()))
    assert outcome.status == "not_needed"
    assert trigger.calls == []
    assert aws["s3"].list_objects_v2(Bucket=aws["artifacts_bucket"]).get("KeyCount", 0) == 0


def test_airflow_rest_trigger() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(200, json={"dag_run_id": "run-1", "state": "queued"})
        if len(seen) == 2:
            return httpx.Response(409, json={"detail": "DAGRun already exists"})
        return httpx.Response(403, text="forbidden")

    client = httpx.Client(transport=httpx.MockTransport(handler))
    trigger = AirflowRestTrigger("http://127.0.0.1:8080/", client, token="t0k")
    assert trigger.trigger("churn_training", "run-1", {"x": 1}) == "run-1"
    request = seen[0]
    assert request.url.path == "/api/v2/dags/churn_training/dagRuns"
    assert request.headers["authorization"] == "Bearer t0k"
    assert json.loads(request.content) == {"dag_run_id": "run-1", "logical_date": None, "conf": {"x": 1}}
    assert trigger.trigger("churn_training", "run-1", {}) == "run-1"  # 409: already there
    with pytest.raises(TriggerError, match="403"):
        trigger.trigger("churn_training", "run-2", {})


def test_mwaa_trigger_uses_invoke_rest_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    mwaa = boto3.client("mwaa", region_name="us-east-1")  # moto has no MWAA: stub the API
    with Stubber(mwaa) as stub:
        stub.add_response(
            "invoke_rest_api",
            {"RestApiStatusCode": 200, "RestApiResponse": {"dag_run_id": "run-9"}},
            {
                "Name": "mlops-dev",
                "Path": "/dags/churn_training/dagRuns",
                "Method": "POST",
                "Body": {"dag_run_id": "run-9", "logical_date": None, "conf": {"a": 1}},
            },
        )
        stub.add_client_error(
            "invoke_rest_api", service_error_code="RestApiClientException", http_status_code=409
        )
        stub.add_client_error(
            "invoke_rest_api", service_error_code="AccessDeniedException", http_status_code=403
        )
        trigger = MwaaTrigger(mwaa, "mlops-dev")
        assert trigger.trigger("churn_training", "run-9", {"a": 1}) == "run-9"
        assert trigger.trigger("churn_training", "run-9", {"a": 1}) == "run-9"
        with pytest.raises(TriggerError, match="mlops-dev"):
            trigger.trigger("churn_training", "run-10", {})
