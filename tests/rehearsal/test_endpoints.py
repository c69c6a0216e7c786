"""Endpoints serve for real: health before InService, weighted routing, capture, metrics, guardrails.

One emulator for the module (moto's state is per process); ``time_scale=60`` makes a 60 s alarm
period and a 60 s bake one wall-clock second each.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from rehearsal.alarms import AlarmEvaluator
from rehearsal.emulator import Emulator
from rehearsal.endpoints import SageMakerHosting
from tests.rehearsal.endpoint_fixtures import FAILING_HANDLERS, csv_rows, endpoint_config, register_model

SCALE = 60.0

# containers take seconds to start; the tests share the module's emulator and endpoints but do not
# depend on each other's order (pytest-xdist may split them over workers, each with its own emulator)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    tmp = tmp_path_factory.mktemp("endpoints")
    hosting = SageMakerHosting(time_scale=SCALE, seed=7, capture_flush_s=0.5)
    with Emulator(extensions=[AlarmEvaluator(time_scale=SCALE), hosting]) as emulator:
        register_model(emulator, tmp, "good-model")
        register_model(emulator, tmp, "good-model-2")
        register_model(emulator, tmp, "failing-model", FAILING_HANDLERS)
        register_model(emulator, tmp, "no-code-model", inference_code=None, via_package=True)
        yield emulator
        running = [
            server.process
            for endpoint in hosting.endpoints.values()
            for fleet in (endpoint.blue, endpoint.green)
            if fleet is not None
            for server in fleet.servers.values()
            if server.process is not None
        ]
    _clients.clear()
    # close() stopped every container and thread
    assert all(process.poll() is not None for process in running)
    names = {t.name for t in threading.enumerate()}
    assert not {"sagemaker-capture", "cloudwatch-alarms"} & names
    assert not [n for n in names if n.startswith(("deploy-", "create-", "weights-"))]


def hosting_of(emu: Emulator) -> SageMakerHosting:
    ext = emu.extension("sagemaker-endpoints")
    assert isinstance(ext, SageMakerHosting)
    return ext


def create_endpoint(emu: Emulator, name: str, config: str) -> dict[str, Any]:
    sm = emu.client("sagemaker")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    hosting_of(emu).wait_for_status(name, timeout_s=120)
    return sm.describe_endpoint(EndpointName=name)


_clients: dict[tuple[int, str], Any] = {}


def client(emu: Emulator, service: str) -> Any:
    """One client per emulator and service (making a boto3 client costs more than a request)."""
    key = (id(emu), service)
    if key not in _clients:
        _clients[key] = emu.client(service)
    return _clients[key]


def invoke(emu: Emulator, endpoint: str, rows: int = 1, **kwargs: Any) -> dict[str, Any]:
    return client(emu, "sagemaker-runtime").invoke_endpoint(
        EndpointName=endpoint,
        Body=csv_rows(rows),
        ContentType="text/csv",
        Accept="application/json",
        **kwargs,
    )


def test_a_package_without_inference_code_never_becomes_in_service(emu: Emulator) -> None:
    endpoint_config(emu, "no-code-config", {"AllTraffic": ("no-code-model", 1.0)})
    sm = emu.client("sagemaker")
    sm.create_endpoint(EndpointName="no-code", EndpointConfigName="no-code-config")
    seen = {sm.describe_endpoint(EndpointName="no-code")["EndpointStatus"]}
    while (status := sm.describe_endpoint(EndpointName="no-code")["EndpointStatus"]) == "Creating":
        time.sleep(0.05)
    seen.add(status)
    described = sm.describe_endpoint(EndpointName="no-code")
    assert seen == {"Creating", "Failed"}
    assert "did not pass the ping health check" in described["FailureReason"]
    assert "No module named 'inference'" in described["FailureReason"]
    with pytest.raises(ClientError, match="not in service"):
        invoke(emu, "no-code")
    listed = {e["EndpointName"]: e["EndpointStatus"] for e in sm.list_endpoints()["Endpoints"]}
    assert listed["no-code"] == "Failed"


@pytest.fixture(scope="module")
def split_endpoint(emu: Emulator) -> str:
    """Two variants weighted 3:1 with full data capture."""
    emu.client("s3").create_bucket(Bucket="capture")
    endpoint_config(
        emu,
        "split-config",
        {"Main": ("good-model", 3.0), "Second": ("good-model-2", 1.0)},
        capture_uri="s3://capture/datacapture",
    )
    described = create_endpoint(emu, "split", "split-config")
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    return "split"


def test_traffic_follows_variant_weights_and_target_variant(emu: Emulator, split_endpoint: str) -> None:
    requests = 240
    counts = Counter(invoke(emu, split_endpoint)["InvokedProductionVariant"] for _ in range(requests))
    share = counts["Main"] / requests
    # weight 3 of 4; a binomial share's standard deviation is sqrt(p(1-p)/n): allow 4 of them
    # (a false failure about once in 16,000 runs; the seed makes it reproducible anyway).
    tolerance = 4 * math.sqrt(0.75 * 0.25 / requests)
    assert abs(share - 0.75) <= tolerance, counts
    targeted = {
        invoke(emu, split_endpoint, TargetVariant="Second")["InvokedProductionVariant"] for _ in range(10)
    }
    assert targeted == {"Second"}
    with pytest.raises(ClientError, match="variant Missing is not present"):
        invoke(emu, split_endpoint, TargetVariant="Missing")


def test_predictions_and_custom_attributes_come_back(emu: Emulator, split_endpoint: str) -> None:
    reply = invoke(emu, split_endpoint, rows=3, CustomAttributes="trace=abc")
    body = json.loads(reply["Body"].read())
    assert len(body["predictions"]) == 3
    assert reply["ContentType"] == "application/json"
    assert reply["CustomAttributes"] == "trace=abc"


def _error_counts(emu: Emulator, endpoint: str, variant: str, since: datetime) -> dict[str, float]:
    cw = emu.client("cloudwatch")
    dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
    counts = {}
    for metric in ("Invocation4XXErrors", "Invocation5XXErrors"):
        points = cw.get_metric_statistics(
            Namespace="AWS/SageMaker",
            MetricName=metric,
            Dimensions=dims,
            StartTime=since,
            EndTime=datetime.now(UTC) + timedelta(minutes=1),
            Period=3600,
            Statistics=["Sum"],
        )["Datapoints"]
        counts[metric] = sum(p["Sum"] for p in points)
    return counts


def test_a_bad_request_is_a_client_error_not_a_5xx(emu: Emulator, split_endpoint: str) -> None:
    """The platform's transform_fn answers a payload that does not fit the model with 400, so a client's
    mistake counts in Invocation4XXErrors and cannot trip the 5XX rollback alarm (issue 12)."""
    since = datetime.now(UTC) - timedelta(minutes=1)
    with pytest.raises(ClientError) as caught:
        emu.client("sagemaker-runtime").invoke_endpoint(
            EndpointName=split_endpoint, Body="1,2", ContentType="text/csv", TargetVariant="Second"
        )
    error = caught.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 400
    assert "Received client error (400) from primary" in error["Error"]["Message"]
    assert json.loads(error["OriginalMessage"])["status"] == 400
    with pytest.raises(ClientError) as caught:
        emu.client("sagemaker-runtime").invoke_endpoint(
            EndpointName=split_endpoint,
            Body=b"\x00",
            ContentType="application/x-parquet",
            TargetVariant="Second",
        )
    assert caught.value.response["OriginalStatusCode"] == 415
    counts = _error_counts(emu, split_endpoint, "Second", since)
    assert counts["Invocation4XXErrors"] >= 2
    assert counts["Invocation5XXErrors"] == 0


def test_a_handler_exception_is_a_500(emu: Emulator) -> None:
    """A server fault (an exception out of a handler) is a 500 on the image, whatever it carries."""
    endpoint_config(emu, "failing-config", {"AllTraffic": ("failing-model", 1.0)})
    assert create_endpoint(emu, "failing", "failing-config")["EndpointStatus"] == "InService"
    with pytest.raises(ClientError) as caught:
        invoke(emu, "failing")
    error = caught.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["OriginalStatusCode"] == 500
    assert "Received server error (500) from primary" in error["Error"]["Message"]


def test_capture_files_are_in_sagemaker_layout_and_readable_by_the_monitor(
    emu: Emulator, split_endpoint: str
) -> None:
    from pipelines.monitoring.capture import CaptureStats, iter_capture_batches, list_capture_keys
    from pipelines.serving.artifact import FeatureSpec
    from tests.unit.serving.model_fixture import CATEGORICAL, NUMERIC

    start = datetime.now(UTC) - timedelta(minutes=1)
    for _ in range(6):
        invoke(emu, split_endpoint, rows=2, TargetVariant="Main", InferenceId="req-1")
    hosting_of(emu).flush_capture()
    s3 = emu.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="capture", Prefix="datacapture/split/")["Contents"]]
    layout = re.compile(
        r"^datacapture/split/(Main|Second)/\d{4}/\d{2}/\d{2}/\d{2}/\d{2}-\d{2}-\d{3}-[0-9a-f-]{36}\.jsonl$"
    )
    assert keys
    assert all(layout.match(k) for k in keys), keys
    head = s3.head_object(Bucket="capture", Key=keys[0])
    assert head["ServerSideEncryption"] == "aws:kms"
    first = json.loads(s3.get_object(Bucket="capture", Key=keys[0])["Body"].read().splitlines()[0])
    assert first["eventVersion"] == "0"
    assert first["captureData"]["endpointInput"]["encoding"] == "CSV"
    assert first["captureData"]["endpointInput"]["mode"] == "INPUT"
    assert first["captureData"]["endpointOutput"]["encoding"] == "JSON"
    assert set(first["eventMetadata"]) >= {"eventId", "inferenceTime"}

    features = [FeatureSpec(n, "numeric") for n in NUMERIC] + [
        FeatureSpec(n, "categorical") for n in CATEGORICAL
    ]
    stats = CaptureStats()
    found = list_capture_keys(
        s3, "capture", "datacapture", "split", start, datetime.now(UTC) + timedelta(minutes=1)
    )
    batches = list(iter_capture_batches(s3, "capture", found, features, stats))
    assert stats.malformed_lines == 0
    assert stats.rows >= 12  # six requests of two rows on Main, plus what the other tests sent
    assert all(not any(map(math.isnan, b["__prediction__"])) for b in batches)


def test_invocation_metrics_reach_cloudwatch(emu: Emulator, split_endpoint: str) -> None:
    cw = emu.client("cloudwatch")
    before = datetime.now(UTC) - timedelta(minutes=5)
    for _ in range(4):
        invoke(emu, split_endpoint, TargetVariant="Second")
    dims = [{"Name": "EndpointName", "Value": split_endpoint}, {"Name": "VariantName", "Value": "Second"}]
    names = {m["MetricName"] for m in cw.list_metrics(Namespace="AWS/SageMaker", Dimensions=dims)["Metrics"]}
    assert names >= {
        "Invocations",
        "ModelLatency",
        "OverheadLatency",
        "Invocation4XXErrors",
        "Invocation5XXErrors",
    }
    stats = cw.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName="ModelLatency",
        Dimensions=dims,
        StartTime=before,
        EndTime=datetime.now(UTC) + timedelta(minutes=1),
        Period=3600,
        Statistics=["Average", "SampleCount"],
    )["Datapoints"]
    assert stats
    assert stats[0]["SampleCount"] >= 4
    assert stats[0]["Unit"] == "Microseconds"
    assert 100 < stats[0]["Average"] < 5_000_000  # microseconds: more than 0.1 ms, less than 5 s


def _errors_alarm(emu: Emulator, name: str, endpoint: str) -> None:
    """The platform's rollback alarm (components/endpoint.py): 5XX Sum >= 1 over one 60 s period."""
    emu.client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Dimensions=[
            {"Name": "EndpointName", "Value": endpoint},
            {"Name": "VariantName", "Value": "AllTraffic"},
        ],
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="notBreaching",
    )


