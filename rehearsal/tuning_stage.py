"""``mlops rehearse --tune``: the first training run goes through a hyperparameter tuning job.

The rehearsal's copy of the rehearsed contract gets a ``tuning`` section (the contract's own when it
has one, else :func:`default_search_space` for its estimator), and its catalog entry a bounded size
(:data:`REHEARSAL_TRIALS` trials, :data:`REHEARSAL_PARALLEL` at once), so the training DAG takes its
tuning branch: SageMakerTuningOperator -> :class:`rehearsal.tuning.SageMakerTuning` runs the trials ->
the best trial's model is evaluated and registered. The evidence (trials, best objective) goes into
the train stage's evidence and headline.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rehearsal.run import RunContext

REHEARSAL_TRIALS = 3
"""Trials of the rehearsal's tuning job (the stack config's ``models[].tuning.maxJobs``)."""
REHEARSAL_PARALLEL = 2
"""Trials at once (``maxParallelJobs``)."""

# One searched hyperparameter per estimator: cheap trials whose scores differ.
_SEARCH: dict[str, dict[str, Any]] = {
    "logistic_regression": {"C": {"type": "continuous", "min": 0.01, "max": 10.0, "scaling": "Logarithmic"}},
    "ridge": {"alpha": {"type": "continuous", "min": 0.01, "max": 100.0, "scaling": "Logarithmic"}},
    "random_forest_classifier": {"max_depth": {"type": "integer", "min": 2, "max": 12}},
    "random_forest_regressor": {"max_depth": {"type": "integer", "min": 2, "max": 12}},
    "hist_gradient_boosting_classifier": {
        "learning_rate": {"type": "continuous", "min": 0.02, "max": 0.3, "scaling": "Logarithmic"}
    },
    "hist_gradient_boosting_regressor": {
        "learning_rate": {"type": "continuous", "min": 0.02, "max": 0.3, "scaling": "Logarithmic"}
    },
}


def tuning_enabled(ctx: RunContext) -> bool:
    """Whether the rehearsal was asked to tune (``--tune``)."""
    return bool(getattr(ctx.options, "tune", False))


def default_search_space(contract: Any) -> dict[str, Any]:
    """A ``tuning`` section for a contract without one: its estimator's main knob, the task's first metric."""
    from pipelines.contract import TUNING_OBJECTIVES

    metric = TUNING_OBJECTIVES[contract.task][0]  # validation:auc or validation:rmse
    return {
        "objective": {"metric": metric, "type": "Maximize" if metric.endswith("auc") else "Minimize"},
        "strategy": "Bayesian",
        "parameters": _SEARCH[contract.training.estimator],
    }


def add_tuning(contract_file: Path, contract: Any) -> None:
    """Give the rehearsal's copy of the contract a tuning section (the contract's own is kept)."""
    import yaml

    from pipelines.contract import parse_contract

    data = yaml.safe_load(contract_file.read_text())
    if not data.get("tuning"):
        data["tuning"] = default_search_space(contract)
        parse_contract(data, str(contract_file))  # the section is valid before the DAG sees it
        contract_file.write_text(yaml.safe_dump(data, sort_keys=False))


def catalog_limits() -> dict[str, int]:
    """The rehearsed model's ``tuning`` entry in the rehearsal's stack config."""
    return {"maxJobs": REHEARSAL_TRIALS, "maxParallelJobs": REHEARSAL_PARALLEL}


def tuning_evidence(sagemaker: Any, training_job: str) -> dict[str, Any] | None:
    """The tuning job behind ``training_job`` (a trial ``<tuning job>-<NNN>-<hex>``): trials, counters,
    best objective; None when the job is not a trial."""
    parts = training_job.rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    try:
        job = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=parts[0])
    except Exception:  # not a tuning job after all
        return None
    trials = sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=parts[0], MaxResults=100
    )["TrainingJobSummaries"]
    best = job.get("BestTrainingJob") or {}
    objective = best.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    config = job["HyperParameterTuningJobConfig"]
    return {
        "tuning_job": parts[0],
        "status": job["HyperParameterTuningJobStatus"],
        "strategy": config["Strategy"],
        "objective": config["HyperParameterTuningJobObjective"],
        "max_jobs": config["ResourceLimits"]["MaxNumberOfTrainingJobs"],
        "max_parallel_jobs": config["ResourceLimits"]["MaxParallelTrainingJobs"],
        "counters": job.get("TrainingJobStatusCounters"),
        "best_training_job": best.get("TrainingJobName"),
        "best_objective": objective.get("Value"),
        "trials": [
            {
                "name": t["TrainingJobName"],
                "status": t["TrainingJobStatus"],
                "hyperparameters": t.get("TunedHyperParameters"),
                "objective": (t.get("FinalHyperParameterTuningJobObjectiveMetric") or {}).get("Value"),
            }
            for t in trials
        ],
        "registered_best": best.get("TrainingJobName") == training_job,
    }


def check_tuning(evidence: dict[str, Any]) -> str | None:
    """With ``--tune``: the package came from a Completed tuning job's best trial."""
    tuning = evidence.get("tuning")
    if not tuning:
        return f"--tune: the registered model's training job {evidence.get('training_job')} is not a tuning trial"
    if tuning["status"] != "Completed":
        return f"tuning job {tuning['tuning_job']} is {tuning['status']}"
    if not tuning["registered_best"]:
        return f"the registered model is not the best trial {tuning['best_training_job']}"
    if len(tuning["trials"]) != tuning["max_jobs"]:
        return (
            f"tuning job {tuning['tuning_job']} ran {len(tuning['trials'])} trials, not {tuning['max_jobs']}"
        )
    return None


def headline(evidence: dict[str, Any]) -> str:
    """``tuned 3 trials (best validation:auc 0.83); `` or empty without tuning."""
    tuning = evidence.get("tuning")
    if not tuning or tuning.get("best_objective") is None:
        return ""
    metric = tuning["objective"]["MetricName"]
    return f"tuned {len(tuning['trials'])} trials (best {metric} {float(tuning['best_objective']):.3f}); "
