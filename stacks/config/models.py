"""The model catalog: ``mlops-platform:models``, one entry per model, every name derived from it.

Example::

    mlops-platform:models:
      - name: churn
        contract: churn              # contracts/churn.yaml
        endpoint: {mode: realtime, instanceType: ml.m5.large, instanceCount: 2, strategy: CANARY}
        monitoring: {schedule: "@hourly", driftShareThreshold: 0.3}
        tuning: {maxJobs: 20, maxParallelJobs: 4}   # used when contracts/churn.yaml has `tuning`
      - name: housing
        contract: housing
        endpoint: {mode: batch}

Physical names (model package group, endpoint, capture prefix, Glue capture table, ``Pipeline``
metric dimension, DAG ids, training-job prefix) come from :func:`platform_contract.naming.model_names`;
:class:`stacks.config.platform.PlatformConfig` checks them, their uniqueness and the contract files
when it is parsed.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from stacks.config.base import PROJECT, _Section
from stacks.config.ml import EndpointConfig

_CONTRACT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_CRON_OR_PRESET = re.compile(r"^(@(hourly|daily|weekly|monthly|yearly)|(\S+\s+){4}\S+)$")


class MonitoringConfig(_Section):
    """A model's drift monitoring: when its monitoring DAG runs and when its alarms fire."""

    schedule: str = Field(
        default="@hourly", description="Airflow schedule of the monitoring DAG (a preset or 5-field cron)."
    )
    drift_share_threshold: float = Field(
        default=0.3, description="Alarm when DriftShare (share of drifted features) exceeds this (0-1)."
    )
    missing_value_rate_threshold: float = Field(
        default=0.1, description="Alarm when MissingValueRate of captured rows exceeds this (0-1)."
    )
    spark_drift_min_bytes: int | None = Field(
        default=None,
        description=(
            "Captured bytes of a window from which the monitoring DAG computes drift with the Spark job on "
            "EMR on EKS instead of in process (default: the environment's, "
            "platform_contract.limits.SPARK_DRIFT_MIN_BYTES)."
        ),
    )

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        if not _CRON_OR_PRESET.match(value.strip()):
            raise ValueError("must be an Airflow preset such as @hourly or a 5-field cron like '0 * * * *'")
        return value.strip()

    @field_validator("spark_drift_min_bytes")
    @classmethod
    def _spark_bytes(cls, value: int | None) -> int | None:
        from platform_contract.limits import SPARK_DRIFT_MIN_BYTES_FLOOR

        if value is not None and value < SPARK_DRIFT_MIN_BYTES_FLOOR:
            raise ValueError(
                f"must be at least {SPARK_DRIFT_MIN_BYTES_FLOOR} byte(s) of captured data (e.g. 4294967296 "
                "for 4 GiB); leave it out for the environment's default"
            )
        return value

    @field_validator("drift_share_threshold", "missing_value_rate_threshold")
    @classmethod
    def _share(cls, value: float) -> float:
        if not 0 < value < 1:
            raise ValueError("must be a share between 0 and 1 (exclusive)")
        return value


class TuningLimitsConfig(_Section):
    """How big a model's hyperparameter tuning job is in this environment (used when its contract has a
    ``tuning`` section): SageMaker's default quotas bound both
    (https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-limits.html)."""

    max_jobs: int = Field(default=10, description="Trials per tuning job (MaxNumberOfTrainingJobs), 1-750.")
    max_parallel_jobs: int = Field(
        default=2, description="Trials at once (MaxParallelTrainingJobs), 1-10 and at most maxJobs."
    )

    @field_validator("max_jobs")
    @classmethod
    def _jobs(cls, value: int) -> int:
        from platform_contract.limits import TUNING_MAX_TRAINING_JOBS

        if not 1 <= value <= TUNING_MAX_TRAINING_JOBS:
            raise ValueError(f"must be 1 to {TUNING_MAX_TRAINING_JOBS} (SageMaker's quota per tuning job)")
        return value

    @field_validator("max_parallel_jobs")
    @classmethod
    def _parallel(cls, value: int) -> int:
        from platform_contract.limits import TUNING_MAX_PARALLEL_TRAINING_JOBS

        if not 1 <= value <= TUNING_MAX_PARALLEL_TRAINING_JOBS:
            raise ValueError(
                f"must be 1 to {TUNING_MAX_PARALLEL_TRAINING_JOBS} (SageMaker's default quota of parallel "
                "trials per tuning job; raise the quota before the value)"
            )
        return value

    @model_validator(mode="after")
    def _order(self) -> TuningLimitsConfig:
        if self.max_parallel_jobs > self.max_jobs:
            raise ValueError(
                f"maxParallelJobs ({self.max_parallel_jobs}) cannot exceed maxJobs ({self.max_jobs})"
            )
        return self


