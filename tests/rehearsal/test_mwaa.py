"""MWAA on moto's server: environments validated as MWAA does, tokens, InvokeRestApi to the attached Airflow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError

from pipelines.monitoring.retrain import MwaaTrigger, RetrainDecision, TriggerError, trigger_once
from rehearsal.emulator import Emulator
from rehearsal.mwaa import DagRunTrigger, HttpAirflow, MwaaExtension, RestApiCall, mwaa_client

NETWORK = {"SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]}
BLOCK_ALL = dict.fromkeys(
    ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
)


@pytest.fixture
def emu() -> Iterator[tuple[Emulator, MwaaExtension, list[tuple[str, str, dict[str, Any]]]]]:
    triggered: list[tuple[str, str, dict[str, Any]]] = []
    airflow = DagRunTrigger(
        lambda dag, run, conf: triggered.append((dag, run, conf)), dag_ids=frozenset({"training"})
    )
    ext = MwaaExtension({"mlops-dev": airflow})
    with Emulator(extensions=[ext]) as emulator:
        emulator.client("iam").create_role(RoleName="mwaa", AssumeRolePolicyDocument=json.dumps({}))
        s3 = emulator.client("s3")
        for bucket in ("dags", "loose", "public"):
            s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket="public", VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_versioning(Bucket="dags", VersioningConfiguration={"Status": "Enabled"})
        s3.put_public_access_block(Bucket="dags", PublicAccessBlockConfiguration=BLOCK_ALL)
        s3.put_object(Bucket="dags", Key="requirements.txt", Body=b"pandas\n")
        yield emulator, ext, triggered


def _create(emulator: Emulator, name: str = "mlops-dev", **extra: Any) -> str:
    request: dict[str, Any] = {
        "Name": name,
        "ExecutionRoleArn": f"arn:aws:iam::{emulator.account_id}:role/mwaa",
        "SourceBucketArn": "arn:aws:s3:::dags",
        "DagS3Path": "dags",
        "NetworkConfiguration": NETWORK,
        "AirflowVersion": "3.0.6",
        **extra,
    }
    return str(mwaa_client(emulator).create_environment(**request)["Arn"])


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_environment_lifecycle(emu: tuple[Emulator, MwaaExtension, list[Any]]) -> None:
    emulator, _, _ = emu
    arn = _create(emulator, RequirementsS3Path="requirements.txt")
    assert arn == "arn:aws:airflow:us-east-1:123456789012:environment/mlops-dev"
    mwaa = mwaa_client(emulator)
    env = mwaa.get_environment(Name="mlops-dev")["Environment"]
    assert env["Status"] == "AVAILABLE"
    assert env["AirflowVersion"] == "3.0.6"
    assert env["RequirementsS3Path"] == "requirements.txt"
    assert env["WebserverUrl"].endswith(".airflow.amazonaws.com")
    assert mwaa.list_environments()["Environments"] == ["mlops-dev"]
    mwaa.update_environment(Name="mlops-dev", MaxWorkers=4)
    assert mwaa.get_environment(Name="mlops-dev")["Environment"]["MaxWorkers"] == 4
    mwaa.delete_environment(Name="mlops-dev")
    with pytest.raises(ClientError) as gone:
        mwaa.get_environment(Name="mlops-dev")
    assert _code(gone) == "ResourceNotFoundException"


def test_create_environment_validation(emu: tuple[Emulator, MwaaExtension, list[Any]]) -> None:
    emulator, _, _ = emu
    cases: list[tuple[dict[str, Any], str]] = [
        ({"ExecutionRoleArn": "arn:aws:iam::123456789012:role/none"}, "execution role"),
        ({"SourceBucketArn": "arn:aws:s3:::loose"}, "versioning"),
        ({"SourceBucketArn": "arn:aws:s3:::absent"}, "does not exist"),
        ({"SourceBucketArn": "arn:aws:s3:::public"}, "block all public access"),
        ({"RequirementsS3Path": "missing.txt"}, "missing.txt"),
        ({"PluginsS3Path": "plugins.zip", "PluginsS3ObjectVersion": "nope"}, "plugins.zip"),
        ({"Name": "1-bad"}, "must match"),
    ]
    for extra, message in cases:
        with pytest.raises(ClientError, match=message) as error:
            _create(emulator, **extra)
        assert _code(error) == "ValidationException"
    _create(emulator)
    with pytest.raises(ClientError, match="already exists"):
        _create(emulator)


def test_cli_and_web_login_tokens(emu: tuple[Emulator, MwaaExtension, list[Any]]) -> None:
    emulator, ext, _ = emu
    _create(emulator)
    mwaa = mwaa_client(emulator)
    cli = mwaa.create_cli_token(Name="mlops-dev")
    web = mwaa.create_web_login_token(Name="mlops-dev")
    host = mwaa.get_environment(Name="mlops-dev")["Environment"]["WebserverUrl"]
    assert cli["WebServerHostname"] == web["WebServerHostname"] == host
    assert ext.verify_token(cli["CliToken"]) == ("mlops-dev", "cli")
    assert ext.verify_token(web["WebToken"]) == ("mlops-dev", "web")
    assert ext.verify_token("forged") is None
    assert web["IamIdentity"] == "user/moto"
    with pytest.raises(ClientError) as missing:
        mwaa.create_cli_token(Name="other")
    assert _code(missing) == "ResourceNotFoundException"


def test_the_retrain_trigger_reaches_the_attached_airflow(
    emu: tuple[Emulator, MwaaExtension, list[tuple[str, str, dict[str, Any]]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emulator, _, triggered = emu
    _create(emulator)
    # pipelines/ builds a plain boto3 client: the rehearsal turns host prefixes off through the environment
    monkeypatch.setenv("AWS_DISABLE_HOST_PREFIX_INJECTION", "true")
    plain = boto3.Session(region_name=emulator.region, **emulator.credentials).client(
        "mwaa", endpoint_url=emulator.endpoint_url
    )
    trigger = MwaaTrigger(plain, "mlops-dev")
    assert trigger.trigger("training", "retrain__ep__w1", {"why": "drift"}) == "retrain__ep__w1"
    assert triggered == [("training", "retrain__ep__w1", {"why": "drift"})]
    # a second trigger of the same run id is Airflow's 409, which the trigger counts as already triggered
    assert trigger.trigger("training", "retrain__ep__w1", {}) == "retrain__ep__w1"
    assert len(triggered) == 1
    with pytest.raises(TriggerError, match="was not found"):
        trigger.trigger("no-such-dag", "r", {})
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket="monitoring")
    outcome = trigger_once(
        RetrainDecision(True, ("dataset drift",)),
        trigger,
        s3=s3,
        bucket="monitoring",
        marker_key="markers/w2",
        dag_id="training",
        dag_run_id="retrain__ep__w2",
    )
    assert outcome.status == "triggered"
    assert triggered[-1][1] == "retrain__ep__w2"


def test_rest_errors_carry_airflows_status(emu: tuple[Emulator, MwaaExtension, list[Any]]) -> None:
    emulator, ext, _ = emu
    _create(emulator)
    _create(emulator, name="bare")
    mwaa = mwaa_client(emulator)
    with pytest.raises(ClientError) as not_found:
        mwaa.invoke_rest_api(Name="mlops-dev", Path="/dags/training/dagRuns/none", Method="GET")
    assert _code(not_found) == "RestApiClientException"
    assert not_found.value.response["RestApiStatusCode"] == 404
    with pytest.raises(ClientError) as unattached:
        mwaa.invoke_rest_api(Name="bare", Path="/dags", Method="GET")
    assert _code(unattached) == "RestApiServerException"
    assert "attach_airflow" in str(unattached.value)
    with pytest.raises(ClientError) as bad_path:
        mwaa.invoke_rest_api(Name="mlops-dev", Path="dags", Method="GET")
    assert _code(bad_path) == "ValidationException"
    with pytest.raises(ClientError) as no_env:
        mwaa.invoke_rest_api(Name="nope", Path="/dags", Method="GET")
    assert _code(no_env) == "ResourceNotFoundException"

    seen: list[httpx.Request] = []

    def airflow_api(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503, json={"detail": "scheduler down"})

    client = httpx.Client(transport=httpx.MockTransport(airflow_api))
    ext.attach_airflow("bare", HttpAirflow("http://airflow.local:8080", client))
    with pytest.raises(ClientError) as server:
        mwaa.invoke_rest_api(Name="bare", Path="/dags", Method="GET", QueryParameters={"limit": 5})
    assert _code(server) == "RestApiServerException"
    assert server.value.response["RestApiStatusCode"] == 503
    assert str(seen[0].url) == "http://airflow.local:8080/api/v2/dags?limit=5"


def test_dag_run_trigger_answers_like_airflow() -> None:
    calls: list[str] = []
    airflow = DagRunTrigger(lambda dag, run, conf: calls.append(run))
    created = airflow(RestApiCall("e", "POST", "/dags/d/dagRuns", {}, {"dag_run_id": "r", "conf": {}}))
    assert created[0] == 200
    assert airflow(RestApiCall("e", "GET", "/dags/d/dagRuns/r", {}, None)) == (200, created[1])
    assert airflow(RestApiCall("e", "POST", "/dags/d/dagRuns", {}, {"dag_run_id": "r"}))[0] == 409
    assert airflow(RestApiCall("e", "POST", "/dags/d/dagRuns", {}, {"conf": [1]}))[0] == 400
    assert airflow(RestApiCall("e", "DELETE", "/pools", {}, None))[0] == 404
    assert calls == ["r"]
