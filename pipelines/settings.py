"""Typed pipeline settings, loaded from ``MLOPS_*`` environment variables or a stack-outputs JSON file.

The stack outputs (``pulumi stack output --json`` or ``mlops synth --stack dev --outputs``) use
camelCase keys (``rawBucket``, ``dataLakeKeyArn``...); each maps to the snake_case field of the same
name (``raw_bucket``, ``data_lake_key_arn``). Environment variables win over the file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipelines.errors import InputRejectedError, NotConfiguredError
from platform_contract.naming import InvalidNameError, ModelNames, model_names
from platform_contract.versions import EMR_ON_EKS_RELEASE_LABEL

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")

# Stack output keys whose field name is not the plain snake_case of the key.
_OUTPUT_ALIASES: dict[str, str] = {
    "sagemakerExecutionRoleArn": "sagemaker_role_arn",
    "sageMakerExecutionRoleArn": "sagemaker_role_arn",
    "emrVirtualClusterId": "emr_virtual_cluster_id",
    "emrJobExecutionRoleArn": "emr_job_role_arn",
    "emrJobRoleArn": "emr_job_role_arn",
    "modelPackageGroupName": "model_package_group_name",
    "deliveryPipelineName": "delivery_pipeline_name",
}


class SettingMissingError(NotConfiguredError):
    """A step needs a setting that is not configured; the message names the variable to set."""


class ModelSelectionError(InputRejectedError):
    """``--model`` names no model of the catalog, or the contract matches none or several; lists the choices."""


class ModelEntry(BaseModel):
    """One model of the stack's model catalog (stack output ``models``; keys are camelCase there).

    Missing names are derived with :func:`platform_contract.naming.model_names` from the model's
    name and the environment prefix ``mlops-<environment>``.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    contract: str
    """Name of the model's dataset contract (``contracts/<name>.yaml``)."""
    model_package_group_name: str | None = None
    """The model's SageMaker model package group (``modelPackageGroupName``)."""
    endpoint_name: str | None = None
    """The model's endpoint, or None when it has none (batch only)."""
    capture_prefix: str | None = None
    """S3 prefix of the endpoint's data capture in the capture bucket."""
    glue_capture_table: str | None = None
    """Glue table over the data capture."""
    pipeline: str | None = None
    """``Pipeline`` dimension of the training pipeline's step metrics (``<slug>-training``)."""


@dataclass(frozen=True)
class ModelTarget:
    """The model a step works on, with every name resolved (from the catalog or derived)."""

    model: str
    """Model name (a catalog key; the contract name in the one-model fallback)."""
    contract: str
    """Its dataset contract's name."""
    model_package_group_name: str | None
    """Its model package group (None: not configured; registration then stops naming the setting)."""
    endpoint_name: str | None
    """Its endpoint, if any."""
    capture_prefix: str
    """Data capture prefix."""
    glue_capture_table: str
    """Glue table over its data capture."""
    pipeline: str
    """``Pipeline`` metric dimension of its training pipeline."""
    names: ModelNames
    """Every name :func:`platform_contract.naming.model_names` derives for the model in this environment."""
    from_catalog: bool
    """True when the entry came from the ``models`` map, False for the one-model fallback."""

    def require_group(self) -> str:
        """The model package group, or :class:`SettingMissingError` naming the settings that set it."""
        if not self.model_package_group_name:
            raise SettingMissingError(
                f"no model package group for model '{self.model}': add 'modelPackageGroupName' to "
                f"models.{self.model} in the stack outputs file (--outputs), or set "
                "MLOPS_MODEL_PACKAGE_GROUP_NAME (one-model stacks)"
            )
        return self.model_package_group_name

    def training_job_name(self, stamp: str) -> str:
        """A training job name ``<prefix>-<slug>-<stamp>`` (:meth:`naming.ModelNames.training_job_name`)."""
        return self.names.training_job_name(stamp)


