"""Hyperparameter tuning: the CreateHyperParameterTuningJob request, the best trial, the trials in MLflow.

A contract with a ``tuning`` section (:class:`pipelines.contract.TuningConfig`) trains through a
SageMaker tuning job instead of one training job. The trials use the single job's training definition
(image, role, VpcConfig, KMS keys, channels, static hyperparameters, the MetricDefinitions regexes over
the ``validation:<metric>=<value>`` lines :func:`pipelines.train.main` prints); each trial writes its
model to ``models/<contract>/<trial job name>/output/model.tar.gz`` and takes its trial job name as its
run ID, so the best trial's model goes through evaluate and register like a single job's.

How many trials run (``MaxNumberOfTrainingJobs``) and how many at once (``MaxParallelTrainingJobs``)
is the stack config's (``models[].tuning``), exported in the model catalog the DAGs read.

API: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateHyperParameterTuningJob.html
Limits: https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-limits.html
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.contract import ContractError, DatasetContract, TuningConfig, load_contract
from platform_contract.limits import (
    TUNING_JOB_NAME,
    TUNING_MAX_PARALLEL_TRAINING_JOBS,
    TUNING_MAX_TRAINING_JOBS,
)

if TYPE_CHECKING:
    from pipelines.aws import AwsClients
    from pipelines.settings import PipelineSettings
    from pipelines.tracking import Tracker

DEFAULT_MAX_JOBS = 10
"""Trials of a tuning job when the stack config sets none."""
DEFAULT_MAX_PARALLEL_JOBS = 2
"""Concurrent trials when the stack config sets none."""

# The training definition of a tuning job takes these CreateTrainingJob members (the others are the
# single job's own: its name and tags, which go on the tuning job).
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_HyperParameterTrainingJobDefinition.html
_DEFINITION_MEMBERS = (
    "RoleArn",
    "InputDataConfig",
    "VpcConfig",
    "OutputDataConfig",
    "ResourceConfig",
    "StoppingCondition",
    "EnableNetworkIsolation",
    "EnableInterContainerTrafficEncryption",
)


TRIAL_JOB_NAME = re.compile(
    r"^(?P<tuning_job>[a-zA-Z0-9](-*[a-zA-Z0-9])*)-(?P<index>\d{3})-(?P<suffix>[0-9a-f]{8})$"
)
"""A tuning trial's training job name: ``<tuning job>-<NNN>-<8 hex>``, as SageMaker names the trials."""
TUNING_STEP = "tuning"
"""``mlops.step`` tag of a tuning job's MLflow run (its trials: ``tuning-trial``)."""


class TuningError(ValueError):
    """A tuning job cannot be requested or has no usable result; the message says what to change."""