def _update_under_traffic(
    emu: Emulator, endpoint: str, config: str, deployment: dict[str, Any]
) -> Counter[str]:
    """UpdateEndpoint, then send traffic until the deployment ends; counts outcomes."""
    sm = client(emu, "sagemaker")
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=config, DeploymentConfig=deployment)
    assert sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "Updating"
    outcomes: Counter[str] = Counter()
    deadline = time.monotonic() + 90
    while sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "Updating":
        assert time.monotonic() < deadline, "the deployment did not finish"
        try:
            invoke(emu, endpoint)
            outcomes["ok"] += 1
        except ClientError as error:
            outcomes[error.response["Error"]["Code"]] += 1
    return outcomes


def _guardrails(kind: str, alarm: str, **routing: Any) -> dict[str, Any]:
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": kind, "WaitIntervalInSeconds": 120, **routing},
            "TerminationWaitInSeconds": 30,
            "MaximumExecutionTimeoutInSeconds": 1800,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": alarm}]},
    }


def test_a_failing_model_trips_the_alarm_and_the_update_rolls_back(emu: Emulator) -> None:
    endpoint_config(emu, "guarded-v1", {"AllTraffic": ("good-model", 1.0)})
    endpoint_config(emu, "guarded-bad", {"AllTraffic": ("failing-model", 1.0)})
    assert create_endpoint(emu, "guarded", "guarded-v1")["EndpointStatus"] == "InService"
    _errors_alarm(emu, "guarded-5xx", "guarded")
    deployment = _guardrails("CANARY", "guarded-5xx", CanarySize={"Type": "CAPACITY_PERCENT", "Value": 50})

    outcomes = _update_under_traffic(emu, "guarded", "guarded-bad", deployment)

    described = emu.client("sagemaker").describe_endpoint(EndpointName="guarded")
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == "guarded-v1"
    assert "guarded-5xx" in described["FailureReason"]
    assert "rolled back" in described["FailureReason"]
    assert (
        described["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"]
        == "CANARY"
    )
    assert "PendingDeploymentSummary" not in described
    assert outcomes["ModelError"] >= 1
    assert outcomes["ok"] >= 1
    # the alarm went to ALARM by evaluation of the published 5XX metrics, not by SetAlarmState
    history = emu.client("cloudwatch").describe_alarm_history(AlarmName="guarded-5xx")["AlarmHistoryItems"]
    to_alarm = [h for h in history if h["HistorySummary"].endswith("to ALARM")]
    assert to_alarm
    assert "Threshold Crossed" in json.loads(to_alarm[0]["HistoryData"])["newState"]["stateReason"]
    events = [e["event"] for e in hosting_of(emu).timeline("guarded")]
    assert "traffic-shifted" in events
    assert events.index("alarm") < events.index("rolled-back")
    assert "update-completed" not in events
    shifted = [e for e in hosting_of(emu).timeline("guarded") if e["event"] == "traffic-shifted"]
    assert shifted[0]["weights"]["green"] == {"config": "guarded-bad", "share": 0.5}
    # the previous model still serves every request
    assert all(invoke(emu, "guarded")["InvokedProductionVariant"] == "AllTraffic" for _ in range(20))

    # deleting the endpoint stops its containers
    blue = hosting_of(emu).endpoints["guarded"].blue
    assert blue is not None
    processes = [s.process for s in blue.servers.values()]
    client(emu, "sagemaker").delete_endpoint(EndpointName="guarded")
    assert all(p is not None and p.poll() is not None for p in processes)
    with pytest.raises(ClientError, match="Could not find endpoint"):
        client(emu, "sagemaker").describe_endpoint(EndpointName="guarded")