class PipelineSettings(BaseSettings):
    """Names, ARNs and knobs the pipeline steps need. Every field can be set as ``MLOPS_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="MLOPS_", extra="ignore", validate_default=True)

    environment: str = Field(default="dev", description="Environment name: dev, staging or prod.")
    region: str = Field(default="us-east-1", description="AWS region of the platform.")
    account_id: str | None = Field(default=None, description="AWS account ID (informational).")

    raw_bucket: str | None = Field(default=None, description="Bucket for landed raw batches.")
    curated_bucket: str | None = Field(default=None, description="Bucket for validated data.")
    features_bucket: str | None = Field(default=None, description="Bucket for feature tables.")
    artifacts_bucket: str | None = Field(default=None, description="Bucket for models and reports.")
    capture_bucket: str | None = Field(default=None, description="Bucket for endpoint data capture.")
    data_lake_key_arn: str | None = Field(default=None, description="KMS key for raw/curated/features.")
    ml_key_arn: str | None = Field(default=None, description="KMS key for artifacts and capture.")

    model_package_group_name: str | None = Field(
        default=None, description="SageMaker model package group of a one-model stack (fallback of 'models')."
    )
    models: dict[str, ModelEntry] = Field(
        default_factory=dict,
        description="Model catalog from the stack output 'models': model name -> its contract and names.",
    )
    sagemaker_role_arn: str | None = Field(default=None, description="SageMaker execution role ARN.")
    glue_database_name: str | None = Field(
        default=None, description="Glue database of the lake tables (stack output glueDatabaseName)."
    )
    emr_virtual_cluster_id: str | None = Field(default=None, description="EMR on EKS virtual cluster ID.")
    emr_job_role_arn: str | None = Field(default=None, description="EMR on EKS job execution role ARN.")
    emr_release_label: str = Field(
        default=EMR_ON_EKS_RELEASE_LABEL,
        description="EMR on EKS release of the feature job (platform_contract.versions; Spark 3.5).",
    )
    emr_log_group_name: str | None = Field(default=None, description="CloudWatch log group for EMR jobs.")
    emr_logs_s3_uri: str | None = Field(default=None, description="S3 logUri for EMR jobs (emrLogsS3Uri).")
    delivery_pipeline_name: str | None = Field(default=None, description="CodePipeline that deploys models.")
    endpoint_name: str | None = Field(default=None, description="SageMaker endpoint of this environment.")
    private_subnet_ids: list[str] = Field(default_factory=list, description="Subnets for training jobs.")
    training_security_group_id: str | None = Field(
        default=None,
        description="Security group of training jobs' VpcConfig (stack output trainingSecurityGroupId: HTTPS "
        "egress to S3 and the VPC endpoints; the endpoints' own group has no egress).",
    )

    training_instance_type: str = Field(default="ml.m5.large", description="SageMaker training instance.")
    sklearn_image_version: str = Field(
        default="1.9-0",
        description="Prebuilt SageMaker scikit-learn image version; 1.9-0 matches the locked scikit-learn 1.9.",
    )
    auto_approve: bool | None = Field(
        default=None, description="Approve passing models at registration (default: only in dev)."
    )
    code_version: str | None = Field(default=None, description="Code version recorded in metadata.")
    mlflow_arn: str | None = Field(
        default=None,
        description="Managed MLflow App (or tracking server) ARN, stack output mlflowArn: the tracking URI on "
        "AWS through the sagemaker-mlflow plugin. None when MLflow is off.",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking URI overriding mlflow_arn (a local store offline, e.g. sqlite:///mlflow.db).",
    )

    endpoint_url: str | None = Field(default=None, description="Endpoint URL for every AWS service.")
    feature_group_names: dict[str, str] = Field(
        default_factory=dict,
        description="Feature Store group by model (stack output 'featureGroupNames'; empty: no feature store).",
    )
    feature_ingestion: bool = Field(
        default=True,
        description=(
            "Ingest each batch into the model's feature group: its offline store by one Iceberg commit "
            "(the publish step, which also reads earlier batches back for the point-in-time training "
            "set), its online store, where the group has one, by the feature job's PutRecords."
        ),
    )
    endpoint_urls: dict[str, str] = Field(
        default_factory=dict, description="Per-service endpoint URLs, e.g. {'s3': 'http://127.0.0.1:5000'}."
    )
    connect_timeout: float = Field(default=10.0, description="Seconds to wait for a connection.")
    read_timeout: float = Field(default=60.0, description="Seconds to wait for a response.")
    max_attempts: int = Field(default=5, description="Attempts per AWS call (standard retry mode).")

    def tracking_uri(self) -> str | None:
        """Where training runs are tracked: ``mlflow_tracking_uri``, else the MLflow ARN, else None (off)."""
        return self.mlflow_tracking_uri or self.mlflow_arn or None

    def require(self, field: str) -> str:
        """Return a string setting or raise :class:`SettingMissingError` naming how to set it."""
        value = getattr(self, field)
        if value in (None, ""):
            key = _camel(field)
            raise SettingMissingError(
                f"setting '{field}' is not configured: set MLOPS_{field.upper()} or add '{key}' to the "
                "stack outputs file (--outputs)"
            )
        return str(value)

    @property
    def name_prefix(self) -> str:
        """Physical name prefix of this environment's resources: ``mlops-<environment>``."""
        return f"mlops-{self.environment}"

    def model_target(self, contract: str, model: str | None = None) -> ModelTarget:
        """The model a step on ``contract`` works on.

        With a ``models`` catalog: ``model`` when given (it must be a catalog key), else the one entry
        whose contract is ``contract``. Without one (a one-model stack): the model is named after the
        contract and uses ``model_package_group_name`` and ``endpoint_name``.

        Raises:
            ModelSelectionError: ``model`` is not in the catalog, or no or several entries use ``contract``.
        """
        if self.models:
            choices = ", ".join(
                f"{name} (contract {entry.contract})" for name, entry in sorted(self.models.items())
            )
            if model is not None:
                if model not in self.models:
                    raise ModelSelectionError(
                        f"--model {model!r} is not in the model catalog; choose one of: {choices}"
                    )
                name = model
            else:
                matching = sorted(n for n, e in self.models.items() if e.contract == contract)
                if len(matching) != 1:
                    which = "no model" if not matching else f"{len(matching)} models"
                    raise ModelSelectionError(
                        f"{which} of the catalog use contract '{contract}'; pass --model with one of: {choices}"
                    )
                name = matching[0]
            entry = self.models[name]
            derived = self._names(name)
            return ModelTarget(
                model=name,
                contract=entry.contract,
                model_package_group_name=entry.model_package_group_name or derived.model_package_group,
                endpoint_name=entry.endpoint_name,
                capture_prefix=entry.capture_prefix or derived.capture_prefix,
                glue_capture_table=entry.glue_capture_table or derived.glue_capture_table,
                pipeline=entry.pipeline or derived.pipeline,
                names=derived,
                from_catalog=True,
            )
        name = model or contract
        derived = self._names(name)
        return ModelTarget(
            model=name,
            contract=contract,
            model_package_group_name=self.model_package_group_name,
            endpoint_name=self.endpoint_name,
            capture_prefix=derived.capture_prefix,
            glue_capture_table=derived.glue_capture_table,
            pipeline=derived.pipeline,
            names=derived,
            from_catalog=False,
        )

    def _names(self, model: str) -> ModelNames:
        try:
            return model_names(self.name_prefix, model)
        except InvalidNameError as exc:
            raise ModelSelectionError(str(exc)) from None

    def feature_group_for(self, contract: str) -> str | None:
        """The feature group the feature job of ``contract`` ingests into, or None (no feature store,
        ingestion off, or the contract's model cannot be told: several models use it)."""
        if not (self.feature_ingestion and self.feature_group_names):
            return None
        by_group = [
            n for n, e in self.models.items() if e.model_package_group_name == self.model_package_group_name
        ]
        if self.model_package_group_name and len(by_group) == 1:
            return self.feature_group_names.get(by_group[0])
        try:
            return self.feature_group_names.get(self.model_target(contract).model)
        except ModelSelectionError:
            return None

    def endpoint_for(self, service: str) -> str | None:
        """Endpoint URL override for ``service`` (per-service first, then the global one), or None."""
        return self.endpoint_urls.get(service) or self.endpoint_url

    @property
    def approve_on_pass(self) -> bool:
        """Whether a model that passes the gate is registered as Approved (dev only by default)."""
        return self.environment == "dev" if self.auto_approve is None else self.auto_approve


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.capitalize() for part in rest)


