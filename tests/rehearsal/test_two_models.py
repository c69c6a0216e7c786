"""Two models in one dev stack, in the rehearsal (issue 13): churn and housing deployed side by side
into the emulator, each trained by its own training DAG in real Airflow, then kept apart: groups,
champion lookup, endpoints, alarms and capture prefixes per model, and a package of the wrong
contract refused. Reuses the rehearsal's own stage functions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from platform_contract.naming import ModelNames, model_names
from rehearsal import lifecycle
from rehearsal import stages as base
from rehearsal.catalog import DEV_PREFIX
from rehearsal.run import RehearsalOptions, RunContext

# Two DAG runs (Spark features, a training job) and two endpoints: minutes on a quiet 2-core machine,
# several times that under load, so the default 600 s per-test timeout is raised.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(2400)]

CHURN = model_names(DEV_PREFIX, "churn")
HOUSING = model_names(DEV_PREFIX, "housing")


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunContext, dict[str, str]]]:
    """dev deployed, churn and housing each trained through its DAG and deployed to its endpoint."""
    from pipelines.synthetic import generate

    out = tmp_path_factory.mktemp("two-models")
    ctx = RunContext(options=RehearsalOptions(out=out, quick=True), out=out)
    try:
        lifecycle.start_full_emulator(ctx)
        lifecycle.deploy_dev(ctx)
        base.prepare_data(ctx)  # the churn data; the rehearsed model is churn
        churn = lifecycle.train(ctx)
        assert lifecycle.check_training(churn, ctx) is None, churn
        day = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
        frame = generate("housing", rows=ctx.options.rows, seed=ctx.options.seed)
        uri = lifecycle._land_batch(ctx, frame, "batch-1.csv", dataset="housing")
        result = lifecycle.run_training_dag(ctx, {"batch_uri": uri, "ingest_date": day}, "housing-1", HOUSING)
        housing = lifecycle._training_evidence(ctx, result, set(), HOUSING)
        assert lifecycle.check_training(housing, ctx) is None, housing
        packages = {"churn": churn["package_arn"], "housing": housing["package_arn"]}
        lifecycle.deploy_packages(ctx, packages)
        yield ctx, packages
    finally:
        ctx.close()


def _sm(ctx: RunContext) -> Any:
    assert ctx.emulator is not None
    return ctx.emulator.client("sagemaker")


def _clients(ctx: RunContext) -> Any:
    from pipelines.aws import AwsClients
    from pipelines.settings import load_settings

    assert ctx.deployment is not None
    assert ctx.deployment.outputs_file is not None
    return AwsClients(load_settings(ctx.deployment.outputs_file))


def test_each_model_has_its_own_dag_group_endpoint_and_prefix(
    two_models: tuple[RunContext, dict[str, str]],
) -> None:
    ctx, _ = two_models
    churn, housing = lifecycle.model_outputs(ctx, CHURN), lifecycle.model_outputs(ctx, HOUSING)
    assert (churn["trainingDagId"], housing["trainingDagId"]) == ("churn_training", "housing_training")
    assert (churn["modelPackageGroupName"], housing["modelPackageGroupName"]) == (
        CHURN.model_package_group,
        HOUSING.model_package_group,
    )
    assert (churn["endpointName"], housing["endpointName"]) == (CHURN.endpoint, HOUSING.endpoint)
    assert (churn["capturePrefix"], housing["capturePrefix"]) == ("datacapture/churn", "datacapture/housing")


def test_each_group_holds_only_its_models_packages(two_models: tuple[RunContext, dict[str, str]]) -> None:
    from pipelines.packages import package_contract

    ctx, packages = two_models
    sm = _sm(ctx)
    for names in (CHURN, HOUSING):
        listed = lifecycle._packages(ctx, names)
        assert [p["ModelPackageArn"] for p in listed] == [packages[names.model]]
        for summary in listed:
            package = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            assert package["ModelPackageGroupName"] == names.model_package_group
            assert package_contract(package) == names.model


def test_champion_lookup_never_returns_the_other_models_package(
    two_models: tuple[RunContext, dict[str, str]],
) -> None:
    from pipelines.promote import latest_approved

    ctx, packages = two_models
    clients = _clients(ctx)
    churn, housing = clients.settings.model_target("churn"), clients.settings.model_target("housing")
    assert latest_approved(clients, churn)["ModelPackageArn"] == packages["churn"]  # type: ignore[index]
    assert latest_approved(clients, housing)["ModelPackageArn"] == packages["housing"]  # type: ignore[index]
    # a housing package that ended up in churn's group, approved and newer, is still not churn's champion
    sm = _sm(ctx)
    stray = sm.describe_model_package(ModelPackageName=packages["housing"])
    arn = sm.create_model_package(
        ModelPackageGroupName=CHURN.model_package_group,
        ModelPackageDescription="a housing model in churn's group",
        ModelApprovalStatus="Approved",
        InferenceSpecification=stray["InferenceSpecification"],
        CustomerMetadataProperties={"model": "housing", "contract": "housing"},
    )["ModelPackageArn"]
    try:
        assert latest_approved(clients, churn)["ModelPackageArn"] == packages["churn"]  # type: ignore[index]
    finally:
        sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Rejected")


def test_a_package_of_another_contract_is_refused(two_models: tuple[RunContext, dict[str, str]]) -> None:
    from pipelines.promote import PromotionError, approve_package
    from pipelines.register import ModelMismatchError, register_model

    ctx, packages = two_models
    clients = _clients(ctx)
    churn_uri = _sm(ctx).describe_model_package(ModelPackageName=packages["churn"])["InferenceSpecification"][
        "Containers"
    ][0]["ModelDataUrl"]
    housing = clients.settings.model_target("housing")
    with pytest.raises(ModelMismatchError, match=r"model 'housing' uses contract 'housing', but .* 'churn'"):
        register_model(clients, churn_uri, model=housing)
    with pytest.raises(PromotionError, match="trained on contract 'churn', but model 'housing'"):
        approve_package(clients, packages["churn"], approver="test", reason="wrong model", model=housing)


def _invoke(ctx: RunContext, names: ModelNames) -> Any:
    import json

    rows = []
    original = ctx.values.get("contract")
    try:
        from pipelines.contract import load_contract

        ctx.values["contract"] = load_contract(names.model)
        rows = lifecycle.held_out_rows(ctx, count=10)
        traffic = lifecycle.Traffic()
        lifecycle.send(ctx, names.endpoint, rows, traffic)
    finally:
        ctx.values["contract"] = original
    assert traffic.ok == 2, traffic
    assert not traffic.errors, traffic
    assert not traffic.misshaped, traffic
    return json.loads(json.dumps(traffic.predictions[0]))


def test_each_endpoint_serves_its_own_package_and_captures_under_its_prefix(
    two_models: tuple[RunContext, dict[str, str]],
) -> None:
    ctx, packages = two_models
    for names in (CHURN, HOUSING):
        serving = lifecycle._serving(ctx, names.endpoint)
        assert serving["status"] == "InService"
        assert {v["package"] for v in serving["variants"].values()} == {packages[names.model]}
    churn_answer, housing_answer = _invoke(ctx, CHURN), _invoke(ctx, HOUSING)
    assert "probabilities" in churn_answer["predictions"][0]  # a classifier answers churn
    assert set(housing_answer["predictions"][0]) == {"score"}  # a regressor answers housing
    hosting: Any = lifecycle._hosting(ctx)
    hosting.flush_capture()
    for names, other in ((CHURN, HOUSING), (HOUSING, CHURN)):
        keys = lifecycle._capture_objects(ctx, names)
        assert keys, f"no capture under {names.capture_prefix}"
        assert all(k.startswith(f"{names.capture_prefix}/{names.endpoint}/") for k in keys)
        assert not any(other.endpoint in k for k in keys)


def test_alarms_are_per_model(two_models: tuple[RunContext, dict[str, str]]) -> None:
    ctx, _ = two_models
    assert ctx.emulator is not None
    cloudwatch = ctx.emulator.client("cloudwatch")
    seen: dict[str, list[str]] = {}
    for names in (CHURN, HOUSING):
        alarms = lifecycle.rollback_alarm_names(ctx, names.endpoint)
        assert alarms, f"{names.endpoint} rolls back on no alarm"
        described = cloudwatch.describe_alarms(AlarmNames=alarms)["MetricAlarms"]
        assert {a["AlarmName"] for a in described} == set(alarms)
        for alarm in described:
            dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
            assert dimensions["EndpointName"] == names.endpoint, alarm["AlarmName"]
        seen[names.model] = alarms
    assert not set(seen["churn"]) & set(seen["housing"])


def test_the_models_step_alarms_watch_their_own_pipeline(
    two_models: tuple[RunContext, dict[str, str]],
) -> None:
    ctx, _ = two_models
    assert ctx.emulator is not None
    alarms = ctx.emulator.client("cloudwatch").describe_alarms()["MetricAlarms"]
    pipelines = {d["Value"] for a in alarms for d in a.get("Dimensions", []) if d["Name"] == "Pipeline"}
    assert {CHURN.pipeline, HOUSING.pipeline} <= pipelines, pipelines
    for names in (CHURN, HOUSING):  # the monitoring alarms watch the model's own endpoint
        drift = [a for a in alarms if a["AlarmName"] == f"{names.endpoint}-drift-share"]
        assert drift, f"no drift-share alarm for {names.endpoint}"
        assert {d["Value"] for d in drift[0]["Dimensions"] if d["Name"] == "EndpointName"} == {names.endpoint}


def test_the_churn_package_reproduces_from_its_manifests(
    two_models: tuple[RunContext, dict[str, str]],
) -> None:
    """mlops reproduce against the emulator: the package trained by a training job in the DAG is
    re-trained here from its feature-set manifest; the metrics are equal, the model's scores are
    bit-identical on the test split, and model.joblib is byte-identical.

    Until the canonical pickle (pipelines.train.dump_model) the bytes differed (2026-12-01, three runs):
    this process imports pulumi, so dill, before joblib, and dill's pickler table wrote ``slice`` as
    ``dill._dill._load_type``; the training container's fresh process did not.
    """
    from pipelines.reproduce import reproduce_package

    ctx, packages = two_models
    clients = _clients(ctx)
    metadata = clients.sagemaker.describe_model_package(ModelPackageName=packages["churn"])[
        "CustomerMetadataProperties"
    ]
    assert {k for k in metadata if k.startswith("dataset_manifest")} == {
        "dataset_manifest",
        "dataset_manifest_train",
        "dataset_manifest_validation",
        "dataset_manifest_test",
    }
    result = reproduce_package(clients, packages["churn"], workdir=ctx.out)
    assert result.matches, result.verdict()
    assert result.hash_compared, "the emulated training image has this interpreter's libraries"
    assert result.prediction_rows > 0
    assert result.same_predictions
    assert result.verdict().startswith("REPRODUCED")
    assert result.reproduced_model_sha256 == result.registered_model_sha256, result.verdict()
    assert result.bytes_reason is None
    assert f"model.joblib byte-identical (artifact sha256 {result.registered_model_sha256[:12]} equal)" in (
        result.verdict()
    )