class ModelConfig(_Section):
    """One model of the catalog: its name, its dataset contract and how it is served and monitored."""

    name: str = Field(description="Model name; its slug (`_` -> `-`, lowercase) names every resource.")
    contract: str = Field(description="Dataset contract: a file `contracts/<contract>.yaml`.")
    endpoint: EndpointConfig = Field(
        default_factory=EndpointConfig,
        description="Serving: `mode` (realtime, batch, none) and the endpoint's capacity and guardrails.",
    )
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig, description="Drift monitoring.")
    tuning: TuningLimitsConfig = Field(
        default_factory=TuningLimitsConfig,
        description="Hyperparameter tuning size (`maxJobs`, `maxParallelJobs`) when the contract tunes.",
    )

    @field_validator("contract")
    @classmethod
    def _contract(cls, value: str) -> str:
        if not _CONTRACT_NAME.match(value):
            raise ValueError("must be a contract file name without .yaml, e.g. churn")
        return value


def _entry_name(entry: object) -> object:
    if isinstance(entry, ModelConfig):
        return entry.name
    return entry.get("name") if isinstance(entry, dict) else None


def catalog_key(models: object, index: int) -> str:
    """The config key of catalog entry ``index`` as messages name it.

    ``mlops-platform:models['housing']`` when the entry's name is a valid model name that no other
    entry shares (after normalisation); else the position, ``mlops-platform:models[1]``, since the
    name cannot say which entry is meant (missing, invalid, or listed twice). ``models`` is the
    catalog as written (a list of mappings) or parsed (``ModelConfig`` objects).
    """
    from platform_contract.naming import InvalidNameError, model_slug

    positional = f"{PROJECT}:models[{index}]"
    entries = list(models) if isinstance(models, list | tuple) else []
    if not 0 <= index < len(entries):
        return positional

    def slug_of(entry: object) -> str | None:
        name = _entry_name(entry)
        if not isinstance(name, str):
            return None
        try:
            return model_slug(name)
        except InvalidNameError:
            return None

    slug = slug_of(entries[index])
    if slug is None or [slug_of(e) for e in entries].count(slug) != 1:
        return positional
    return f"{PROJECT}:models[{_entry_name(entries[index])!r}]"


def default_models() -> list[ModelConfig]:
    """The catalog when ``models`` is not set: the churn example model."""
    return [ModelConfig(name="churn", contract="churn")]


def model_config_path(models: list[dict[str, object]], group_name: str, prefix: str) -> str:
    """The ``pulumi config set --path`` key of the catalog entry whose model package group, in the
    environment ``prefix`` of the package, is ``group_name``: ``models[<i>].endpoint.modelPackageArn``.

    The promote build uses it to deploy an approved package to its own model's endpoint.

    Raises:
        ValueError: no entry of ``models`` (the target stack's ``mlops-platform:models``) owns the group.
    """
    from platform_contract.naming import InvalidNameError, model_names

    for i, entry in enumerate(models):
        try:
            if model_names(prefix, str(entry.get("name"))).model_package_group == group_name:
                return f"models[{i}].endpoint.modelPackageArn"
        except InvalidNameError:
            continue
    known = ", ".join(str(m.get("name")) for m in models)
    raise ValueError(
        f"no model of the target stack's catalog ({known}) has the group {group_name!r} under {prefix!r}; "
        "add the model to mlops-platform:models of the target stack"
    )
