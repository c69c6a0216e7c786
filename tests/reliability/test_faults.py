"""The fault injector itself: each service's real error shape, counts, probability, latency, the record."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from rehearsal.emulator import Emulator
from rehearsal.faults import ApiFault, FaultInjector, FaultRuleError, ServiceFault

NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One emulator for the module (starting one costs seconds); each test resets the injector."""
    with Emulator(extensions=[FaultInjector()], workdir=tmp_path_factory.mktemp("emu")) as emulator:
        emulator.client("s3").create_bucket(Bucket="data")
        yield emulator


@pytest.fixture
def emu(shared: Emulator) -> Emulator:
    _faults(shared).reset()
    return shared


def _faults(emu: Emulator) -> FaultInjector:
    injector = emu.extension("faults")
    assert isinstance(injector, FaultInjector)
    return injector


def error_of(call: Any) -> tuple[int, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return int(response["ResponseMetadata"]["HTTPStatusCode"]), str(response["Error"]["Code"])


@pytest.mark.parametrize(
    ("service", "call", "kind", "status", "expected"),
    [
        ("s3", lambda c: c.list_objects_v2(Bucket="data"), "throttle", None, (503, "SlowDown")),
        ("s3", lambda c: c.list_objects_v2(Bucket="data"), "transient", None, (500, "InternalError")),
        ("s3", lambda c: c.list_objects_v2(Bucket="data"), "transient", 503, (503, "ServiceUnavailable")),
        ("s3", lambda c: c.list_objects_v2(Bucket="data"), "fail", None, (403, "AccessDenied")),
        ("sagemaker", lambda c: c.list_models(), "throttle", None, (400, "ThrottlingException")),
        ("sagemaker", lambda c: c.list_models(), "transient", None, (500, "InternalFailure")),
        # CloudWatch is query-compatible: botocore reports the query code, as it does for real throttling
        ("cloudwatch", lambda c: c.list_metrics(), "throttle", None, (400, "Throttling")),
        ("cloudwatch", lambda c: c.list_metrics(), "transient", 503, (503, "ServiceUnavailable")),
        (
            "emr-containers",
            lambda c: c.list_virtual_clusters(),
            "throttle",
            None,
            (400, "RequestThrottledException"),
        ),
        (
            "emr-containers",
            lambda c: c.list_virtual_clusters(),
            "transient",
            None,
            (500, "InternalServerException"),
        ),
        ("sts", lambda c: c.get_caller_identity(), "throttle", None, (400, "Throttling")),
    ],
)
def test_each_service_answers_in_its_own_error_shape(
    emu: Emulator, service: str, call: Any, kind: Any, status: int | None, expected: tuple[int, str]
) -> None:
    faults = _faults(emu)
    rule = faults.add(ApiFault(service, "*", kind, status=status))
    client = emu.client(service, config=NO_RETRY)
    assert error_of(lambda: call(client)) == expected
    call(client)  # times=1: the next call is served
    assert (rule.matched, rule.fired) == (2, 1)
    assert [(i.kind, i.service, i.status) for i in faults.injected] == [(kind, service, expected[0])]


def test_a_faulted_call_changes_nothing_and_the_next_one_does(emu: Emulator) -> None:
    faults = _faults(emu)
    faults.add(ApiFault("s3", "PutObject", "throttle", times=2, where=lambda r: r.params["Key"] == "a.txt"))
    s3 = emu.client("s3", config=NO_RETRY)
    for _ in range(2):
        assert error_of(lambda: s3.put_object(Bucket="data", Key="a.txt", Body=b"1")) == (503, "SlowDown")
    s3.put_object(Bucket="data", Key="b.txt", Body=b"other key: not matched")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="data")["Contents"]] == ["b.txt"]
    s3.put_object(Bucket="data", Key="a.txt", Body=b"1")
    assert s3.get_object(Bucket="data", Key="a.txt")["Body"].read() == b"1"
    assert [i.subject for i in faults.injected] == ["data/a.txt", "data/a.txt"]


def test_after_skips_calls_and_times_none_fires_forever(emu: Emulator) -> None:
    faults = _faults(emu)
    faults.add(ApiFault("sagemaker", "List*", "fail", after=2, times=None))
    sm = emu.client("sagemaker", config=NO_RETRY)
    sm.list_models()
    sm.list_endpoints()
    for _ in range(3):
        assert error_of(sm.list_models) == (400, "AccessDeniedException")
    sm.describe_model_package_group  # noqa: B018 - other operations are not matched
    assert faults.count(service="sagemaker", kind="fail") == 3


def test_standard_retries_ride_out_throttling_but_not_a_hard_failure(emu: Emulator) -> None:
    faults = _faults(emu)
    retrying = Config(retries={"mode": "standard", "total_max_attempts": 4})
    s3 = emu.client("s3", config=retrying)
    faults.add(ApiFault("s3", "PutObject", "throttle", times=3))
    s3.put_object(Bucket="data", Key="k", Body=b"x")  # attempts 1-3 throttled, 4 served
    assert faults.count(operation="PutObject", kind="throttle") == 3
    faults.add(ApiFault("s3", "GetObject", "fail", times=None))
    assert error_of(lambda: s3.get_object(Bucket="data", Key="k")) == (403, "AccessDenied")
    assert faults.count(operation="GetObject") == 1  # AccessDenied is not retried


def test_probability_is_reproducible_with_the_seed(emu: Emulator) -> None:
    faults = _faults(emu)
    s3 = emu.client("s3", config=NO_RETRY)

    def pattern(seed: int) -> list[bool]:
        faults.reset(seed)
        faults.add(ApiFault("s3", "ListBuckets", "throttle", times=None, probability=0.5))
        outcome: list[bool] = []
        for _ in range(30):
            try:
                s3.list_buckets()
                outcome.append(False)
            except ClientError:
                outcome.append(True)
        assert sum(outcome) == faults.count(kind="throttle")
        return outcome

    first = pattern(11)
    assert first == pattern(11)
    assert 5 <= sum(first) <= 25  # half of 30, give or take: neither never nor always
    assert first != pattern(12)


def test_latency_serves_the_call_late(emu: Emulator) -> None:
    faults = _faults(emu)
    faults.add(ApiFault("s3", "HeadBucket", "latency", delay_s=0.4))
    s3 = emu.client("s3", config=NO_RETRY)
    started = time.monotonic()
    s3.head_bucket(Bucket="data")
    assert time.monotonic() - started >= 0.4
    assert [(i.kind, i.delay_s, i.status) for i in faults.injected] == [("latency", 0.4, None)]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (lambda: ApiFault("s3", kind="slow"), "fault kind 'slow'"),  # type: ignore[arg-type]
        (lambda: ApiFault("s3", kind="latency"), "needs delay_s > 0"),
        (lambda: ApiFault("s3", probability=1.5), "probability must be within"),
        (lambda: ApiFault("s3", times=-1), "times must be"),
        (lambda: ApiFault("s3", status=200), "HTTP error status"),
        (lambda: ServiceFault("lambda-function"), "target 'lambda-function'"),  # type: ignore[arg-type]
    ],
)
def test_a_malformed_rule_is_refused_naming_the_field(rule: Any, message: str) -> None:
    with pytest.raises(FaultRuleError, match=message):
        rule()
