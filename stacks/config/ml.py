"""Config sections of the ML services layer: ``registry``, ``endpoint``, ``airflow``, ``observability``
and ``delivery``.

They plug into :class:`stacks.config.PlatformConfig` (one field each) and follow its rules:
camelCase keys in YAML, unknown keys rejected, and every bad value reported with its full key
(``mlops-platform:endpoint.canarySizePercent``), the value and the rule it broke. Example::

    mlops-platform:endpoint:
      modelPackageArn: arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-prod-churn/3
      instanceType: ml.m5.large
      instanceCount: 2
      strategy: CANARY
      canarySizePercent: 10

Rules that depend on the environment (prod needs more than one instance, guarded traffic shifting
and data capture) are checked by :class:`stacks.config.platform.PlatformConfig` when it is parsed,
before anything is declared.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from platform_contract.limits import (
    CANARY_SIZE_PERCENT,
    LINEAR_STEP_PERCENT,
    MAXIMUM_EXECUTION_TIMEOUT_SECONDS,
    ML_INSTANCE_TYPE,
    MWAA_AIRFLOW_VERSIONS,
    MWAA_MAX_WORKERS,
    SERVERLESS_MAX_CONCURRENCY,
    SERVERLESS_MEMORY_SIZES_MB,
    WAIT_INTERVAL_SECONDS,
    has_local_storage,
    within,
)
from platform_contract.versions import MWAA_AIRFLOW_VERSION
from stacks.config.base import _Section

if TYPE_CHECKING:  # component args are built lazily in to_args(): importing this module needs no Pulumi
    import pulumi

    from components.airflow import AirflowArgs
    from components.delivery import DeliveryArgs
    from components.endpoint import ModelEndpointArgs
    from components.observability import ObservabilityArgs, WatchedEndpoint
    from components.registry import ModelRegistryArgs

_GROUP_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,40}$")
_ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,30}$")
_MODEL_PACKAGE_ARN = re.compile(
    r"^arn:aws(-[a-z]+)*:sagemaker:[a-z0-9-]+:\d{12}:model-package/[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}/\d+$"
)
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_S3_KEY = re.compile(r"^[A-Za-z0-9!_.'()/-]+$")
_CONNECTION_ARN = re.compile(
    r"^arn:aws(-[a-z]+)*:(codeconnections|codestar-connections):[a-z0-9-]+:\d{12}:connection/[0-9a-f-]{36}$"
)
_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
_SECRET_ARN = re.compile(r"^arn:aws(-[a-z]+)*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+$")
_STACK_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,99}$")


class RegistryConfig(_Section):
    """SageMaker model package groups and who else may use their packages."""

    cross_account_ids: list[str] = Field(
        default_factory=list,
        description="AWS account IDs allowed to describe and deploy this environment's packages "
        "(cross-account promotion). Empty: no group policy.",
    )
    owns_sagemaker_log_groups: bool = Field(
        default=True,
        description="Declare the account's `/aws/sagemaker/TrainingJobs|ProcessingJobs|TransformJobs` log "
        "groups (logs key, retention). They are per account and region: when two stacks share an account, "
        "set it false in all but one.",
    )

    @field_validator("cross_account_ids")
    @classmethod
    def _accounts(cls, value: list[str]) -> list[str]:
        bad = [a for a in value if not _ACCOUNT_ID.match(a)]
        if bad:
            raise ValueError(f"{bad} are not 12-digit AWS account IDs (quote them in YAML)")
        return value

    def to_args(
        self,
        *,
        name_prefix: str,
        region: str,
        group_contracts: Mapping[str, str],
        artifacts_bucket_arn: pulumi.Input[str],
        features_bucket_arn: pulumi.Input[str],
        capture_bucket_arn: pulumi.Input[str],
        ml_key_arn: pulumi.Input[str],
        datalake_key_arn: pulumi.Input[str],
        tags: Mapping[str, str],
        rollback_alarm_names: Sequence[str] = (),
        logs_key_arn: pulumi.Input[str] | None = None,
        log_retention_days: int = 30,
    ) -> ModelRegistryArgs:
        """The :class:`~components.registry.ModelRegistryArgs` of this section: one group per entry of
        ``group_contracts`` (model slug -> its contract, tagged ``mlops:contract``)."""
        from components.registry import ModelRegistryArgs

        return ModelRegistryArgs(
            name_prefix=name_prefix,
            region=region,
            groups=list(group_contracts),
            group_contracts=dict(group_contracts),
            cross_account_ids=self.cross_account_ids,
            artifacts_bucket_arn=artifacts_bucket_arn,
            features_bucket_arn=features_bucket_arn,
            capture_bucket_arn=capture_bucket_arn,
            ml_key_arn=ml_key_arn,
            datalake_key_arn=datalake_key_arn,
            rollback_alarm_names=rollback_alarm_names,
            logs_key_arn=logs_key_arn if self.owns_sagemaker_log_groups else None,
            log_retention_days=log_retention_days,
            tags=tags,
        )


class ServerlessConfig(_Section):
    """Serverless Inference capacity (dev): memory and concurrency instead of instances."""

    memory_size_mb: int = Field(default=2048, description="Memory: 1024-6144 MB in 1024 MB steps.")
    max_concurrency: int = Field(default=5, description="Concurrent invocations (1-200).")

    @field_validator("memory_size_mb")
    @classmethod
    def _memory(cls, value: int) -> int:
        if value not in SERVERLESS_MEMORY_SIZES_MB:
            sizes = ", ".join(map(str, SERVERLESS_MEMORY_SIZES_MB[:-1]))
            raise ValueError(f"Serverless Inference accepts {sizes} or {SERVERLESS_MEMORY_SIZES_MB[-1]} MB")
        return value

    @field_validator("max_concurrency")
    @classmethod
    def _concurrency(cls, value: int) -> int:
        if not within(value, SERVERLESS_MAX_CONCURRENCY):
            raise ValueError("must be between {} and {}".format(*SERVERLESS_MAX_CONCURRENCY))
        return value


class ShadowVariantConfig(_Section):
    """An optional shadow variant: gets a copy of live traffic, its responses are discarded."""

    model_package_arn: str = Field(description="Approved model package ARN the shadow serves.")
    instance_type: str = Field(default="ml.m5.large", description="Instance type of the shadow.")
    instance_count: int = Field(default=1, description="Instances of the shadow (>= 1).")
    traffic_percent: int = Field(default=100, description="Share of live requests copied (1-100).")

    @field_validator("model_package_arn")
    @classmethod
    def _arn(cls, value: str) -> str:
        if not _MODEL_PACKAGE_ARN.match(value):
            raise ValueError(
                "must be a versioned model package ARN like "
                "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-dev-churn/3"
            )
        return value

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, value: str) -> str:
        if not ML_INSTANCE_TYPE.match(value):
            raise ValueError("must be a SageMaker instance type like ml.m5.large")
        return value

    @field_validator("instance_count", "traffic_percent")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value


class EndpointConfig(_Section):
    """The SageMaker endpoint: what it serves, on what capacity, and how updates are guarded.

    Deploying a model is a stack update that sets ``modelPackageArn`` (the delivery pipeline does it
    when a package is approved). With no ARN, no endpoint is declared.
    """

    mode: Literal["realtime", "batch", "none"] = Field(
        default="realtime",
        description="`realtime`: a SageMaker endpoint once a model is set; `batch`: no endpoint (batch "
        "transform only); `none`: the model is trained and registered but not served.",
    )
    model_package_arn: str = Field(
        default="",
        description="Approved, versioned model package ARN to serve. Empty: no endpoint yet "
        "(output `endpointStatus` says so).",
    )
    image_uri: str = Field(default="", description="Alternative to a package: serving image URI.")
    model_data_url: str = Field(default="", description="With imageUri: `s3://` URL of model.tar.gz.")
    variant_name: str = Field(
        default="primary",
        description="Production variant name; must stay the same across updates (blue/green needs it).",
    )
    instance_type: str = Field(default="ml.m5.large", description="Instance type of the production variant.")
    instance_count: int = Field(default=1, description="Initial instance count of the production variant.")
    serverless: ServerlessConfig | None = Field(
        default=None,
        description="Serverless capacity instead of instances (dev). No data capture, VPC, network "
        "isolation, shadow variant or auto scaling with it.",
    )
    shadow: ShadowVariantConfig | None = Field(default=None, description="Optional shadow variant.")
    network_isolation: bool = Field(
        default=True, description="Run the model container with no network access (it needs none)."
    )
    encrypt_storage: bool = Field(
        default=True,
        description="Encrypt the instances' storage volume with the ML key. Must be false for instance "
        "types with local NVMe storage (the `d` families), which AWS encrypts in hardware.",
    )
    capture_enabled: bool = Field(default=True, description="Capture requests and responses to S3.")
    capture_sampling_percent: int = Field(default=100, description="Share of requests captured (1-100).")
    strategy: Literal["ALL_AT_ONCE", "CANARY", "LINEAR"] = Field(
        default="ALL_AT_ONCE", description="Blue/green traffic shifting of an update."
    )
    canary_size_percent: int = Field(
        default=10, description="CANARY: share of capacity in the canary (1-50)."
    )
    linear_step_percent: int = Field(default=20, description="LINEAR: share shifted per step (10-50).")
    wait_interval_seconds: int = Field(
        default=300, description="Bake time between traffic shifts (0-3600 s)."
    )
    termination_wait_seconds: int = Field(
        default=300, description="Time the old (blue) fleet is kept after the shift (0-3600 s)."
    )
    maximum_execution_timeout_seconds: int = Field(
        default=1800, description="Upper bound of the whole blue/green update (600-14400 s)."
    )
    latency_threshold_ms: int = Field(
        default=500, description="Rollback alarm: average ModelLatency above this (milliseconds)."
    )
    error_threshold: int = Field(
        default=1, description="Rollback alarm: this many Invocation5XXErrors in a minute."
    )
    extra_rollback_alarm_names: list[str] = Field(
        default_factory=list, description="More CloudWatch alarm names that roll an update back."
    )
    autoscaling: bool = Field(default=True, description="Target-tracking auto scaling of the variant.")
    min_instances: int = Field(default=1, description="Auto scaling lower bound.")
    max_instances: int = Field(default=2, description="Auto scaling upper bound.")
    target_invocations_per_instance: int = Field(
        default=100, description="Auto scaling target: invocations per instance per minute."
    )
    retain_replaced_configs: bool = Field(
        default=True,
        description="Keep replaced models and endpoint configs in AWS when Pulumi replaces them, so a "
        "SageMaker auto-rollback never points at a deleted config (they cost nothing).",
    )

    @field_validator("variant_name")
    @classmethod
    def _names(cls, value: str) -> str:
        if not _ENDPOINT_NAME.match(value):
            raise ValueError("must be letters, digits and '-' (up to 31 characters)")
        return value

    @field_validator("model_package_arn")
    @classmethod
    def _package(cls, value: str) -> str:
        if value and not _MODEL_PACKAGE_ARN.match(value):
            raise ValueError(
                "must be a versioned model package ARN like "
                "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-dev-churn/3 (or empty)"
            )
        return value

    @field_validator("model_data_url")
    @classmethod
    def _model_data(cls, value: str) -> str:
        if value and not value.startswith("s3://"):
            raise ValueError("must be an s3:// URL of a model.tar.gz")
        return value

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, value: str) -> str:
        if not ML_INSTANCE_TYPE.match(value):
            raise ValueError("must be a SageMaker instance type like ml.m5.large")
        return value

    @field_validator("instance_count", "min_instances", "max_instances", "target_invocations_per_instance")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value

    @field_validator("capture_sampling_percent")
    @classmethod
    def _sampling(cls, value: int) -> int:
        if not 1 <= value <= 100:
            raise ValueError("must be between 1 and 100")
        return value

    # Ranges from the API reference: TrafficRoutingConfig, CapacitySize, BlueGreenUpdatePolicy
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_BlueGreenUpdatePolicy.html
    @field_validator("canary_size_percent")
    @classmethod
    def _canary(cls, value: int) -> int:
        if not within(value, CANARY_SIZE_PERCENT):
            raise ValueError("the canary must be 1-50% of the fleet (the rest stays on the old model)")
        return value

    @field_validator("linear_step_percent")
    @classmethod
    def _linear(cls, value: int) -> int:
        if not within(value, LINEAR_STEP_PERCENT):
            raise ValueError("SageMaker shifts 10-50% of the fleet per linear step")
        return value

    @field_validator("wait_interval_seconds", "termination_wait_seconds")
    @classmethod
    def _waits(cls, value: int) -> int:
        if not within(value, WAIT_INTERVAL_SECONDS):
            raise ValueError("must be between 0 and 3600 seconds")
        return value

    @field_validator("maximum_execution_timeout_seconds")
    @classmethod
    def _timeout(cls, value: int) -> int:
        if not within(value, MAXIMUM_EXECUTION_TIMEOUT_SECONDS):
            raise ValueError("must be between 600 and 14400 seconds")
        return value

    @field_validator("latency_threshold_ms", "error_threshold")
    @classmethod
    def _thresholds(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value

    @model_validator(mode="after")
    def _combinations(self) -> EndpointConfig:
        key = "endpoint"  # the loader puts the model entry's key (mlops-platform:models.<i>) in front
        if self.model_package_arn and (self.image_uri or self.model_data_url):
            raise ValueError(f"{key}: set either modelPackageArn or imageUri + modelDataUrl, not both")
        if bool(self.image_uri) != bool(self.model_data_url):
            raise ValueError(f"{key}: imageUri and modelDataUrl go together; set both or neither")
        if self.serverless is not None:
            # Serverless Inference feature exclusions (no data capture, VPC, network isolation,
            # multiple variants): https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html
            if self.capture_enabled:
                raise ValueError(
                    f"{key}.captureEnabled must be false with {key}.serverless: Serverless Inference does "
                    "not support data capture (use instances to capture traffic)"
                )
            if self.network_isolation:
                raise ValueError(
                    f"{key}.networkIsolation must be false with {key}.serverless: Serverless Inference "
                    "supports neither network isolation nor a VPC"
                )
            if self.shadow is not None:
                raise ValueError(f"{key}.shadow needs instances: Serverless Inference has one variant only")
        else:
            if self.encrypt_storage and has_local_storage(self.instance_type):
                raise ValueError(
                    f"{key}.instanceType = {self.instance_type!r} has local NVMe storage, and AWS rejects a "
                    f"KmsKeyId for it (CreateEndpointConfig): pick a type without local storage (e.g. "
                    f"ml.m5.large) or set {key}.encryptStorage to false (NVMe is encrypted in hardware)"
                )
            if (
                self.shadow is not None
                and self.encrypt_storage
                and has_local_storage(self.shadow.instance_type)
            ):
                raise ValueError(
                    f"{key}.shadow.instanceType has local NVMe storage; AWS rejects a KmsKeyId for it"
                )
            if self.strategy != "ALL_AT_ONCE" and self.instance_count < 2:
                # Canary and linear shifting move a share of the instances: with one instance there is
                # no share to shift (issue 12, item 10).
                raise ValueError(
                    f"{key}.strategy {self.strategy} needs {key}.instanceCount of at least 2 (got "
                    f"{self.instance_count}): one instance cannot shift a share of its capacity; set "
                    "instanceCount: 2 or strategy: ALL_AT_ONCE"
                )
            if self.autoscaling and not (self.min_instances <= self.instance_count <= self.max_instances):
                raise ValueError(
                    f"{key}: need minInstances <= instanceCount <= maxInstances (got {self.min_instances}, "
                    f"{self.instance_count}, {self.max_instances})"
                )
        return self

    @property
    def has_model(self) -> bool:
        """True when the mode is realtime and a model (package, or image + data) is configured, so an
        endpoint is declared."""
        return self.mode == "realtime" and bool(self.model_package_arn or self.image_uri)

    def to_args(
        self,
        *,
        name_prefix: str,
        endpoint_name: str,
        execution_role_arn: pulumi.Input[str],
        kms_key_arn: pulumi.Input[str],
        capture_bucket_name: pulumi.Input[str],
        capture_prefix: str,
        alarm_actions: Sequence[pulumi.Input[str]],
        subnet_ids: Sequence[pulumi.Input[str]],
        vpc_id: pulumi.Input[str],
        vpc_cidr: pulumi.Input[str],
        s3_prefix_list_id: pulumi.Input[str] | None,
        tags: Mapping[str, str],
        logs_key_arn: pulumi.Input[str] | None = None,
        log_retention_days: int = 30,
    ) -> ModelEndpointArgs:
        """The :class:`~components.endpoint.ModelEndpointArgs` of this section for the endpoint
        ``<name_prefix>-<endpoint_name>`` (``endpoint_name``: the model's slug). The network inputs are
        used by instance variants only (serverless endpoints run outside the VPC)."""
        from components.endpoint import (
            AutoScaling,
            Guardrails,
            ModelEndpointArgs,
            ServerlessCapacity,
            ShadowVariant,
        )

        serverless, shadow = self.serverless, self.shadow
        in_vpc = serverless is None
        return ModelEndpointArgs(
            name_prefix=name_prefix,
            endpoint_name=endpoint_name,
            execution_role_arn=execution_role_arn,
            model_package_arn=self.model_package_arn or None,
            image_uri=self.image_uri or None,
            model_data_url=self.model_data_url or None,
            variant_name=self.variant_name,
            instance_type=self.instance_type,
            instance_count=self.instance_count,
            serverless=None
            if serverless is None
            else ServerlessCapacity(
                memory_size_mb=serverless.memory_size_mb, max_concurrency=serverless.max_concurrency
            ),
            shadow=None
            if shadow is None
            else ShadowVariant(
                model_package_arn=shadow.model_package_arn,
                instance_type=shadow.instance_type,
                instance_count=shadow.instance_count,
                traffic_percent=shadow.traffic_percent,
            ),
            network_isolation=self.network_isolation,
            subnet_ids=subnet_ids if in_vpc else (),
            vpc_id=vpc_id if in_vpc else None,
            vpc_cidr=vpc_cidr if in_vpc else None,
            s3_prefix_list_id=s3_prefix_list_id if in_vpc else None,
            kms_key_arn=kms_key_arn,
            encrypt_storage=self.encrypt_storage,
            capture_enabled=self.capture_enabled,
            capture_sampling_percent=self.capture_sampling_percent,
            capture_bucket_name=capture_bucket_name,
            capture_prefix=capture_prefix,
            guardrails=Guardrails(
                strategy=self.strategy,
                canary_size_percent=self.canary_size_percent,
                linear_step_percent=self.linear_step_percent,
                wait_interval_seconds=self.wait_interval_seconds,
                termination_wait_seconds=self.termination_wait_seconds,
                maximum_execution_timeout_seconds=self.maximum_execution_timeout_seconds,
                extra_alarm_names=self.extra_rollback_alarm_names,
            ),
            latency_threshold_ms=self.latency_threshold_ms,
            error_threshold=self.error_threshold,
            alarm_actions=alarm_actions,
            autoscaling=AutoScaling(
                min_instances=self.min_instances,
                max_instances=self.max_instances,
                target_invocations_per_instance=self.target_invocations_per_instance,
            )
            if self.autoscaling and in_vpc
            else None,
            retain_replaced=self.retain_replaced_configs,
            logs_key_arn=logs_key_arn,
            log_retention_days=log_retention_days,
            tags=tags,
        )


class AirflowConfig(_Section):
    """The MWAA environment."""

    enabled: bool = Field(default=True, description="Create the MWAA environment.")
    airflow_version: str = Field(
        default=MWAA_AIRFLOW_VERSION,
        description="Airflow version (an Airflow 3 line MWAA offers; the DAGs are tested on the default).",
    )
    environment_class: Literal[
        "mw1.micro", "mw1.small", "mw1.medium", "mw1.large", "mw1.xlarge", "mw1.2xlarge"
    ] = Field(default="mw1.small", description="MWAA environment class.")
    min_workers: int = Field(default=1, description="Minimum Celery workers.")
    max_workers: int = Field(default=2, description="Maximum Celery workers (up to 25).")
    schedulers: int = Field(default=2, description="Schedulers (2-5; mw1.micro has 1).")
    webserver_access_mode: Literal["PRIVATE_ONLY", "PUBLIC_ONLY"] = Field(
        default="PRIVATE_ONLY", description="Web UI reachable only from the VPC (default) or publicly."
    )
    log_level: Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"] = Field(
        default="INFO", description="Level of every Airflow log type sent to CloudWatch."
    )
    dags_path: str = Field(default="airflow/dags", description="DAG folder in the artifacts bucket.")
    requirements_path: str = Field(
        default="airflow/requirements.txt", description="requirements.txt key in the artifacts bucket."
    )
    plugins_path: str = Field(
        default="airflow/plugins.zip", description="plugins.zip key in the artifacts bucket."
    )
    requirements_version: str = Field(
        default="",
        description="S3 object version of requirements.txt to install; empty until the delivery pipeline "
        "has uploaded it (MWAA fails to create when the object is missing).",
    )
    plugins_version: str = Field(default="", description="S3 object version of plugins.zip; empty: none.")
    startup_script_path: str = Field(
        default="airflow/startup.sh", description="Startup script key in the artifacts bucket."
    )
    startup_script_version: str = Field(
        default="",
        description="S3 object version of startup.sh (creates the pipeline steps' virtualenv); empty: none.",
    )
    weekly_maintenance_window_start: str = Field(
        default="SUN:03:00", description="Weekly maintenance window start, `DAY:HH:MM` UTC."
    )

    @field_validator("airflow_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if value not in MWAA_AIRFLOW_VERSIONS:
            raise ValueError(
                f"must be an Airflow 3 version MWAA offers: {', '.join(MWAA_AIRFLOW_VERSIONS)} "
                '(quote it in YAML, e.g. "3.3.1")'
            )
        return value

    @field_validator("dags_path", "requirements_path", "plugins_path", "startup_script_path")
    @classmethod
    def _key(cls, value: str) -> str:
        if not _S3_KEY.match(value) or value.startswith("/") or value.endswith("/"):
            raise ValueError("must be an S3 key without leading or trailing '/', e.g. airflow/dags")
        return value

    @field_validator("weekly_maintenance_window_start")
    @classmethod
    def _window(cls, value: str) -> str:
        if not re.fullmatch(r"(MON|TUE|WED|THU|FRI|SAT|SUN):([01]\d|2[0-3]):(00|30)", value):
            raise ValueError("must be DAY:HH:MM in UTC on the hour or half hour, e.g. SUN:03:00")
        return value

    @model_validator(mode="after")
    def _workers(self) -> AirflowConfig:
        key = "mlops-platform:airflow"
        if not 1 <= self.min_workers <= self.max_workers <= MWAA_MAX_WORKERS:
            raise ValueError(
                f"{key}: need 1 <= minWorkers <= maxWorkers <= 25 (got {self.min_workers}, {self.max_workers})"
            )
        if self.environment_class == "mw1.micro":
            if self.schedulers != 1 or self.max_workers != 1:
                raise ValueError(f"{key}: mw1.micro runs exactly 1 scheduler and 1 worker")
        elif not 2 <= self.schedulers <= 5:
            raise ValueError(f"{key}.schedulers must be 2-5 for {self.environment_class}")
        # The deploy stage publishes <folder>/{requirements.txt,plugins.zip,startup.sh} next to the DAG
        # folder (delivery/buildspecs/deploy.yml); MWAA must read the same keys.
        published = {
            "requirementsPath": (self.requirements_path, "requirements.txt"),
            "pluginsPath": (self.plugins_path, "plugins.zip"),
            "startupScriptPath": (self.startup_script_path, "startup.sh"),
        }
        for field_key, (path, file_name) in published.items():
            if path != self.artifacts_prefix + file_name:
                raise ValueError(
                    f"{key}.{field_key} = {path!r}: the delivery pipeline publishes "
                    f"{self.artifacts_prefix + file_name!r} (next to dagsPath {self.dags_path!r}); use that"
                )
        return self

    @property
    def artifacts_prefix(self) -> str:
        """The folder of the DAG folder in the artifacts bucket (``airflow/``): where delivery deploys
        DAGs, requirements and plugins."""
        return self.dags_path.rsplit("/", 1)[0] + "/" if "/" in self.dags_path else "airflow/"

    def to_args(
        self,
        *,
        name_prefix: str,
        region: str,
        vpc_id: pulumi.Input[str],
        subnet_ids: Sequence[pulumi.Input[str]],
        source_bucket_arn: pulumi.Input[str],
        kms_key_arn: pulumi.Input[str],
        data_key_arns: Sequence[pulumi.Input[str]],
        read_bucket_arns: Sequence[pulumi.Input[str]],
        read_locations: Sequence[tuple[pulumi.Input[str], str]] = (),
        write_locations: Sequence[tuple[pulumi.Input[str], str]],
        emr_virtual_cluster_ids: Sequence[pulumi.Input[str]],
        emr_job_role_arns: Sequence[pulumi.Input[str]],
        passable_role_arns: Mapping[str, Sequence[pulumi.Input[str]]],
        model_package_group_names: Sequence[pulumi.Input[str]],
        training_job_prefixes: Sequence[str],
        transform_job_prefixes: Sequence[str] = (),
        batch_table_names: Sequence[str] = (),
        glue_database_name: pulumi.Input[str] | None,
        athena_workgroup_name: pulumi.Input[str] | None,
        tags: Mapping[str, str],
        deny_package_approval: bool = False,
        startable_pipeline_names: Sequence[pulumi.Input[str]] = (),
        tuning_job_prefixes: Sequence[str] = (),
    ) -> AirflowArgs:
        """The :class:`~components.airflow.AirflowArgs` of this section; requirements and plugins are
        installed only once their object versions are set."""
        from components.airflow import AirflowArgs

        return AirflowArgs(
            name_prefix=name_prefix,
            region=region,
            airflow_version=self.airflow_version,
            environment_class=self.environment_class,
            min_workers=self.min_workers,
            max_workers=self.max_workers,
            schedulers=self.schedulers,
            vpc_id=vpc_id,
            subnet_ids=subnet_ids,
            source_bucket_arn=source_bucket_arn,
            dags_path=self.dags_path,
            requirements_path=self.requirements_path if self.requirements_version else None,
            requirements_version=self.requirements_version or None,
            plugins_path=self.plugins_path if self.plugins_version else None,
            plugins_version=self.plugins_version or None,
            startup_script_path=self.startup_script_path if self.startup_script_version else None,
            startup_script_version=self.startup_script_version or None,
            kms_key_arn=kms_key_arn,
            data_key_arns=data_key_arns,
            webserver_access_mode=self.webserver_access_mode,
            log_level=self.log_level,
            read_bucket_arns=read_bucket_arns,
            read_locations=read_locations,
            write_locations=write_locations,
            emr_virtual_cluster_ids=emr_virtual_cluster_ids,
            emr_job_role_arns=emr_job_role_arns,
            passable_role_arns=passable_role_arns,
            model_package_group_names=model_package_group_names,
            training_job_prefixes=training_job_prefixes,
            transform_job_prefixes=transform_job_prefixes,
            batch_table_names=batch_table_names,
            tuning_job_prefixes=tuning_job_prefixes,
            startable_pipeline_names=startable_pipeline_names,
            glue_database_name=glue_database_name,
            athena_workgroup_name=athena_workgroup_name,
            deny_package_approval=deny_package_approval,
            weekly_maintenance_window_start=self.weekly_maintenance_window_start,
            tags=tags,
        )


class PipelineStepsConfig(_Section):
    """A pipeline and its steps, as they publish ``MLOps/Pipeline`` ``StepFailed``."""

    pipeline: str = Field(description="The `Pipeline` dimension, e.g. `churn-training`.")
    steps: list[str] = Field(description="The `Step` dimension values, one alarm each.")

    @field_validator("steps")
    @classmethod
    def _steps(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("needs at least one step")
        return value


TRAINING_STEPS = ("ingest", "validate", "features", "train", "evaluate", "register")
"""Steps of every model's training pipeline; each gets a StepFailed alarm on the model's ``Pipeline``."""


def _default_pipelines() -> list[PipelineStepsConfig]:
    return [PipelineStepsConfig(pipeline="monitoring", steps=["monitor"])]


class ObservabilityConfig(_Section):
    """Alert topic, alarms and the platform dashboard."""

    alert_emails: list[str] = Field(
        default_factory=list, description="E-mail subscribers of the alert topic."
    )
    pipelines: list[PipelineStepsConfig] = Field(
        default_factory=_default_pipelines,
        description="More pipeline steps that get a StepFailed alarm; every model's training pipeline "
        "(`<model>-training`) gets one per step without being listed.",
    )

    @field_validator("alert_emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        bad = [e for e in value if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", e)]
        if bad:
            raise ValueError(f"{bad} are not e-mail addresses")
        return value

    def to_args(
        self,
        *,
        name_prefix: str,
        environment: str,
        region: str,
        topic_key_arn: pulumi.Input[str],
        model_pipelines: Sequence[str],
        endpoints: Sequence[WatchedEndpoint],
        tags: Mapping[str, str],
    ) -> ObservabilityArgs:
        """The :class:`~components.observability.ObservabilityArgs` of this section: StepFailed alarms
        for each of ``model_pipelines`` (:data:`TRAINING_STEPS`) and for :attr:`pipelines`, drift alarms
        for each of ``endpoints``."""
        from components.observability import ObservabilityArgs, PipelineSteps

        return ObservabilityArgs(
            name_prefix=name_prefix,
            environment=environment,
            region=region,
            topic_key_arn=topic_key_arn,
            alert_emails=self.alert_emails,
            pipelines=[
                *(PipelineSteps(pipeline=p, steps=TRAINING_STEPS) for p in model_pipelines),
                *(PipelineSteps(pipeline=p.pipeline, steps=p.steps) for p in self.pipelines),
            ],
            endpoints=endpoints,
            tags=tags,
        )


class DeliverySourceConfig(_Section):
    """Where the delivery pipeline gets the repository, and so what starts it.

    * ``s3``: ``objectKey`` in the artifacts bucket; an EventBridge rule on its upload starts the pipeline.
    * ``codeconnections``: GitHub, GitLab or Bitbucket through a CodeConnections connection
      (``connectionArn``, ``repository: owner/repo``, ``branch``); a push starts the pipeline.
    * ``codecommit``: a CodeCommit repository (``repository: <name>``, ``branch``); an EventBridge rule
      on a push starts the pipeline.
    """

    kind: Literal["s3", "codeconnections", "codecommit"] = Field(default="s3", description="Source provider.")
    connection_arn: str = Field(default="", description="codeconnections: the connection ARN.")
    repository: str = Field(
        default="", description="codeconnections: `owner/repo`; codecommit: the repository name."
    )
    branch: str = Field(default="main", description="codeconnections, codecommit: branch to build.")
    object_key: str = Field(
        default="delivery/source.zip", description="s3: key of the source zip in the artifacts bucket."
    )

    @model_validator(mode="after")
    def _kind(self) -> DeliverySourceConfig:
        key = "mlops-platform:delivery.source"
        # keys of another kind are a mistake (a half-switched source), not something to ignore
        foreign = {
            "s3": ("connection_arn", "repository"),
            "codeconnections": (),
            "codecommit": ("connection_arn",),
        }[self.kind]
        for attr in foreign:
            if getattr(self, attr):
                camel = "connectionArn" if attr == "connection_arn" else attr
                raise ValueError(
                    f"{key}.{camel} does not apply to kind {self.kind}; remove it or change kind"
                )
        if self.kind != "s3" and self.object_key != "delivery/source.zip":
            raise ValueError(f"{key}.objectKey applies to kind s3 only; remove it or set kind: s3")
        if self.kind in ("codeconnections", "codecommit") and not re.fullmatch(
            r"[\w./-]{1,255}", self.branch
        ):
            raise ValueError(f"{key}.branch must be a branch name such as main")
        if self.kind == "codeconnections":
            if not _CONNECTION_ARN.match(self.connection_arn):
                raise ValueError(
                    f"{key}.connectionArn must be a CodeConnections connection ARN like "
                    "arn:aws:codeconnections:us-east-1:123456789012:connection/<uuid> when kind is codeconnections"
                )
            if not re.fullmatch(r"[\w.-]+/[\w.-]+", self.repository):
                raise ValueError(f"{key}.repository must be owner/repo when kind is codeconnections")
        elif self.kind == "codecommit":
            # CodeCommit repository names: letters, digits, '.', '_', '-', 1-100 characters
            # (https://docs.aws.amazon.com/codecommit/latest/APIReference/API_CreateRepository.html)
            if not re.fullmatch(r"[\w.-]{1,100}", self.repository):
                raise ValueError(
                    f"{key}.repository must be a CodeCommit repository name (letters, digits, . _ -) when "
                    "kind is codecommit"
                )
        elif not _S3_KEY.match(self.object_key) or not self.object_key.endswith(".zip"):
            raise ValueError(f"{key}.objectKey must be an S3 key of a .zip file, e.g. delivery/source.zip")
        return self


class UpstreamConfig(_Section):
    """The environment whose deployed packages this stack's promotion imports (copy and re-register).

    Take ``artifactsBucketName`` and ``mlKeyArn`` from the upstream stack's outputs (``artifactsBucket``,
    ``mlKeyArn``); the upstream stack lists this account in ``registry.crossAccountIds`` when the accounts
    differ.
    """

    environment: Literal["dev", "staging", "prod"] = Field(description="The upstream environment.")
    account_id: str = Field(
        default="",
        description="Its account when it is another one (its package events are then forwarded to this "
        "account's default bus, which admits them); empty: this account.",
    )
    artifacts_bucket_name: str = Field(description="Its artifacts bucket (stack output `artifactsBucket`).")
    ml_key_arn: str = Field(description="Its ML key (stack output `mlKeyArn`).")

    @field_validator("account_id")
    @classmethod
    def _account(cls, value: str) -> str:
        if value and not _ACCOUNT_ID.match(value):
            raise ValueError("must be a 12-digit AWS account ID (quoted) or empty")
        return value

    @field_validator("artifacts_bucket_name")
    @classmethod
    def _bucket(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", value):
            raise ValueError("must be an S3 bucket name (the upstream stack's output artifactsBucket)")
        return value

    @field_validator("ml_key_arn")
    @classmethod
    def _key(cls, value: str) -> str:
        if not re.fullmatch(r"arn:aws(-[a-z]+)*:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]{36}", value):
            raise ValueError("must be a KMS key ARN (the upstream stack's output mlKeyArn)")
        return value


class PromotionTargetConfig(_Section):
    """One stack the model promotion pipeline updates, in order."""

    stack: str = Field(description="Pulumi stack name (`staging`, `prod`, or `org/project/stack`).")
    deploy_role_name: str = Field(
        description="IAM role (in `accountId`) the promote build assumes to run `pulumi up`."
    )
    account_id: str = Field(default="", description="Account of the deploy role; empty: this account.")
    manual_approval: bool = Field(default=False, description="Wait for a manual approval first.")

    @field_validator("stack")
    @classmethod
    def _stack(cls, value: str) -> str:
        if not all(_STACK_NAME.match(p) for p in value.split("/")):
            raise ValueError("must be a Pulumi stack name like staging or org/project/prod")
        return value

    @field_validator("deploy_role_name")
    @classmethod
    def _role(cls, value: str) -> str:
        if not _ROLE_NAME.match(value):
            raise ValueError("must be an IAM role name (not an ARN)")
        return value

    @field_validator("account_id")
    @classmethod
    def _account(cls, value: str) -> str:
        if value and not _ACCOUNT_ID.match(value):
            raise ValueError("must be a 12-digit AWS account ID (quoted) or empty")
        return value


class DeliveryConfig(_Section):
    """CodePipeline + CodeBuild: the code delivery pipeline and the model promotion pipeline."""

    enabled: bool = Field(default=True, description="Create the delivery pipelines.")
    source: DeliverySourceConfig = Field(default_factory=DeliverySourceConfig, description="Source.")
    promotion_targets: list[PromotionTargetConfig] = Field(
        default_factory=list,
        description="Stacks an approved model package is promoted to, in order. Empty: no promotion "
        "pipeline. Any `prod` target needs `manualApproval: true`.",
    )
    promote_from: UpstreamConfig | None = Field(
        default=None,
        description="Import approved packages deployed in this environment (copy + re-register) and deploy "
        "them here (e.g. staging from dev, prod from staging). Empty: only this environment's own approvals.",
    )
    watch_model_package_groups: list[str] = Field(
        default_factory=list,
        description="Full names of more model package groups whose approvals start a promotion "
        "(this environment's groups are always watched).",
    )
    pulumi_backend_url: str = Field(
        default="", description="State backend for the promote build (`s3://...`; empty: Pulumi Cloud)."
    )
    pulumi_token_secret_arn: str = Field(
        default="", description="Secrets Manager secret holding PULUMI_ACCESS_TOKEN (Pulumi Cloud)."
    )
    build_image: str = Field(
        default="aws/codebuild/amazonlinux-x86_64-standard:5.0", description="CodeBuild image."
    )
    build_compute_type: Literal["BUILD_GENERAL1_SMALL", "BUILD_GENERAL1_MEDIUM", "BUILD_GENERAL1_LARGE"] = (
        Field(default="BUILD_GENERAL1_SMALL", description="CodeBuild compute type.")
    )

    @field_validator("promotion_targets")
    @classmethod
    def _targets(cls, value: list[PromotionTargetConfig]) -> list[PromotionTargetConfig]:
        stacks = [t.stack for t in value]
        if len(set(stacks)) != len(stacks):
            raise ValueError(f"promotion target stacks must be unique, got {stacks}")
        for target in value:
            if target.stack.split("/")[-1] == "prod" and not target.manual_approval:
                raise ValueError(
                    f"target {target.stack!r} needs manualApproval: true (prod is approved by a person)"
                )
        return value

    @field_validator("pulumi_token_secret_arn")
    @classmethod
    def _secret(cls, value: str) -> str:
        if value and not _SECRET_ARN.match(value):
            raise ValueError("must be a Secrets Manager secret ARN or empty")
        return value

    @field_validator("watch_model_package_groups")
    @classmethod
    def _groups(cls, value: list[str]) -> list[str]:
        bad = [g for g in value if not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", g)]
        if bad:
            raise ValueError(f"{bad} are not model package group names")
        return value

    def to_args(
        self,
        *,
        name_prefix: str,
        region: str,
        partition: pulumi.Input[str],
        account_id: pulumi.Input[str],
        artifacts_bucket_name: pulumi.Input[str],
        artifacts_bucket_arn: pulumi.Input[str],
        artifacts_key_arn: pulumi.Input[str],
        logs_key_arn: pulumi.Input[str],
        log_retention_days: int,
        airflow_prefix: str,
        group_names: Sequence[pulumi.Input[str]],
        approval_topic_arn: pulumi.Input[str],
        upstream_group_names: Sequence[str] = (),
        build_vpc_id: pulumi.Input[str],
        build_subnet_ids: Sequence[pulumi.Input[str]],
        tags: Mapping[str, str],
        build_api_client_security_group_id: pulumi.Input[str] | None = None,
    ) -> DeliveryArgs:
        """The :class:`~components.delivery.DeliveryArgs` of this section. A promotion target without
        ``accountId`` deploys in ``account_id``; ``group_names`` (this environment's groups) are always
        watched. Promotion builds run in ``build_subnet_ids``: ``pulumi up`` must reach the private
        EKS endpoint."""
        import pulumi

        from components.delivery import BuildVpc, DeliveryArgs, PromotionTarget, Source, Upstream

        src = self.source
        return DeliveryArgs(
            name_prefix=name_prefix,
            region=region,
            source=Source(
                kind=src.kind,
                connection_arn=src.connection_arn or None,
                repository=src.repository or None,
                branch=src.branch,
                object_key=src.object_key,
            ),
            artifacts_bucket_name=artifacts_bucket_name,
            artifacts_bucket_arn=artifacts_bucket_arn,
            artifacts_key_arn=artifacts_key_arn,
            logs_key_arn=logs_key_arn,
            log_retention_days=log_retention_days,
            airflow_prefix=airflow_prefix,
            promotion_targets=[
                PromotionTarget(
                    stack=t.stack,
                    deploy_role_arn=pulumi.Output.format(
                        "arn:{0}:iam::{1}:role/{2}", partition, t.account_id or account_id, t.deploy_role_name
                    ),
                    manual_approval=t.manual_approval,
                )
                for t in self.promotion_targets
            ],
            watched_group_names=[*group_names, *self.watch_model_package_groups],
            approval_topic_arn=approval_topic_arn,
            pulumi_backend_url=self.pulumi_backend_url,
            pulumi_token_secret_arn=self.pulumi_token_secret_arn or None,
            build_image=self.build_image,
            build_compute_type=self.build_compute_type,
            build_vpc=BuildVpc(
                vpc_id=build_vpc_id,
                subnet_ids=build_subnet_ids,
                api_client_security_group_id=build_api_client_security_group_id,
            ),
            own_group_names=list(group_names),
            upstream=(
                Upstream(
                    group_names=list(upstream_group_names),
                    account_id=self.promote_from.account_id or account_id,
                    artifacts_bucket_name=self.promote_from.artifacts_bucket_name,
                    ml_key_arn=self.promote_from.ml_key_arn,
                    cross_account=bool(self.promote_from.account_id),
                )
                if self.promote_from is not None
                else None
            ),
            tags=tags,
        )
