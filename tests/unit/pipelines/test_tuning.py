"""The contract's tuning section and the CreateHyperParameterTuningJob request built from it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.contract import ContractError, load_contract, parse_contract, resolve_contract_path
from pipelines.tuning import TuningError, check_search_space, tuning_job_request, tuning_result
from platform_contract.naming import model_names
from tests.unit.pipelines.conftest import Platform

TUNING: dict[str, Any] = {
    "objective": {"metric": "validation:auc", "type": "Maximize"},
    "strategy": "Random",
    "parameters": {
        "C": {"type": "continuous", "min": 0.01, "max": 10, "scaling": "Logarithmic"},
        "max_iter": {"type": "integer", "min": 100, "max": 500},
        "solver": {"type": "categorical", "values": ["lbfgs", "liblinear"]},
        "fit_intercept": {"type": "categorical", "values": [True, False]},
    },
}


def churn_with(tuning: dict[str, Any] | None) -> dict[str, Any]:
    """The shipped churn contract as a mapping, with ``tuning`` set."""
    data = yaml.safe_load(resolve_contract_path("churn").read_text())
    data["tuning"] = tuning
    return data


def write_churn(tmp_path: Path, tuning: dict[str, Any]) -> Path:
    """``churn.yaml`` with a tuning section, in ``tmp_path``."""
    path = tmp_path / "churn.yaml"
    path.write_text(yaml.safe_dump(churn_with(tuning)))
    return path


def test_a_valid_tuning_section_parses() -> None:
    contract = parse_contract(churn_with(TUNING))
    assert contract.tuning is not None
    assert contract.tuning.objective.type == "Maximize"
    assert contract.tuning.parameters["C"].scaling == "Logarithmic"
    assert check_search_space(contract) is contract.tuning
    assert load_contract("churn").tuning is None  # the shipped contracts train one job


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"objective": {"metric": "validation:rmse", "type": "Minimize"}}, "choose one of"),
        ({"objective": {"metric": "validation:auc", "type": "Biggest"}}, "Maximize"),
        ({"strategy": "Hyperband"}, "strategy"),
        ({"parameters": {}}, "at least one hyperparameter"),
        ({"parameters": {"C": {"type": "continuous", "min": 1, "max": 1}}}, "must be below"),
        (
            {"parameters": {"C": {"type": "continuous", "min": 0, "max": 1, "scaling": "Logarithmic"}}},
            "above 0",
        ),
        (
            {
                "parameters": {
                    "C": {"type": "continuous", "min": 0.5, "max": 1.5, "scaling": "ReverseLogarithmic"}
                }
            },
            "0 <= min < max < 1",
        ),
        ({"parameters": {"max_iter": {"type": "integer", "min": 1.5, "max": 9}}}, "whole"),
        ({"parameters": {"C": {"type": "continuous", "min": 1}}}, "both 'min' and 'max'"),
        ({"parameters": {"solver": {"type": "categorical", "values": []}}}, "at least one entry"),
        ({"parameters": {"solver": {"type": "categorical", "values": list(range(31))}}}, "at most 30"),
        ({"parameters": {"solver": {"type": "categorical", "values": ["a"], "min": 1}}}, "values' only"),
        ({"parameters": {"run_id": {"type": "categorical", "values": ["a"]}}}, "the pipeline sets them"),
        (
            {"parameters": {f"p{i}": {"type": "categorical", "values": ["a"]} for i in range(31)}},
            "at most 30",
        ),
    ],
)
def test_bad_tuning_sections_are_refused_with_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ContractError, match="tuning") as raised:
        parse_contract(churn_with({**TUNING, **change}), "churn.yaml")
    assert message in str(raised.value)


def test_a_hyperparameter_the_estimator_does_not_take_is_refused() -> None:
    contract = parse_contract(
        churn_with({**TUNING, "parameters": {"max_depth": {"type": "integer", "min": 2, "max": 8}}})
    )
    with pytest.raises(
        ContractError, match=r"\['max_depth'\] are not hyperparameters of logistic_regression"
    ):
        check_search_space(contract)


def test_the_request_uses_the_single_jobs_definition(platform: Platform, tmp_path: Path) -> None:
    from pipelines.train import training_job_request

    platform.settings.private_subnet_ids = ["subnet-1"]
    platform.settings.training_security_group_id = "sg-1"
    path = write_churn(tmp_path, TUNING)
    name = model_names("mlops-dev", "churn").tuning_job_name("261201-083700")
    args = (platform.clients, path, name, "s3://f/features/churn/", "s3://a/src.tar.gz")
    request = tuning_job_request(*args, max_jobs=3, max_parallel_jobs=2)
    single = training_job_request(*args)

    assert request["HyperParameterTuningJobName"] == name
    assert len(name) <= 32
    config = request["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Random"
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "validation:auc"}
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 3, "MaxParallelTrainingJobs": 2}
    ranges = config["ParameterRanges"]
    assert ranges["ContinuousParameterRanges"] == [
        {"Name": "C", "MinValue": "0.01", "MaxValue": "10.0", "ScalingType": "Logarithmic"}
    ]
    assert ranges["IntegerParameterRanges"] == [
        {"Name": "max_iter", "MinValue": "100", "MaxValue": "500", "ScalingType": "Auto"}
    ]
    assert {r["Name"]: r["Values"] for r in ranges["CategoricalParameterRanges"]} == {
        "fit_intercept": ["true", "false"],  # JSON, as pipelines.train.parse_value reads it back
        "solver": ["lbfgs", "liblinear"],
    }
    definition = request["TrainingJobDefinition"]
    objective_names = [m["Name"] for m in definition["AlgorithmSpecification"]["MetricDefinitions"]]
    assert "validation:auc" in objective_names
    for key in (
        "RoleArn",
        "InputDataConfig",
        "VpcConfig",
        "OutputDataConfig",
        "ResourceConfig",
        "StoppingCondition",
    ):
        assert definition[key] == single[key]
    assert (
        definition["AlgorithmSpecification"]["TrainingImage"]
        == single["AlgorithmSpecification"]["TrainingImage"]
    )
    static = definition["StaticHyperParameters"]
    # the tuned values are not static; each trial's run ID is its own job name
    assert not {"C", "max_iter", "solver", "fit_intercept", "run_id"} & set(static)
    assert json.loads(static["sagemaker_submit_directory"]) == "s3://a/src.tar.gz"
    assert json.loads(static["contract"]) == "contract.yaml"
    assert {"Key": "mlops:step", "Value": "tuning"} in request["Tags"]
    # the request is one boto3 accepts
    platform.clients.sagemaker.meta.service_model.operation_model("CreateHyperParameterTuningJob")
    from botocore.validate import validate_parameters

    model = platform.clients.sagemaker.meta.service_model.operation_model("CreateHyperParameterTuningJob")
    validate_parameters(request, model.input_shape)


@pytest.mark.parametrize(
    ("jobs", "parallel", "message"),
    [
        (0, 1, "max jobs"),
        (751, 1, "max jobs"),
        (4, 11, "max parallel"),
        (2, 3, "exceeds max jobs"),
        (True, 1, "max jobs"),
    ],
)
def test_trial_counts_outside_the_limits_are_refused(
    platform: Platform, tmp_path: Path, jobs: Any, parallel: int, message: str
) -> None:
    path = write_churn(tmp_path, TUNING)
    with pytest.raises(TuningError, match=message):
        tuning_job_request(platform.clients, path, "churn-abc123-1", "s3://f/x/", "s3://a/s", jobs, parallel)


def test_a_long_tuning_job_name_is_refused(platform: Platform, tmp_path: Path) -> None:
    path = write_churn(tmp_path, TUNING)
    with pytest.raises(TuningError, match="1-32"):
        tuning_job_request(platform.clients, path, "x" * 33, "s3://f/x/", "s3://a/s", 3, 2)


def test_tuning_job_names_stay_within_32_and_differ_by_environment() -> None:
    long = model_names("mlops-staging", "a_model_name_of_24_chars")
    name = long.tuning_job_name("261201-083700")
    assert len(name) <= 32
    assert (
        model_names("mlops-dev", "churn").tuning_job_prefix
        != model_names("mlops-prod", "churn").tuning_job_prefix
    )


class _FakeSageMaker:
    """DescribeHyperParameterTuningJob / List... / DescribeTrainingJob answers of a finished job."""

    def __init__(self, status: str, best: dict[str, Any] | None) -> None:
        self.status, self.best = status, best

    def describe_hyper_parameter_tuning_job(self, **_: Any) -> dict[str, Any]:
        job: dict[str, Any] = {
            "HyperParameterTuningJobStatus": self.status,
            "HyperParameterTuningJobConfig": {"HyperParameterTuningJobObjective": {"Type": "Minimize"}},
            "TrainingJobStatusCounters": {"Completed": 2, "NonRetryableError": 1},
            "FailureReason": "No training job succeeded",
        }
        if self.best:
            job["BestTrainingJob"] = self.best
        return job

    def list_training_jobs_for_hyper_parameter_tuning_job(self, **kwargs: Any) -> dict[str, Any]:
        page = [{"TrainingJobName": f"t-00{i}", "TrainingJobStatus": "Completed"} for i in (1, 2)]
        if "NextToken" not in kwargs:
            return {"TrainingJobSummaries": page, "NextToken": "1"}
        return {"TrainingJobSummaries": [{"TrainingJobName": "t-003", "TrainingJobStatus": "Failed"}]}

    def describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:  # noqa: N803 - boto3's name
        return {
            "ModelArtifacts": {
                "S3ModelArtifacts": f"s3://a/models/churn/{TrainingJobName}/output/model.tar.gz"
            }
        }


class _Clients:
    def __init__(self, sagemaker: _FakeSageMaker) -> None:
        self.sagemaker = sagemaker


def test_the_result_is_the_best_trial_and_every_trial() -> None:
    best = {
        "TrainingJobName": "t-002",
        "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": "validation:rmse", "Value": 0.5},
        "TunedHyperParameters": {"alpha": "0.1"},
    }
    result = tuning_result(_Clients(_FakeSageMaker("Completed", best)), "t")  # type: ignore[arg-type]
    assert result["model_uri"] == "s3://a/models/churn/t-002/output/model.tar.gz"
    assert result["best_objective"] == 0.5
    assert result["objective_type"] == "Minimize"
    assert [t["training_job_name"] for t in result["trials"]] == ["t-001", "t-002", "t-003"]  # all pages
    assert (result["completed"], result["failed"]) == (2, 1)
    with pytest.raises(TuningError, match="Failed with no best trial: No training job succeeded"):
        tuning_result(_Clients(_FakeSageMaker("Failed", None)), "t")  # type: ignore[arg-type]


def test_every_trial_is_a_child_run_of_the_tuning_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from mlflow.tracking import MlflowClient, fluent
    from mlflow.tracking._tracking_service import utils as tracking_utils

    from pipelines.tuning import log_trials

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = {
        "tuning_job_name": "churn-abc123-261201-083700",
        "best_training_job": "churn-abc123-261201-083700-002-aa",
        "objective_metric": "validation:auc",
        "objective_type": "Maximize",
        "best_objective": 0.9,
        "best_hyperparameters": {"C": "0.5"},
        "completed": 1,
        "failed": 1,
        "trials": [
            {
                "training_job_name": "churn-abc123-261201-083700-001-bb",
                "status": "Failed",
                "objective": None,
                "hyperparameters": {"C": "9.0"},
                "failure_reason": "boom",
            },
            {
                "training_job_name": "churn-abc123-261201-083700-002-aa",
                "status": "Completed",
                "objective": 0.9,
                "hyperparameters": {"C": "0.5"},
                "failure_reason": None,
            },
        ],
    }
    # log_trials sets MLflow's process-wide tracking URI and experiment: restore both afterwards
    monkeypatch.setattr(tracking_utils, "_tracking_uri", tracking_utils._tracking_uri)
    monkeypatch.setattr(fluent, "_active_experiment_id", fluent._active_experiment_id)
    off = SimpleNamespace(tracking_uri=lambda: None)
    assert log_trials(off, "mlops-dev-churn", result) is None  # type: ignore[arg-type]
    on = SimpleNamespace(tracking_uri=lambda: uri)
    parent = log_trials(on, "mlops-dev-churn", result)  # type: ignore[arg-type]
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("mlops-dev-churn")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent]
    assert sorted(str(r.info.run_name) for r in children) == sorted(
        t["training_job_name"] for t in result["trials"]
    )
    best = next(r for r in children if r.data.tags["mlops.best"] == "True")
    assert best.data.metrics["validation_auc"] == 0.9
    assert best.data.params == {"C": "0.5"}
    failed = next(r for r in children if r.data.tags["mlops.status"] == "Failed")
    assert failed.data.tags["mlops.failure_reason"] == "boom"
    assert "validation_auc" not in failed.data.metrics
    top = client.get_run(str(parent))
    assert top.data.metrics["best_validation_auc"] == 0.9
    assert top.data.metrics["trials_failed"] == 1


def test_the_tuning_run_and_its_trials_nest_under_the_training_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15: the package's run (the evaluate step's training run of the best trial) leads to the
    tuning run and every trial, and the lineage document lists them."""
    from types import SimpleNamespace

    from mlflow.tracking import fluent
    from mlflow.tracking._tracking_service import utils as tracking_utils

    from pipelines.provenance import _tuning_lineage  # pyright: ignore[reportPrivateUsage]
    from pipelines.tracking import Tracker, open_tracker
    from pipelines.tuning import log_trials, nest_tuning_run

    monkeypatch.setattr(tracking_utils, "_tracking_uri", tracking_utils._tracking_uri)
    monkeypatch.setattr(fluent, "_active_experiment_id", fluent._active_experiment_id)
    job = "churn-abc123-261201-083700"
    trials = [f"{job}-001-0a1b2c3d", f"{job}-002-4e5f6a7b"]
    result = {
        "tuning_job_name": job, "best_training_job": trials[1], "objective_metric": "validation:auc",
        "objective_type": "Maximize", "best_objective": 0.9, "best_hyperparameters": {"C": "0.5"},
        "completed": 2, "failed": 0,
        "trials": [
            {"training_job_name": trials[0], "status": "Completed", "objective": 0.7,
             "hyperparameters": {"C": "9.0"}, "failure_reason": None},
            {"training_job_name": trials[1], "status": "Completed", "objective": 0.9,
             "hyperparameters": {"C": "0.5"}, "failure_reason": None},
        ],
    }  # fmt: skip
    settings = SimpleNamespace(tracking_uri=lambda: f"sqlite:///{tmp_path / 'mlflow.db'}")
    tuning_run = log_trials(settings, "mlops-dev-churn", result)  # type: ignore[arg-type]
    tracker = open_tracker(settings)  # type: ignore[arg-type]
    assert isinstance(tracker, Tracker)
    with tracker.run("mlops-dev-churn", "untuned-run") as untuned:
        assert nest_tuning_run(tracker, untuned.experiment_id, untuned.run_id, "untuned-run") is None
    with tracker.run("mlops-dev-churn", trials[1]) as training:
        assert nest_tuning_run(tracker, training.experiment_id, training.run_id, trials[1]) == tuning_run
    client = tracker.client
    assert client.get_run(str(tuning_run)).data.tags["mlflow.parentRunId"] == training.run_id
    tags = client.get_run(training.run_id).data.tags
    assert (tags["mlops.tuning_job"], tags["mlops.tuning_run_id"]) == (job, tuning_run)
    lineage = _tuning_lineage(tracker, client.get_run(training.run_id))
    assert lineage is not None
    assert (lineage["run_id"], lineage["tuning_job"]) == (tuning_run, job)
    assert [t["training_job"] for t in lineage["trials"]] == trials
    assert [t["best"] for t in lineage["trials"]] == [False, True]
    assert lineage["trials"][1]["metrics"] == {"validation_auc": 0.9}
    assert _tuning_lineage(tracker, client.get_run(untuned.run_id)) is None


def test_the_contracts_limits_are_the_platform_limits() -> None:
    """pipelines.contract runs in the training container without platform_contract: same numbers."""
    from pipelines import contract
    from platform_contract import limits

    assert contract.MAX_CATEGORICAL_VALUES == limits.TUNING_MAX_CATEGORICAL_VALUES
    assert contract.MAX_TUNED_HYPERPARAMETERS == limits.TUNING_MAX_HYPERPARAMETERS
    assert (
        "platform_contract"
        not in resolve_contract_path("churn").parent.parent.joinpath("pipelines", "contract.py").read_text()
    )
