"""The whole stack configuration: :class:`PlatformConfig`, one field per section, and the rules that
depend on the environment (prod and staging are guarded), checked when the model is built."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from platform_contract.naming import InvalidNameError, ModelNames, model_names, model_slug
from stacks.config.base import PROJECT, _Section
from stacks.config.compute import AnalyticsConfig, ClusterConfig, SparkConfig
from stacks.config.contracts import ContractFileError, ContractSchema, read_contract_schema
from stacks.config.data_science import ExperimentationConfig, FeatureStoreConfig, feature_group_plan
from stacks.config.foundation import DataProtectionConfig, NetworkConfig, RetentionConfig
from stacks.config.ml import (
    AirflowConfig,
    DeliveryConfig,
    ObservabilityConfig,
    RegistryConfig,
)
from stacks.config.models import ModelConfig, catalog_key, default_models

_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
_TAG_VALUE = re.compile(r"^[\w\s.:/=+\-@]{1,256}$")


class PlatformConfig(_Section):
    """The whole stack configuration. Sections default to secure values."""

    environment: Literal["dev", "staging", "prod"] = Field(description="Environment name.")
    region: str = Field(description="AWS region (from `aws:region`).")
    owner: str = Field(description="Owning team, written to the `owner` tag.")
    cost_center: str = Field(description="Cost center, written to the `cost-center` tag.")
    extra_tags: dict[str, str] = Field(default_factory=dict, description="More tags for every resource.")
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    data_protection: DataProtectionConfig = Field(default_factory=DataProtectionConfig)
    # --- sections of later layers: one line each, the model in stacks/config/<layer>.py ---
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    spark: SparkConfig = Field(default_factory=SparkConfig)
    analytics: AnalyticsConfig = Field(default_factory=AnalyticsConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    models: list[ModelConfig] = Field(
        default_factory=default_models,
        description="The model catalog: one entry per model (name, contract, endpoint, monitoring).",
    )
    airflow: AirflowConfig = Field(default_factory=AirflowConfig)
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    experimentation: ExperimentationConfig = Field(default_factory=ExperimentationConfig)
    feature_store: FeatureStoreConfig = Field(default_factory=FeatureStoreConfig)

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not _REGION.match(value):
            raise ValueError("must be an AWS region code such as us-east-1 or eu-west-1")
        return value

    @field_validator("owner", "cost_center")
    @classmethod
    def _tag_value(cls, value: str) -> str:
        if not _TAG_VALUE.match(value):
            raise ValueError("must be 1-256 characters of letters, digits, spaces and _ . : / = + - @")
        return value

    @model_validator(mode="after")
    def _environment_rules(self) -> PlatformConfig:
        problems = catalog_problems(self) + environment_problems(self)
        problems += data_science_problems(self) if not problems else []
        if problems:
            # One line per problem; stacks.config.load reports each line as its own problem.
            raise ValueError("\n".join(problems))
        return self

    @property
    def name_prefix(self) -> str:
        """Short prefix for physical names: ``mlops-<env>``."""
        return f"mlops-{self.environment}"

    def model_names(self, model: ModelConfig) -> ModelNames:
        """Every physical name of ``model`` in this environment (checked when the config was parsed)."""
        return model_names(self.name_prefix, model.name)

    def contract_schema(self, model: ModelConfig) -> ContractSchema:
        """The table schema of ``model``'s contract file (checked when the config was parsed)."""
        return read_contract_schema(model.contract)

    @property
    def tags(self) -> dict[str, str]:
        """Tags applied to every taggable resource of the platform."""
        return {
            "project": PROJECT,
            "environment": self.environment,
            "owner": self.owner,
            "cost-center": self.cost_center,
            "managed-by": "pulumi",
            **self.extra_tags,
        }


def catalog_problems(config: PlatformConfig) -> list[str]:
    """The model catalog's rules: at least one model, unique names and slugs, names every AWS service
    accepts, and an existing, readable contract file per model."""
    problems: list[str] = []
    if not config.models:
        return [f"{PROJECT}:models needs at least one model, e.g. [{{name: churn, contract: churn}}]"]
    seen: dict[str, str] = {}
    for i, model in enumerate(config.models):
        key = catalog_key(config.models, i)
        try:
            slug = model_slug(model.name)
            model_names(config.name_prefix, model.name)
        except InvalidNameError as exc:
            problems.append(f"{key}.name = {model.name!r}: {exc}")
            continue
        if slug in seen:
            other = seen[slug]
            problems.append(
                f"{key}.name = {model.name!r}: "
                + (
                    "is listed twice; model names must be unique"
                    if other == model.name
                    else f"becomes {slug!r} like {other!r} (names are normalised: '_' -> '-', lowercase), "
                    "so both would get the same resources; rename one"
                )
            )
        seen.setdefault(slug, model.name)
        try:
            read_contract_schema(model.contract)
        except ContractFileError as exc:
            problems.append(f"{key}.contract = {model.contract!r}: {exc}")
    return problems