def outputs_to_fields(outputs: dict[str, Any]) -> dict[str, Any]:
    """Map stack-output keys (camelCase) to settings fields; unknown keys are dropped."""
    known = set(PipelineSettings.model_fields)
    fields: dict[str, Any] = {}
    for key, value in outputs.items():
        name = _OUTPUT_ALIASES.get(key) or _CAMEL_BOUNDARY.sub("_", key).lower()
        if name in known:
            fields[name] = value
    return fields


def load_settings(outputs_file: Path | str | None = None, **overrides: Any) -> PipelineSettings:
    """Build settings from a stack-outputs JSON file (optional), then ``MLOPS_*`` env vars, then overrides.

    ``outputs_file`` defaults to the path in ``MLOPS_OUTPUTS_FILE`` when that is set.
    """
    import os

    path = outputs_file or os.environ.get("MLOPS_OUTPUTS_FILE")
    values: dict[str, Any] = {}
    if path:
        try:
            raw = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise SettingMissingError(f"stack outputs file not found: {path}") from None
        except json.JSONDecodeError as exc:
            raise SettingMissingError(f"stack outputs file {path} is not valid JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise SettingMissingError(f"stack outputs file {path} must hold a JSON object")
        values = outputs_to_fields(raw)
    from_env = PipelineSettings().model_dump(exclude_unset=True)
    return PipelineSettings(**{**values, **from_env, **overrides})