@pytest.fixture(scope="module")
def linear_endpoint(emu: Emulator) -> str:
    """An endpoint created on linear-v1 with the platform's 5XX rollback alarm."""
    endpoint_config(emu, "linear-v1", {"AllTraffic": ("good-model", 1.0)})
    endpoint_config(emu, "linear-v2", {"AllTraffic": ("good-model-2", 1.0)})
    assert create_endpoint(emu, "linear", "linear-v1")["EndpointStatus"] == "InService"
    _errors_alarm(emu, "linear-5xx", "linear")
    return "linear"


def test_a_good_update_shifts_linearly_and_completes(emu: Emulator, linear_endpoint: str) -> None:
    deployment = _guardrails("LINEAR", "linear-5xx", LinearStepSize={"Type": "CAPACITY_PERCENT", "Value": 50})

    outcomes = _update_under_traffic(emu, "linear", "linear-v2", deployment)

    described = emu.client("sagemaker").describe_endpoint(EndpointName="linear")
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == "linear-v2"
    assert "FailureReason" not in described
    assert set(outcomes) == {"ok"}
    timeline = hosting_of(emu).timeline("linear")
    shares = [e["weights"]["green"]["share"] for e in timeline if e["event"] == "traffic-shifted"]
    assert shares == [0.5, 1.0]
    assert timeline[-1]["event"] == "update-completed"
    assert timeline[-1]["weights"] == {"blue": {"config": "linear-v2", "share": 1.0}}