def check_resource_limits(max_jobs: int, max_parallel_jobs: int) -> None:
    """Refuse trial counts SageMaker refuses (default quotas) or that make no sense.

    Raises:
        TuningError: a count below 1, above the quota, or more parallel trials than trials.
    """
    for name, value, cap in (
        ("max jobs", max_jobs, TUNING_MAX_TRAINING_JOBS),
        ("max parallel jobs", max_parallel_jobs, TUNING_MAX_PARALLEL_TRAINING_JOBS),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= cap:
            raise TuningError(
                f"tuning {name} must be a whole number from 1 to {cap} (SageMaker's default quota), "
                f"got {value!r}; set it in the stack config (models[].tuning)"
            )
    if max_parallel_jobs > max_jobs:
        raise TuningError(
            f"tuning max parallel jobs ({max_parallel_jobs}) exceeds max jobs ({max_jobs}); lower it"
        )


def estimator_parameters(contract: DatasetContract) -> set[str]:
    """Hyperparameters the contract's estimator accepts (``seed`` stands for ``random_state``)."""
    from pipelines.train import ESTIMATORS

    module, cls_name, _task = ESTIMATORS[contract.training.estimator]
    names = set(getattr(importlib.import_module(module), cls_name)().get_params())
    return names | {"seed"}


def check_search_space(contract: DatasetContract) -> TuningConfig:
    """The contract's tuning section, checked against its estimator.

    Raises:
        ContractError: no tuning section, an unknown estimator, or a searched hyperparameter the
            estimator does not accept.
    """
    from pipelines.train import ESTIMATORS

    tuning = contract.tuning
    if tuning is None:
        raise ContractError(f"contract '{contract.name}' has no 'tuning' section")
    if contract.training.estimator not in ESTIMATORS:
        raise ContractError(
            f"contract '{contract.name}': unknown estimator '{contract.training.estimator}'; "
            f"choose one of {sorted(ESTIMATORS)}"
        )
    valid = estimator_parameters(contract)
    unknown = sorted(set(tuning.parameters) - valid)
    if unknown:
        raise ContractError(
            f"contract '{contract.name}': tuning.parameters {unknown} are not hyperparameters of "
            f"{contract.training.estimator}; valid: {sorted(valid)}"
        )
    return tuning


def _number(value: float, integer: bool) -> str:
    return str(int(value)) if integer else repr(float(value))


def _categorical(value: Any) -> str:
    """A categorical value as the trial receives it (``pipelines.train.parse_value`` reads it back)."""
    return value if isinstance(value, str) else json.dumps(value)


def parameter_ranges(tuning: TuningConfig) -> dict[str, list[dict[str, Any]]]:
    """``ParameterRanges`` of the tuning job config (API_ParameterRanges.html): values as strings."""
    ranges: dict[str, list[dict[str, Any]]] = {
        "IntegerParameterRanges": [],
        "ContinuousParameterRanges": [],
        "CategoricalParameterRanges": [],
    }
    for name, spec in sorted(tuning.parameters.items()):
        if spec.type == "categorical":
            values = [_categorical(v) for v in spec.values]
            ranges["CategoricalParameterRanges"].append({"Name": name, "Values": values})
            continue
        if spec.min is None or spec.max is None:  # the contract model refuses this; keep the types honest
            raise ContractError(f"tuning.parameters.{name}: a {spec.type} range needs 'min' and 'max'")
        integer = spec.type == "integer"
        key = "IntegerParameterRanges" if integer else "ContinuousParameterRanges"
        ranges[key].append(
            {
                "Name": name,
                "MinValue": _number(spec.min, integer),
                "MaxValue": _number(spec.max, integer),
                "ScalingType": spec.scaling,
            }
        )
    return ranges


def tuning_job_request(
    clients: AwsClients,
    contract_path: Path,
    tuning_job_name: str,
    train_uri: str,
    source_uri: str,
    max_jobs: int = DEFAULT_MAX_JOBS,
    max_parallel_jobs: int = DEFAULT_MAX_PARALLEL_JOBS,
) -> dict[str, Any]:
    """The CreateHyperParameterTuningJob request: the single job's training definition, the contract's
    search space and objective, the stack config's trial counts.

    Raises:
        ContractError: the contract has no valid tuning section.
        TuningError: a bad name or trial count.
    """
    from pipelines.train import training_job_request

    contract = load_contract(contract_path)
    tuning = check_search_space(contract)
    check_resource_limits(max_jobs, max_parallel_jobs)
    if not TUNING_JOB_NAME.match(tuning_job_name):
        raise TuningError(
            f"tuning job name {tuning_job_name!r}: 1-32 letters, digits and '-' (platform_contract.naming)"
        )
    single = training_job_request(clients, contract_path, tuning_job_name, train_uri, source_uri)
    static = {
        k: v
        for k, v in single["HyperParameters"].items()
        # each trial's run ID is its own job name (TRAINING_JOB_NAME), so its model and evaluation land
        # under models/<contract>/<trial>/ like a single job's; tuned values are not static
        if k != "run_id" and k not in tuning.parameters
    }
    spec = single["AlgorithmSpecification"]
    definition: dict[str, Any] = {
        "AlgorithmSpecification": {
            "TrainingImage": spec["TrainingImage"],
            "TrainingInputMode": spec["TrainingInputMode"],
            "MetricDefinitions": spec["MetricDefinitions"],
        },
        "StaticHyperParameters": static,
        **{k: single[k] for k in _DEFINITION_MEMBERS if k in single},
    }
    return {
        "HyperParameterTuningJobName": tuning_job_name,
        "HyperParameterTuningJobConfig": {
            "Strategy": tuning.strategy,
            "HyperParameterTuningJobObjective": {
                "Type": tuning.objective.type,
                "MetricName": tuning.objective.metric,
            },
            "ResourceLimits": {
                "MaxNumberOfTrainingJobs": max_jobs,
                "MaxParallelTrainingJobs": max_parallel_jobs,
            },
            "ParameterRanges": parameter_ranges(tuning),
            "TrainingJobEarlyStoppingType": "Off",
        },
        "TrainingJobDefinition": definition,
        "Tags": [*single["Tags"], {"Key": "mlops:step", "Value": "tuning"}],
    }


def _trial_row(summary: dict[str, Any]) -> dict[str, Any]:
    objective = summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    return {
        "training_job_name": summary["TrainingJobName"],
        "status": summary.get("TrainingJobStatus"),
        "objective_status": summary.get("ObjectiveStatus"),
        "objective": objective.get("Value"),
        "hyperparameters": dict(summary.get("TunedHyperParameters") or {}),
        "failure_reason": summary.get("FailureReason"),
    }


def tuning_result(clients: AwsClients, tuning_job_name: str) -> dict[str, Any]:
    """The finished tuning job: the best trial's model URI, objective and hyperparameters, every trial.

    Raises:
        TuningError: the tuning job did not complete, or has no best trial.
    """
    sagemaker = clients.sagemaker
    job = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning_job_name)
    status = job["HyperParameterTuningJobStatus"]
    best = job.get("BestTrainingJob")
    if status != "Completed" or not best:
        raise TuningError(
            f"tuning job {tuning_job_name} is {status} with no best trial: {job.get('FailureReason') or ''}"
        )
    trials: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"HyperParameterTuningJobName": tuning_job_name, "MaxResults": 100}
    while True:
        page = sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(**kwargs)
        trials += [_trial_row(s) for s in page.get("TrainingJobSummaries", [])]
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    trials.sort(key=lambda t: t["training_job_name"])
    name = best["TrainingJobName"]
    described = sagemaker.describe_training_job(TrainingJobName=name)
    model_uri = (described.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    if not model_uri:
        raise TuningError(f"the best trial {name} of {tuning_job_name} has no model artifact")
    objective = best["FinalHyperParameterTuningJobObjectiveMetric"]
    counters = job.get("TrainingJobStatusCounters") or {}
    return {
        "tuning_job_name": tuning_job_name,
        "best_training_job": name,
        "model_uri": model_uri,
        "objective_metric": objective["MetricName"],
        "objective_type": job["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["Type"],
        "best_objective": float(objective["Value"]),
        "best_hyperparameters": dict(best.get("TunedHyperParameters") or {}),
        "trials": trials,
        "completed": int(counters.get("Completed", 0)),
        "failed": int(counters.get("NonRetryableError", 0)) + int(counters.get("RetryableError", 0)),
    }


def log_trials(settings: PipelineSettings, experiment: str, result: dict[str, Any]) -> str | None:
    """Track the tuning job in MLflow: a parent run (the tuning job, best trial and objective) with one
    child run per trial (its tuned hyperparameters, objective and status). Off (None) without a
    tracking URI; else the parent run's ID.

    It goes through :func:`pipelines.tracking.open_tracker`, so the experiment and its artifact store are
    the training runs' (a store of its own default would land in the working directory).
    """
    from pipelines.tracking import open_tracker

    tracker = open_tracker(settings)
    if tracker is None:
        return None
    metric = str(result["objective_metric"]).replace(":", "_")  # MLflow metric names: no ':'
    tags = {
        "mlops.step": TUNING_STEP,
        "mlops.tuning_job": result["tuning_job_name"],
        "mlops.best_training_job": result["best_training_job"],
        "mlops.objective": f"{result['objective_type']} {result['objective_metric']}",
    }
    with tracker.run(experiment, str(result["tuning_job_name"]), tags=tags) as parent:
        parent.log_params({f"best.{k}": v for k, v in result["best_hyperparameters"].items()})
        parent.log_metrics(
            {
                f"best_{metric}": result["best_objective"],
                "trials_completed": result["completed"],
                "trials_failed": result["failed"],
            }
        )
        for trial in result["trials"]:
            trial_tags = {
                "mlops.step": "tuning-trial",
                "mlops.training_job": trial["training_job_name"],
                "mlops.status": str(trial["status"]),
                "mlops.best": str(trial["training_job_name"] == result["best_training_job"]),
            }
            if trial["failure_reason"]:
                trial_tags["mlops.failure_reason"] = str(trial["failure_reason"])[:5000]
            with tracker.run(
                experiment, str(trial["training_job_name"]), parent_run_id=parent.run_id, tags=trial_tags
            ) as child:
                child.log_params(trial["hyperparameters"])
                if trial["objective"] is not None:
                    child.log_metrics({metric: float(trial["objective"])})
        return str(parent.run_id)


def nest_tuning_run(
    tracker: Tracker, experiment_id: str, training_run_id: str, training_job: str
) -> str | None:
    """Put the tuning run of ``training_job`` (a tuning trial) under the training run that evaluated it.

    The tuning job's MLflow run (:func:`log_trials`, logged when the best trial was chosen, before
    evaluation) becomes a child of ``training_run_id`` (tag ``mlflow.parentRunId``), and the training run
    is tagged with the tuning job and its run: so the package's ``mlflow_run_id`` leads to the training
    run, its child the tuning run, and that run's children, every trial. None (nothing changed) when
    ``training_job`` is not a trial or its tuning job was not tracked; else the tuning run's ID.
    """
    from pipelines.tracking import TrackedRun

    match = TRIAL_JOB_NAME.match(training_job)
    if match is None:
        return None
    tuning_job = match["tuning_job"]
    found = tracker.client.search_runs(
        [experiment_id],
        filter_string=f"tags.`mlops.step` = '{TUNING_STEP}' and tags.`mlops.tuning_job` = '{tuning_job}'",
        max_results=1,
    )
    if not found:
        return None
    tuning_run_id = str(found[0].info.run_id)
    TrackedRun(tracker.client, tuning_run_id, experiment_id).set_tags({"mlflow.parentRunId": training_run_id})
    TrackedRun(tracker.client, training_run_id, experiment_id).set_tags(
        {"mlops.tuning_job": tuning_job, "mlops.tuning_run_id": tuning_run_id}
    )
    return tuning_run_id