def data_science_problems(config: PlatformConfig) -> list[str]:
    """The feature store's rules: each model's contract must make a feature group (checked only when
    the catalog itself is valid)."""
    if not config.feature_store.enabled:
        return []
    problems: list[str] = []
    for i, model in enumerate(config.models):
        try:
            feature_group_plan(read_contract_schema(model.contract))
        except (ValueError, ContractFileError) as exc:
            problems.append(f"{PROJECT}:models.{i}.contract = {model.contract!r}: {exc}")
    return problems


def environment_problems(config: PlatformConfig) -> list[str]:
    """The rules that depend on the environment (prod and staging are guarded), as messages naming
    the key, its value where it matters, and the rule; empty when the config passes them."""
    problems: list[str] = []
    if config.environment != "dev" and not config.cluster.admin_role_arns:
        # dev may leave it empty: EKS then gives cluster-admin to whoever creates the cluster. Elsewhere the
        # deployers are named, or a promotion build (another role) could never reach the cluster
        # (docs/first-deploy.md, issue 12 item 1).
        problems.append(
            f"{PROJECT}:cluster.adminRoleArns is empty in {config.environment}: list the deployer roles that run "
            "`pulumi up` on this stack (the workstation/CI role and every "
            "delivery.promotionTargets[].deployRoleName that deploys it), e.g. "
            f"[arn:aws:iam::<account>:role/mlops-{config.environment}-pulumi-deployer]; see docs/first-deploy.md"
        )
    delivery = config.delivery
    if delivery.enabled:
        for i, target in enumerate(delivery.promotion_targets):
            if target.stack.split("/")[-1] != config.environment:
                # issue 12 item 8: the promote build runs in this VPC and can reach only this cluster's
                # private API; another environment imports the package itself (its delivery.promoteFrom)
                problems.append(
                    f"{PROJECT}:delivery.promotionTargets.{i}.stack = {target.stack!r}: a stack's promotion "
                    f"deploys only itself ({config.environment}); its build runs in this VPC and cannot reach "
                    f"another environment's private EKS API. Give {target.stack.split('/')[-1]} "
                    f"delivery.promoteFrom: {{environment: {config.environment}, ...}} instead (docs/first-deploy.md)"
                )
        if delivery.promotion_targets and not config.cluster.api_client_security_group:
            problems.append(
                f"{PROJECT}:cluster.apiClientSecurityGroup must be true when delivery.promotionTargets is set: "
                "the promote build runs `pulumi up` from the private subnets and reaches the private EKS API "
                "only through that security group (docs/first-deploy.md)"
            )
        upstream = delivery.promote_from
        if upstream is not None:
            if upstream.environment == config.environment:
                problems.append(
                    f"{PROJECT}:delivery.promoteFrom.environment = {upstream.environment!r}: an environment "
                    "imports from another one (e.g. staging from dev)"
                )
            if not delivery.promotion_targets:
                problems.append(
                    f"{PROJECT}:delivery.promoteFrom needs a promotionTargets entry for this stack "
                    f"({config.environment}): the imported package is deployed by that promotion"
                )
    if config.environment == "prod":
        if config.data_protection.force_destroy_buckets:
            problems.append(
                "dataProtection.forceDestroyBuckets must be false in prod: it lets `pulumi destroy` "
                "delete every object in the lake"
            )
        if not config.data_protection.protect_data:
            problems.append("dataProtection.protectData must be true in prod")
        if config.airflow.webserver_access_mode != "PRIVATE_ONLY":
            problems.append(
                f"{PROJECT}:airflow.webserverAccessMode must be PRIVATE_ONLY in prod (CKV2_AWS_66)"
            )
    for i, model in enumerate(config.models):
        endpoint = model.endpoint
        if endpoint.mode != "realtime":
            continue  # no endpoint: nothing to guard
        key = f"{catalog_key(config.models, i)}.endpoint"
        if config.environment == "prod":
            if endpoint.serverless is not None:
                problems.append(
                    f"{key}.serverless must not be set in prod: use instances (capture, VPC, guardrails)"
                )
            else:
                if endpoint.instance_count < 2:
                    problems.append(
                        f"{key}.instanceCount = {endpoint.instance_count}: prod needs at least 2 instances "
                        "per production variant (Security Hub SageMaker.4)"
                    )
                if endpoint.autoscaling and endpoint.min_instances < 2:
                    problems.append(f"{key}.minInstances must be at least 2 in prod")
            if endpoint.strategy == "ALL_AT_ONCE":
                problems.append(
                    f"{key}.strategy must be CANARY or LINEAR in prod (shift traffic under alarms)"
                )
            if not endpoint.capture_enabled:
                problems.append(
                    f"{key}.captureEnabled must be true in prod (drift monitoring reads the capture)"
                )
        if config.environment == "staging" and not endpoint.capture_enabled:
            problems.append(f"{key}.captureEnabled must be true in staging")
    return problems
