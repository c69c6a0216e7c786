"""SageMaker hyperparameter tuning jobs that run: trials through the emulator's training jobs.

moto records ``CreateHyperParameterTuningJob`` and describes it ``Completed`` at once with a made-up
best trial. :class:`SageMakerTuning` runs it as SageMaker automatic model tuning does:

* ``CreateHyperParameterTuningJob`` validates what AWS validates synchronously (name of 1-32
  characters, resource limits within the default quotas, ranges, an objective metric among the
  training definition's MetricDefinitions, a role SageMaker can assume through the training job's own
  checks) and starts the job ``InProgress`` in a background thread;
* the thread samples the search space and launches up to ``MaxNumberOfTrainingJobs`` training jobs,
  at most ``MaxParallelTrainingJobs`` at a time, named ``<tuning job>-<NNN>-<8 hex>`` as SageMaker
  names them, through ``CreateTrainingJob`` (so :class:`rehearsal.training.SageMakerTraining` runs each
  under the container contract, acting as the job role), with the static and the sampled
  hyperparameters and the tuning job's tags;
* each trial's objective is its ``FinalMetricDataList`` entry of the objective metric (the
  MetricDefinitions regexes over its log); a failed trial counts as ``NonRetryableError``, a completed
  one without the metric as objective ``Failed``;
* ``DescribeHyperParameterTuningJob`` reports the status, the counters, ``BestTrainingJob`` (by the
  objective's ``Maximize``/``Minimize``) with ``FinalHyperParameterTuningJobObjectiveMetric``;
  ``ListTrainingJobsForHyperParameterTuningJob`` lists the trials (sorting, status filter, paging);
  ``StopHyperParameterTuningJob`` stops the running trials;
* no trial with an objective: the tuning job is ``Failed`` with the reason.

Where it differs from AWS (for the "from rehearsal to AWS" notes):

* ``Random`` samples uniformly (log-uniform for ``Logarithmic``); ``Bayesian`` is the same seeded
  random search (the emulator has no Bayesian model), so the best trial can differ from AWS's;
  ``Auto`` scaling is linear; ``Hyperband`` and ``Grid``, warm starts, early stopping and several
  training definitions are refused as not emulated;
* sampling is seeded by the tuning job name and the extension's ``seed``: the same job samples the
  same values every rehearsal;
* trials are created with the emulator's root identity (SageMaker's own); on AWS the service creates
  them and the caller's ``iam:PassRole`` on the job role is checked when the tuning job is created.

API: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateHyperParameterTuningJob.html,
API_DescribeHyperParameterTuningJob.html, API_HyperParameterTrainingJobSummary.html,
API_ListTrainingJobsForHyperParameterTuningJob.html; limits:
https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-limits.html
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from platform_contract.limits import (
    TUNING_JOB_NAME,
    TUNING_MAX_CATEGORICAL_VALUES,
    TUNING_MAX_HYPERPARAMETERS,
    TUNING_MAX_PARALLEL_TRAINING_JOBS,
    TUNING_MAX_TRAINING_JOBS,
)

if TYPE_CHECKING:
    from rehearsal.emulator import Emulator

_TERMINAL = {"Completed", "Failed", "Stopped"}
_STRATEGIES = {"Bayesian", "Random"}
_SCALINGS = {"Auto", "Linear", "Logarithmic", "ReverseLogarithmic"}


def _now() -> Any:
    from moto.core.utils import utcnow

    return utcnow()


def _validation_error(message: str) -> Exception:
    from moto.sagemaker.exceptions import ValidationError

    return ValidationError(message)


@dataclass
class _Patch:
    owner: Any
    attribute: str
    original: Any
    existed: bool


@dataclass
class _Trial:
    name: str
    arn: str
    hyperparameters: dict[str, str]
    created: Any
    status: str = "InProgress"
    started: Any = None
    ended: Any = None
    failure_reason: str | None = None
    objective: float | None = None
    objective_status: str = "Pending"


@dataclass
class _TuningJob:
    name: str
    fake: Any  # moto's HyperParameterTuningJob: the record DescribeHyperParameterTuningJob serializes
    request: dict[str, Any]
    trials: list[_Trial] = field(default_factory=list)
    stop_requested: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    @property
    def config(self) -> dict[str, Any]:
        """HyperParameterTuningJobConfig of the request."""
        return self.request["HyperParameterTuningJobConfig"]

    @property
    def objective(self) -> dict[str, Any]:
        """HyperParameterTuningJobObjective (Type, MetricName)."""
        return self.config["HyperParameterTuningJobObjective"]


def sample(ranges: dict[str, Any], rng: random.Random) -> dict[str, str]:
    """One point of the search space (``ParameterRanges``), values as the strings a trial receives."""
    point: dict[str, str] = {}
    for spec in ranges.get("ContinuousParameterRanges") or []:
        low, high = float(spec["MinValue"]), float(spec["MaxValue"])
        scaling = spec.get("ScalingType", "Auto")
        if scaling == "Logarithmic":
            value = math.exp(rng.uniform(math.log(low), math.log(high)))
        elif scaling == "ReverseLogarithmic":
            value = 1 - math.exp(rng.uniform(math.log(1 - high), math.log(1 - low)))
        else:
            value = rng.uniform(low, high)
        point[spec["Name"]] = repr(min(max(value, low), high))
    for spec in ranges.get("IntegerParameterRanges") or []:
        low, high = int(spec["MinValue"]), int(spec["MaxValue"])
        if spec.get("ScalingType") == "Logarithmic":
            value = round(math.exp(rng.uniform(math.log(low), math.log(high))))
        else:
            value = rng.randint(low, high)
        point[spec["Name"]] = str(min(max(int(value), low), high))
    for spec in ranges.get("CategoricalParameterRanges") or []:
        point[spec["Name"]] = str(rng.choice(list(spec["Values"])))
    return point


def _check_ranges(ranges: dict[str, Any]) -> None:
    names: list[str] = []
    for kind in ("ContinuousParameterRanges", "IntegerParameterRanges"):
        for spec in ranges.get(kind) or []:
            name = str(spec.get("Name"))
            names.append(name)
            scaling = spec.get("ScalingType", "Auto")
            if scaling not in _SCALINGS:
                raise _validation_error(
                    f"{kind} {name}: ScalingType {scaling!r} is not one of {sorted(_SCALINGS)}"
                )
            try:
                low = float(spec["MinValue"]) if kind.startswith("Continuous") else int(spec["MinValue"])
                high = float(spec["MaxValue"]) if kind.startswith("Continuous") else int(spec["MaxValue"])
            except (KeyError, ValueError):
                raise _validation_error(
                    f"{kind} {name}: MinValue and MaxValue must be {'numbers' if kind.startswith('C') else 'integers'}"
                ) from None
            if not low < high:
                raise _validation_error(f"{kind} {name}: MinValue {low} must be less than MaxValue {high}")
            if scaling == "Logarithmic" and low <= 0:
                raise _validation_error(f"{kind} {name}: Logarithmic scaling needs MinValue > 0")
            if scaling == "ReverseLogarithmic" and (
                kind.startswith("Integer") or not (low >= 0 and high < 1)
            ):
                raise _validation_error(
                    f"{kind} {name}: ReverseLogarithmic scaling is for continuous ranges with 0 <= MinValue "
                    "< MaxValue < 1"
                )
    for spec in ranges.get("CategoricalParameterRanges") or []:
        name = str(spec.get("Name"))
        names.append(name)
        values = spec.get("Values") or []
        if not 1 <= len(values) <= TUNING_MAX_CATEGORICAL_VALUES:
            raise _validation_error(
                f"CategoricalParameterRanges {name}: 1 to {TUNING_MAX_CATEGORICAL_VALUES} values, got {len(values)}"
            )
    if not names:
        raise _validation_error("ParameterRanges: give at least one range to search")
    if len(names) > TUNING_MAX_HYPERPARAMETERS:
        raise _validation_error(f"ParameterRanges: at most {TUNING_MAX_HYPERPARAMETERS} hyperparameters")
    if len(set(names)) != len(names):
        raise _validation_error(f"ParameterRanges: each hyperparameter once, got {sorted(names)}")


class SageMakerTuning:
    """Extension: hyperparameter tuning jobs launch real trials (see the module docstring).

    Install it after :class:`rehearsal.training.SageMakerTraining` (which runs the trials). ``seed``
    seeds the sampling with the job name; ``poll_s`` is how often the tuning job polls its trials.
    """

    name = "sagemaker-tuning"

    def __init__(self, *, seed: int = 0, poll_s: float = 0.2) -> None:
        self.seed = seed
        self.poll_s = poll_s
        self._emulator: Emulator | None = None
        self._jobs: dict[str, _TuningJob] = {}
        self._lock = threading.Lock()
        self._patches: list[_Patch] = []
        self._closing = threading.Event()

    # --- Extension protocol -------------------------------------------------------------------

    def install(self, emulator: Emulator) -> None:
        """Patch moto's SageMaker responses for Create/Stop/ListTrainingJobsFor... tuning jobs."""
        from moto.sagemaker.responses import SageMakerResponse

        self._emulator = emulator
        self._closing.clear()
        extension = self

        def create(response: Any) -> Any:
            return extension._create(response)

        def stop(response: Any) -> Any:
            return extension._stop(response)

        def list_trials(response: Any) -> Any:
            return extension._list_trials(response)

        self._patch(SageMakerResponse, "create_hyper_parameter_tuning_job", create)
        self._patch(SageMakerResponse, "stop_hyper_parameter_tuning_job", stop)
        self._patch(SageMakerResponse, "list_training_jobs_for_hyper_parameter_tuning_job", list_trials)

    def close(self) -> None:
        """Stop launching trials, join the tuning threads, undo the patches (trials end with training)."""
        self._closing.set()
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.stop_requested.set()
        for job in jobs:
            if job.thread is not None:
                job.thread.join(timeout=30)
        for patch in reversed(self._patches):
            if patch.existed:
                setattr(patch.owner, patch.attribute, patch.original)
            else:
                delattr(patch.owner, patch.attribute)
        self._patches.clear()

    def _patch(self, owner: Any, attribute: str, replacement: Callable[..., Any]) -> None:
        existed = attribute in owner.__dict__
        self._patches.append(_Patch(owner, attribute, owner.__dict__.get(attribute), existed))
        setattr(owner, attribute, replacement)

    def _original(self, attribute: str) -> Any:
        return next(p.original for p in self._patches if p.attribute == attribute)

    # --- for tests and the rehearsal ----------------------------------------------------------

    def wait(self, name: str, timeout_s: float = 600) -> str:
        """Block until the tuning job's thread ends; return its final status."""
        with self._lock:
            job = self._jobs[name]
        if job.thread is not None:
            job.thread.join(timeout=timeout_s)
            if job.thread.is_alive():
                raise TimeoutError(f"tuning job {name} still running after {timeout_s}s")
        return str(job.fake.hyper_parameter_tuning_job_status)

    # --- the API --------------------------------------------------------------------------------

    def _create(self, response: Any) -> Any:
        from moto.core.responses import ActionResult

        if self._closing.is_set():
            raise _validation_error("the emulator is shutting down")
        params: dict[str, Any] = copy.deepcopy(json.loads(response.body or "{}"))
        self._validate(params)
        name = str(params["HyperParameterTuningJobName"])
        backend = response.sagemaker_backend
        with self._lock:
            result = self._original("create_hyper_parameter_tuning_job")(response)  # refuses a reused name
            fake = backend.hyper_parameter_tuning_jobs[name]
            now = _now()
            fake.hyper_parameter_tuning_job_status = "InProgress"
            fake.creation_time = fake.last_modified_time = now
            fake.hyper_parameter_tuning_end_time = None
            fake.best_training_job = None
            fake.OverallBestTrainingJob = None
            fake.tuning_job_completion_details = None
            fake.failure_reason = None
            fake.consumed_resources = {"RuntimeInSeconds": 0}
            self._set_counters(fake, [])
            job = _TuningJob(name=name, fake=fake, request=params)
            job.thread = threading.Thread(target=self._run, args=(job,), name=f"tuning-{name}", daemon=True)
            self._jobs[name] = job
        job.thread.start()
        return result if result is not None else ActionResult({"HyperParameterTuningJobArn": fake.arn})

    def _validate(self, params: dict[str, Any]) -> None:
        name = str(params.get("HyperParameterTuningJobName") or "")
        if not TUNING_JOB_NAME.match(name):
            raise _validation_error(
                f"1 validation error detected: Value '{name}' at 'hyperParameterTuningJobName' failed to "
                "satisfy constraint: Member must satisfy regular expression pattern: "
                "^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}"
            )
        config = params.get("HyperParameterTuningJobConfig") or {}
        strategy = config.get("Strategy")
        if strategy not in _STRATEGIES:
            raise _validation_error(
                f"Strategy {strategy!r}: the emulator runs Bayesian (as seeded random search) and Random; "
                "Hyperband and Grid are not emulated"
            )
        if params.get("TrainingJobDefinitions") or params.get("WarmStartConfig") or params.get("Autotune"):
            raise _validation_error(
                "the emulator runs one TrainingJobDefinition without WarmStartConfig or Autotune"
            )
        if config.get("TrainingJobEarlyStoppingType", "Off") != "Off":
            raise _validation_error("TrainingJobEarlyStoppingType: only Off is emulated")
        limits = config.get("ResourceLimits") or {}
        max_jobs = limits.get("MaxNumberOfTrainingJobs")
        parallel = limits.get("MaxParallelTrainingJobs")
        if not isinstance(max_jobs, int) or not 1 <= max_jobs <= TUNING_MAX_TRAINING_JOBS:
            raise _validation_error(
                f"ResourceLimits.MaxNumberOfTrainingJobs must be 1 to {TUNING_MAX_TRAINING_JOBS} "
                f"(default quota), got {max_jobs!r}"
            )
        if not isinstance(parallel, int) or not 1 <= parallel <= TUNING_MAX_PARALLEL_TRAINING_JOBS:
            raise _validation_error(
                f"ResourceLimits.MaxParallelTrainingJobs must be 1 to {TUNING_MAX_PARALLEL_TRAINING_JOBS} "
                f"(default quota), got {parallel!r}"
            )
        _check_ranges(config.get("ParameterRanges") or {})
        definition = params.get("TrainingJobDefinition")
        if not isinstance(definition, dict):
            raise _validation_error("TrainingJobDefinition is required")
        objective = config.get("HyperParameterTuningJobObjective") or {}
        if objective.get("Type") not in {"Maximize", "Minimize"}:
            raise _validation_error("HyperParameterTuningJobObjective.Type must be Maximize or Minimize")
        metrics = [
            m.get("Name")
            for m in (definition.get("AlgorithmSpecification") or {}).get("MetricDefinitions") or []
        ]
        if objective.get("MetricName") not in metrics:
            raise _validation_error(
                f"The objective metric {objective.get('MetricName')!r} is not defined in the "
                f"algorithm's MetricDefinitions {metrics}"
            )
        static = definition.get("StaticHyperParameters") or {}
        ranges = config.get("ParameterRanges") or {}
        tuned = {s["Name"] for kind in ranges.values() for s in kind or []}
        both = sorted(tuned & set(static))
        if both:
            raise _validation_error(f"Hyperparameters {both} are both static and tunable")

    def _stop(self, response: Any) -> Any:
        from moto.core.responses import EmptyResult

        name = str(response._get_param("HyperParameterTuningJobName") or "")
        response.sagemaker_backend.describe_hyper_parameter_tuning_job(name)  # ResourceNotFound when unknown
        with self._lock:
            job = self._jobs.get(name)
            if job is None or job.fake.hyper_parameter_tuning_job_status != "InProgress":
                status = job.fake.hyper_parameter_tuning_job_status if job else "unknown"
                raise _validation_error(f"The hyperparameter tuning job {name} is {status}, not InProgress")
            job.fake.hyper_parameter_tuning_job_status = "Stopping"
            job.stop_requested.set()
        return EmptyResult()

    def _list_trials(self, response: Any) -> Any:
        from moto.core.responses import ActionResult

        name = str(response._get_param("HyperParameterTuningJobName") or "")
        response.sagemaker_backend.describe_hyper_parameter_tuning_job(name)  # ResourceNotFound when unknown
        status_filter = response._get_param("StatusEquals")
        sort_by = response._get_param("SortBy") or "Name"
        descending = (response._get_param("SortOrder") or "Ascending") == "Descending"
        max_results = int(response._get_param("MaxResults") or 10)
        start = int(response._get_param("NextToken") or 0)
        with self._lock:
            job = self._jobs.get(name)
            trials = list(job.trials) if job else []
            objective_type = job.objective["Type"] if job else "Maximize"
        if status_filter:
            trials = [t for t in trials if t.status == status_filter]
        keys: dict[str, Callable[[_Trial], Any]] = {
            "Name": lambda t: t.name,
            "CreationTime": lambda t: t.created,
            "Status": lambda t: t.status,
            "FinalObjectiveMetricValue": lambda t: (t.objective is None, t.objective or 0.0),
        }
        trials.sort(key=keys.get(sort_by, keys["Name"]), reverse=descending)
        page = trials[start : start + max_results]
        body: dict[str, Any] = {"TrainingJobSummaries": [self._summary(job, t, objective_type) for t in page]}
        if start + max_results < len(trials):
            body["NextToken"] = str(start + max_results)
        return ActionResult(body)

    # --- running a tuning job ---------------------------------------------------------------------

    @staticmethod
    def _summary(job: _TuningJob | None, trial: _Trial, objective_type: str) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "TrainingJobName": trial.name,
            "TrainingJobArn": trial.arn,
            "TuningJobName": job.name if job else "",
            "CreationTime": trial.created,
            "TrainingJobStatus": trial.status,
            "TunedHyperParameters": dict(trial.hyperparameters),
            "ObjectiveStatus": trial.objective_status,
        }
        if trial.started is not None:
            summary["TrainingStartTime"] = trial.started
        if trial.ended is not None:
            summary["TrainingEndTime"] = trial.ended
        if trial.failure_reason:
            summary["FailureReason"] = trial.failure_reason
        if trial.objective is not None and job is not None:
            summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
                "Type": objective_type,
                "MetricName": job.objective["MetricName"],
                "Value": trial.objective,
            }
        return summary

    @staticmethod
    def _set_counters(fake: Any, trials: list[_Trial]) -> None:
        fake.training_job_status_counters = {
            "Completed": sum(t.status == "Completed" for t in trials),
            "InProgress": sum(t.status in {"InProgress", "Stopping"} for t in trials),
            "RetryableError": 0,
            "NonRetryableError": sum(t.status == "Failed" for t in trials),
            "Stopped": sum(t.status == "Stopped" for t in trials),
        }
        fake.objective_status_counters = {
            "Succeeded": sum(t.objective_status == "Succeeded" for t in trials),
            "Pending": sum(t.objective_status == "Pending" for t in trials),
            "Failed": sum(t.objective_status == "Failed" for t in trials),
        }

    def _launch(self, job: _TuningJob, sagemaker: Any, index: int, rng: random.Random) -> _Trial:
        definition = job.request["TrainingJobDefinition"]
        tuned = sample(job.config["ParameterRanges"], rng)
        name = f"{job.name}-{index:03d}-{uuid.UUID(int=rng.getrandbits(128)).hex[:8]}"
        request: dict[str, Any] = {
            "TrainingJobName": name,
            "AlgorithmSpecification": definition["AlgorithmSpecification"],
            "HyperParameters": {**(definition.get("StaticHyperParameters") or {}), **tuned},
            **{
                k: v
                for k, v in definition.items()
                if k not in {"AlgorithmSpecification", "StaticHyperParameters", "DefinitionName"}
            },
        }
        if job.request.get("Tags"):
            request["Tags"] = job.request["Tags"]
        trial = _Trial(name=name, arn="", hyperparameters=tuned, created=_now())
        try:
            trial.arn = sagemaker.create_training_job(**request)["TrainingJobArn"]
        except Exception as exc:  # a definition CreateTrainingJob refuses: the trial fails with its reason
            trial.status, trial.objective_status = "Failed", "Failed"
            trial.failure_reason = (
                f"ClientError: {getattr(exc, 'response', {}).get('Error', {}).get('Message', exc)}"
            )
            trial.ended = _now()
        return trial

    def _poll(self, job: _TuningJob, sagemaker: Any, trial: _Trial) -> None:
        described = sagemaker.describe_training_job(TrainingJobName=trial.name)
        status = described["TrainingJobStatus"]
        trial.started = described.get("TrainingStartTime")
        if status not in _TERMINAL:
            return
        trial.ended = described.get("TrainingEndTime") or _now()
        trial.failure_reason = described.get("FailureReason")
        metric = job.objective["MetricName"]
        values = [m["Value"] for m in described.get("FinalMetricDataList") or [] if m["MetricName"] == metric]
        if status == "Completed" and values:
            trial.objective, trial.objective_status = float(values[-1]), "Succeeded"
        else:
            trial.objective_status = "Failed"
            if status == "Completed":
                trial.failure_reason = f"The training job did not emit the objective metric {metric}"
        trial.status = status

    def _run(self, job: _TuningJob) -> None:
        emulator = self._emulator
        assert emulator is not None
        sagemaker = emulator.client("sagemaker")
        rng = random.Random(f"{job.name}:{self.seed}")  # noqa: S311 - sampling, not secrets
        limits = job.config["ResourceLimits"]
        total, parallel = int(limits["MaxNumberOfTrainingJobs"]), int(limits["MaxParallelTrainingJobs"])
        started = time.monotonic()
        try:
            while True:
                running = [t for t in job.trials if t.status in {"InProgress", "Stopping"}]
                for trial in running:
                    self._poll(job, sagemaker, trial)
                stopping = job.stop_requested.is_set()
                if stopping:
                    for trial in running:
                        if trial.status == "InProgress":
                            with contextlib.suppress(
                                Exception
                            ):  # it ended meanwhile; the next poll reads how
                                sagemaker.stop_training_job(TrainingJobName=trial.name)
                running = [t for t in job.trials if t.status in {"InProgress", "Stopping"}]
                while not stopping and len(running) < parallel and len(job.trials) < total:
                    trial = self._launch(job, sagemaker, len(job.trials) + 1, rng)
                    with self._lock:
                        job.trials.append(trial)
                    if trial.status == "InProgress":
                        running.append(trial)
                with self._lock:
                    self._set_counters(job.fake, job.trials)
                    self._set_best(job)
                    job.fake.last_modified_time = _now()
                if not running and (stopping or len(job.trials) >= total):
                    break
                if self._closing.is_set():
                    return
                time.sleep(self.poll_s)
            self._finish(job, stopped=job.stop_requested.is_set(), seconds=time.monotonic() - started)
        except Exception as exc:  # an emulator bug or the server going away must still end the job
            with self._lock:
                job.fake.hyper_parameter_tuning_job_status = "Failed"
                job.fake.failure_reason = f"InternalServerError: emulator: {exc!r}"[:1024]
                job.fake.hyper_parameter_tuning_end_time = _now()

    def _set_best(self, job: _TuningJob) -> None:
        scored = [t for t in job.trials if t.objective is not None]
        if not scored:
            return
        maximize = job.objective["Type"] == "Maximize"
        best = max(scored, key=lambda t: t.objective if maximize else -t.objective)  # type: ignore[operator]
        summary = self._summary(job, best, job.objective["Type"])
        job.fake.best_training_job = summary
        job.fake.OverallBestTrainingJob = summary

    def _finish(self, job: _TuningJob, *, stopped: bool, seconds: float) -> None:
        with self._lock:
            self._set_counters(job.fake, job.trials)
            self._set_best(job)
            fake = job.fake
            fake.consumed_resources = {"RuntimeInSeconds": max(1, int(seconds))}
            fake.hyper_parameter_tuning_end_time = fake.last_modified_time = _now()
            if stopped:
                fake.hyper_parameter_tuning_job_status = "Stopped"
            elif fake.best_training_job is None:
                reasons = sorted({t.failure_reason for t in job.trials if t.failure_reason})
                fake.failure_reason = (
                    f"No training job succeeded after {len(job.trials)} attempts. Please take a look at the "
                    f"training job failures to get more details. First failure: {reasons[0] if reasons else 'none'}"
                )[:1024]
                fake.hyper_parameter_tuning_job_status = "Failed"
            else:
                fake.hyper_parameter_tuning_job_status = "Completed"
