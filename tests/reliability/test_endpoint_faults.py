"""The emulated endpoint under traffic while a canary update runs, fails, and is re-run.

Traffic uses the platform's retry configuration (standard mode), so a throttled InvokeEndpoint is
retried as a client on AWS would retry it; the assertion is that *no request fails* during the shift,
and that a failed update leaves the previous config serving.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from rehearsal.alarms import AlarmEvaluator
from rehearsal.emulator import Emulator
from rehearsal.endpoints import SageMakerHosting
from rehearsal.faults import ApiFault, FaultInjector, ServiceFault
from tests.rehearsal.endpoint_fixtures import csv_rows, endpoint_config, register_model
from tests.reliability.conftest import short_backoff

pytestmark = pytest.mark.slow
SCALE = 60.0
RETRYING = Config(retries={"mode": "standard", "total_max_attempts": 5})


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    tmp: Path = tmp_path_factory.mktemp("endpoint-faults")
    extensions: list[Any] = [
        FaultInjector(),
        AlarmEvaluator(time_scale=SCALE),
        SageMakerHosting(time_scale=SCALE, seed=7, capture_flush_s=0.5),
    ]
    with Emulator(extensions=extensions, workdir=tmp / "emu") as emulator, short_backoff():
        register_model(emulator, tmp, "model-v1")
        register_model(emulator, tmp, "model-v2")
        endpoint_config(emulator, "churn-v1", {"AllTraffic": ("model-v1", 1.0)})
        endpoint_config(emulator, "churn-v2", {"AllTraffic": ("model-v2", 1.0)})
        yield emulator


def _faults(emu: Emulator) -> FaultInjector:
    injector = emu.extension("faults")
    assert isinstance(injector, FaultInjector)
    injector.reset()
    return injector


def _hosting(emu: Emulator) -> SageMakerHosting:
    hosting = emu.extension("sagemaker-endpoints")
    assert isinstance(hosting, SageMakerHosting)
    return hosting


def _canary(alarm: str) -> dict[str, Any]:
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50},
                "WaitIntervalInSeconds": 120,
            },
            "TerminationWaitInSeconds": 30,
            "MaximumExecutionTimeoutInSeconds": 1800,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": alarm}]},
    }


def _endpoint(emu: Emulator, name: str) -> None:
    sm = emu.client("sagemaker")
    sm.create_endpoint(EndpointName=name, EndpointConfigName="churn-v1")
    _hosting(emu).wait_for_status(name, timeout_s=180)
    assert sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "InService"
    emu.client("cloudwatch").put_metric_alarm(
        AlarmName=f"{name}-5xx",
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Dimensions=[{"Name": "EndpointName", "Value": name}, {"Name": "VariantName", "Value": "AllTraffic"}],
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="notBreaching",
    )


def _update_under_traffic(emu: Emulator, name: str, config: str) -> Counter[str]:
    """UpdateEndpoint with the canary guardrail, and traffic until it ends: the outcomes by error code."""
    sm = emu.client("sagemaker", config=RETRYING)
    runtime = emu.client("sagemaker-runtime", config=RETRYING)
    sm.update_endpoint(EndpointName=name, EndpointConfigName=config, DeploymentConfig=_canary(f"{name}-5xx"))
    outcomes: Counter[str] = Counter()
    deadline = time.monotonic() + 150
    while sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "Updating":
        assert time.monotonic() < deadline, "the deployment did not finish"
        try:
            runtime.invoke_endpoint(
                EndpointName=name, Body=csv_rows(2), ContentType="text/csv", Accept="application/json"
            )
            outcomes["ok"] += 1
        except ClientError as error:
            outcomes[error.response["Error"]["Code"]] += 1
    return outcomes


def test_no_request_fails_while_a_canary_update_shifts_traffic(emu: Emulator) -> None:
    faults = _faults(emu)
    _endpoint(emu, "canary")
    faults.add(ApiFault("sagemaker-runtime", "InvokeEndpoint", "throttle", times=3))
    faults.add(ApiFault("sagemaker", "DescribeEndpoint", "transient", times=2))
    outcomes = _update_under_traffic(emu, "canary", "churn-v2")
    assert set(outcomes) == {"ok"}
    assert outcomes["ok"] >= 5
    assert faults.count(operation="InvokeEndpoint") == 3  # throttled, retried, served
    described = emu.client("sagemaker").describe_endpoint(EndpointName="canary")
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == "churn-v2"
    events = [e["event"] for e in _hosting(emu).timeline("canary")]
    assert "traffic-shifted" in events
    assert events[-1] == "update-completed"


def test_a_failed_update_leaves_the_old_config_serving_and_the_rerun_completes(emu: Emulator) -> None:
    faults = _faults(emu)
    _endpoint(emu, "failing-update")
    faults.add(ServiceFault("endpoint-update", "failing-update"))
    outcomes = _update_under_traffic(emu, "failing-update", "churn-v2")
    assert set(outcomes) <= {"ok"}  # nothing failed while the green fleet came and went
    sm = emu.client("sagemaker")
    described = sm.describe_endpoint(EndpointName="failing-update")
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == "churn-v1"  # never an endpoint without a serving model
    assert "could not be provisioned" in described["FailureReason"]
    assert "failed health checks" in described["FailureReason"]
    answer = emu.client("sagemaker-runtime").invoke_endpoint(
        EndpointName="failing-update", Body=csv_rows(1), ContentType="text/csv"
    )
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    # re-running the deploy step is safe: the same update now completes
    outcomes = _update_under_traffic(emu, "failing-update", "churn-v2")
    assert set(outcomes) <= {"ok"}
    described = sm.describe_endpoint(EndpointName="failing-update")
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == "churn-v2"
    assert faults.count(kind="service-failure") == 1