def test_a_green_fleet_that_cannot_start_leaves_blue_serving(emu: Emulator, linear_endpoint: str) -> None:
    endpoint_config(emu, "linear-no-code", {"AllTraffic": ("no-code-model", 1.0)})
    sm = emu.client("sagemaker")
    serving = sm.describe_endpoint(EndpointName="linear")["EndpointConfigName"]
    sm.update_endpoint(EndpointName="linear", EndpointConfigName="linear-no-code")
    hosting_of(emu).wait_for_status("linear", timeout_s=60)
    described = sm.describe_endpoint(EndpointName="linear")
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == serving
    assert "could not be provisioned" in described["FailureReason"]
    assert "No module named 'inference'" in described["FailureReason"]
    assert invoke(emu, "linear")["InvokedProductionVariant"] == "AllTraffic"


def test_update_requests_aws_refuses_are_refused(emu: Emulator, split_endpoint: str) -> None:
    sm = emu.client("sagemaker")
    with pytest.raises(ClientError, match="Could not find endpoint configuration"):
        sm.update_endpoint(EndpointName=split_endpoint, EndpointConfigName="nope")
    with pytest.raises(ClientError, match="Could not find endpoint"):
        sm.update_endpoint(EndpointName="nope", EndpointConfigName="split-config")
    with pytest.raises(ClientError, match="CanarySize must be at most 50%"):
        sm.update_endpoint(
            EndpointName=split_endpoint,
            EndpointConfigName="split-config",
            DeploymentConfig={
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {
                        "Type": "CANARY",
                        "WaitIntervalInSeconds": 60,
                        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 80},
                    }
                }
            },
        )
    with pytest.raises(ClientError, match="do not exist"):
        sm.update_endpoint(
            EndpointName=split_endpoint,
            EndpointConfigName="split-config",
            DeploymentConfig={"AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "no-such-alarm"}]}},
        )
    assert sm.describe_endpoint(EndpointName=split_endpoint)["EndpointStatus"] == "InService"


def test_weights_update(emu: Emulator, split_endpoint: str) -> None:
    sm = emu.client("sagemaker")
    sm.update_endpoint_weights_and_capacities(
        EndpointName=split_endpoint,
        DesiredWeightsAndCapacities=[{"VariantName": "Main", "DesiredWeight": 0.0}],
    )
    assert sm.describe_endpoint(EndpointName=split_endpoint)["EndpointStatus"] == "Updating"
    hosting_of(emu).wait_for_status(split_endpoint, ("InService",), timeout_s=30)
    weights = {
        v["VariantName"]: v["CurrentWeight"]
        for v in sm.describe_endpoint(EndpointName=split_endpoint)["ProductionVariants"]
    }
    assert weights == {"Main": 0.0, "Second": 1.0}
    assert {invoke(emu, split_endpoint)["InvokedProductionVariant"] for _ in range(15)} == {"Second"}
    with pytest.raises(ClientError, match="not present"):
        sm.update_endpoint_weights_and_capacities(
            EndpointName=split_endpoint,
            DesiredWeightsAndCapacities=[{"VariantName": "Nope", "DesiredWeight": 1.0}],
        )
    # back to 3:1 for the other tests of this endpoint
    sm.update_endpoint_weights_and_capacities(
        EndpointName=split_endpoint,
        DesiredWeightsAndCapacities=[{"VariantName": "Main", "DesiredWeight": 3.0}],
    )
    hosting_of(emu).wait_for_status(split_endpoint, ("InService",), timeout_s=30)
