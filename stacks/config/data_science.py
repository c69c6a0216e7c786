"""Config sections of the data science layer: ``experimentation`` (Studio + managed MLflow) and
``featureStore`` (one feature group per model of the catalog). Example::

    mlops-platform:experimentation:
      studio: {enabled: true, userProfiles: [alice, bob], idleTimeoutMinutes: 120}
      mlflow: {kind: app, artifactPrefix: mlflow/}
    mlops-platform:featureStore:
      onlineStore: true
      onlineTtlDays: 30

Per-environment defaults (a value set in the stack file wins):

- ``experimentation.studio.enabled``: on in dev and staging, off in prod. Prod holds production data;
  interactive notebooks there are an explicit opt-in, while experiments reach prod through pipelines.
- ``experimentation.mlflow.enabled``: on everywhere: every training run logs to MLflow, in every
  environment that trains.
- ``featureStore.onlineStore``: off in dev (the offline store is what training reads; the online
  store bills per write), on in staging and prod (low-latency lookups at serving time).

Every feature group is derived from its model's contract; :func:`feature_group_plan` checks at
parse time that the contract can be one (a single unique key, names Feature Store accepts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

from pydantic import Field, field_validator, model_validator

from platform_contract.limits import (
    FEATURE_NAME,
    FEATURE_TYPES,
    MLFLOW_MAINTENANCE_WINDOW,
    RESERVED_FEATURE_NAMES,
    STUDIO_IDLE_TIMEOUT_MINUTES,
    USER_PROFILE_NAME,
    within,
)
from stacks.config.base import _Section
from stacks.config.contracts import SPLIT_COLUMN, ContractSchema

EVENT_TIME_DEFAULT = "event_time"
"""Event-time feature when a contract names no ``event_time`` column (``pipelines.contract.EVENT_TIME_DEFAULT``:
the ingestion writes the batch's ingestion time into it)."""

FeatureType = Literal["Integral", "Fractional", "String"]
"""The value types of a Feature Store feature."""


class StudioConfig(_Section):
    """The SageMaker AI domain (current Studio), VPC-only."""

    enabled: bool | None = Field(
        default=None, description="Declare the domain. Unset: on in dev and staging, off in prod."
    )
    user_profiles: list[str] = Field(default_factory=list, description="Studio user profile names.")
    idle_timeout_minutes: int = Field(
        default=60, description="JupyterLab/Code Editor apps shut down after this long idle (60-525600)."
    )
    max_idle_timeout_minutes: int = Field(
        default=480, description="Longest idle timeout a user may set on their own apps (60-525600)."
    )

    @field_validator("user_profiles")
    @classmethod
    def _profiles(cls, value: list[str]) -> list[str]:
        bad = [u for u in value if not USER_PROFILE_NAME.match(u)]
        if bad:
            raise ValueError(
                f"{bad} are not user profile names (letters, digits and '-', up to 63 characters)"
            )
        if len(set(value)) != len(value):
            raise ValueError("lists a user profile twice")
        return value

    @field_validator("idle_timeout_minutes", "max_idle_timeout_minutes")
    @classmethod
    def _idle(cls, value: int) -> int:
        if not within(value, STUDIO_IDLE_TIMEOUT_MINUTES):
            raise ValueError("must be between {} and {} minutes".format(*STUDIO_IDLE_TIMEOUT_MINUTES))
        return value

    @model_validator(mode="after")
    def _order(self) -> StudioConfig:
        if self.max_idle_timeout_minutes < self.idle_timeout_minutes:
            raise ValueError("studio.maxIdleTimeoutMinutes must be at least studio.idleTimeoutMinutes")
        return self


class MlflowConfig(_Section):
    """Managed MLflow on SageMaker AI."""

    enabled: bool = Field(
        default=True, description="Declare the MLflow server (every environment that trains)."
    )
    kind: Literal["app", "trackingServer"] = Field(
        default="app",
        description="`app`: an MLflow App (MLflow 3.x, serverless, no size); `trackingServer`: a sized "
        "MLflow tracking server (switch for features Apps lack; see docs/experimentation.md).",
    )
    artifact_prefix: str = Field(
        default="mlflow/", description="Prefix of the artifact store in the artifacts bucket (ends in `/`)."
    )
    tracking_server_size: Literal["Small", "Medium", "Large"] = Field(
        default="Small", description="`trackingServer` only: its size."
    )
    maintenance_window: str = Field(
        default="Sun:03:00", description="Weekly maintenance start, UTC (`Ddd:HH:MM`)."
    )

    @field_validator("artifact_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not value.endswith("/") or value.startswith("/"):
            raise ValueError("must be a key prefix ending in '/', e.g. mlflow/")
        return value

    @field_validator("maintenance_window")
    @classmethod
    def _window(cls, value: str) -> str:
        if not MLFLOW_MAINTENANCE_WINDOW.match(value):
            raise ValueError("must be like Sun:03:00 (day, 24-hour UTC time)")
        return value


class ExperimentationConfig(_Section):
    """Studio and MLflow (``components.experimentation.Experimentation``)."""

    enabled: bool = Field(default=True, description="Declare the experimentation layer at all.")
    studio: StudioConfig = Field(default_factory=StudioConfig, description="The SageMaker AI domain.")
    mlflow: MlflowConfig = Field(default_factory=MlflowConfig, description="Managed MLflow.")

    def studio_enabled(self, environment: str) -> bool:
        """Whether the domain is declared in ``environment`` (unset: dev and staging only)."""
        if not self.enabled:
            return False
        return self.studio.enabled if self.studio.enabled is not None else environment != "prod"

    def mlflow_enabled(self) -> bool:
        """Whether the MLflow server is declared."""
        return self.enabled and self.mlflow.enabled


class FeatureStoreConfig(_Section):
    """SageMaker Feature Store groups, one per model (``components.feature_store.FeatureStore``)."""

    enabled: bool = Field(default=True, description="Declare a feature group per model.")
    online_store: bool | None = Field(
        default=None,
        description="Add an online store to each group. Unset: off in dev, on in staging and prod.",
    )
    online_ttl_days: int | None = Field(
        default=None, description="Hard-delete online records this many days after their event time (>= 1)."
    )

    @field_validator("online_ttl_days")
    @classmethod
    def _ttl(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError("must be at least 1 day (or unset to keep records)")
        return value

    def online_enabled(self, environment: str) -> bool:
        """Whether the groups get an online store in ``environment`` (unset: staging and prod)."""
        return self.online_store if self.online_store is not None else environment != "dev"


@dataclass(frozen=True)
class FeatureGroupPlan:
    """What a model's feature group holds, derived from its contract (Pulumi-free)."""

    record_identifier: str
    """The contract's single unique key."""
    event_time_feature: str
    """The contract's ``event_time`` column, else :data:`EVENT_TIME_DEFAULT`."""
    features: tuple[tuple[str, FeatureType], ...]
    """Every feature with its Feature Store type: keys, inputs, target, event time (no split column)."""


def feature_group_plan(schema: ContractSchema) -> FeatureGroupPlan:
    """The feature group of a contract.

    Raises:
        ValueError: the contract cannot be a feature group (not exactly one unique key, a column name
            Feature Store rejects); the message says what to change.
    """
    if len(schema.unique_keys) != 1:
        raise ValueError(
            f"a feature group needs one record identifier, but unique_keys is {list(schema.unique_keys)}; "
            "list exactly one key column (combine composite keys into one column), or set featureStore.enabled: false"
        )
    event_time = schema.event_time or EVENT_TIME_DEFAULT
    features: list[tuple[str, FeatureType]] = [
        (c.name, cast(FeatureType, FEATURE_TYPES[c.type]))
        for c in schema.feature_columns
        if c.name != SPLIT_COLUMN
    ]
    if event_time in {n for n, _ in features}:
        raise ValueError(
            f"column {event_time!r} is already a key, feature or the target; name a separate datetime "
            "column as the contract's event_time"
        )
    features.append((event_time, "String"))
    bad = [n for n, _ in features if not FEATURE_NAME.match(n) or n in RESERVED_FEATURE_NAMES]
    if bad:
        raise ValueError(
            f"columns {bad} are not valid feature names (letters, digits, '_' and '-', starting with a letter "
            f"or digit; not {', '.join(sorted(RESERVED_FEATURE_NAMES))}); rename them in the contract"
        )
    return FeatureGroupPlan(
        record_identifier=schema.unique_keys[0], event_time_feature=event_time, features=tuple(features)
    )
