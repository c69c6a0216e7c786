"""How a model's name becomes the physical name of each AWS resource it gets.

A model in the stack's model catalog is named by its user (often after its dataset contract, e.g.
``my_dataset``). AWS services accept different characters and lengths, so every derived name goes
through :func:`model_slug` first: lower case, ``_`` and other separators become ``-``, runs of ``-``
collapse, and the result must start with a letter and be at most :data:`MAX_MODEL_SLUG` characters.
Then :func:`model_names` builds each resource name from the environment prefix (``mlops-<env>``) and
the slug, and checks it against the service's pattern and length, so a name that would be rejected by
AWS fails here, at config time, with the rule it broke.

Patterns and lengths (checked 2026-12-01):

- Model package group, endpoint, training job: ``^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$``, 63 characters
  (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModelPackageGroup.html,
  API_CreateEndpoint.html, API_CreateTrainingJob.html).
- Glue table: lower case letters, digits and ``_`` (Athena reads only those), 255 characters
  (https://docs.aws.amazon.com/athena/latest/ug/tables-databases-columns-names.html).
- Feature group: ``^[a-zA-Z0-9]([_-]*[a-zA-Z0-9]){0,63}$``, 64 characters
  (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateFeatureGroup.html).
- Airflow DAG id: letters, digits, ``-``, ``.`` and ``_``, 250 characters (``airflow.utils.helpers.validate_key``).
- CloudWatch alarm name: 1-255 characters (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from platform_contract.limits import FEATURE_GROUP_NAME, TUNING_JOB_NAME

MAX_MODEL_SLUG = 24
"""Longest model slug. Budget: ``mlops-staging-`` (14) + slug (24) + ``-YYYYmmdd-HHMMSS`` (16) = 54,
under the 63 characters of a training job name, with room for the endpoint component's suffixes."""

SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
"""Pattern of SageMaker model package group, endpoint, endpoint config, model and training job names."""
SAGEMAKER_NAME_MAX = 63
GLUE_NAME = re.compile(r"^[a-z0-9_]{1,255}$")
DAG_ID = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")
ALARM_NAME_MAX = 255

_SEPARATORS = re.compile(r"[^a-z0-9]+")


def delivery_pipeline_name(prefix: str) -> str:
    """The environment's delivery pipeline (CodePipeline) name: ``<prefix>-delivery``.

    The Delivery component names the pipeline with it, and the MWAA role's grant to start it (the dev
    promotion's ``start_deployment``) is scoped to it.
    """
    return f"{prefix}-delivery"


class InvalidNameError(ValueError):
    """A model name cannot be turned into valid AWS resource names; the message says why and what to do."""


def model_slug(name: str) -> str:
    """Normalise a model (or contract) name for use in resource names: ``My_Dataset`` -> ``my-dataset``.

    Raises:
        InvalidNameError: the name is empty after normalisation, does not start with a letter, or is
            longer than :data:`MAX_MODEL_SLUG` characters.
    """
    slug = _SEPARATORS.sub("-", name.strip().lower()).strip("-")
    if not slug:
        raise InvalidNameError(f"model name {name!r} has no letters or digits; use e.g. 'churn'")
    if not slug[0].isalpha():
        raise InvalidNameError(
            f"model name {name!r} becomes {slug!r}, which does not start with a letter; "
            "start the name with a letter (AWS names such as Glue tables need it)"
        )
    if len(slug) > MAX_MODEL_SLUG:
        raise InvalidNameError(
            f"model name {name!r} becomes {slug!r} ({len(slug)} characters); use at most {MAX_MODEL_SLUG} "
            "so the training job, endpoint and model package group names stay within SageMaker's 63"
        )
    return slug


@dataclass(frozen=True)
class ModelNames:
    """Every physical name derived from one model of the catalog in one environment."""

    model: str
    """The model's name as written in the catalog."""
    slug: str
    """:func:`model_slug` of :attr:`model`."""
    model_package_group: str
    """SageMaker model package group: ``<prefix>-<slug>``."""
    endpoint: str
    """SageMaker endpoint: ``<prefix>-<slug>``."""
    glue_capture_table: str
    """Glue table over the endpoint's data capture: ``<slug_with_underscores>_capture``."""
    capture_prefix: str
    """S3 prefix of the endpoint's data capture in the capture bucket: ``datacapture/<slug>``."""
    pipeline: str
    """``Pipeline`` dimension of the training pipeline's step metrics: ``<slug>-training``."""
    training_dag_id: str
    """Airflow DAG id of the model's training DAG: ``<slug_with_underscores>_training``."""
    monitoring_dag_id: str
    """Airflow DAG id of the model's monitoring DAG: ``<slug_with_underscores>_monitoring``."""
    training_job_prefix: str
    """Prefix of the model's SageMaker training job names: ``<prefix>-<slug>-``; the IAM grants use it."""
    feature_group: str = ""
    """SageMaker Feature Store feature group of the model's features: ``<prefix>-<slug>-features``."""
    feature_offline_table: str = ""
    """Glue table of the feature group's offline store (Iceberg): ``<slug_with_underscores>_feature_group``."""
    feature_offline_prefix: str = ""
    """S3 prefix of the offline store in the features bucket: ``feature-store/<slug>``."""
    transform_job_prefix: str = ""
    """Prefix of the model's SageMaker batch transform job names: ``<prefix>-<slug>-bt-``; the IAM grants use it."""
    batch_prefix: str = ""
    """S3 prefix of batch inference in the features bucket: ``predictions/<slug>`` (``input/``,
    ``transform/`` and ``spark/`` below it, one ``run=<id>/`` folder per run)."""
    batch_predictions_table: str = ""
    """Glue table over the batch transform output (joined CSV): ``<slug_with_underscores>_batch_predictions``."""
    spark_scores_table: str = ""
    """Glue table over the Spark scoring output (Parquet): ``<slug_with_underscores>_spark_scores``."""
    batch_dag_id: str = ""
    """Airflow DAG id of the model's batch inference DAG: ``<slug_with_underscores>_batch``."""
    tuning_job_prefix: str = ""
    """Prefix of the model's hyperparameter tuning job names: ``<slug, at most 10>-<6 hex>-``, the hex a
    hash of ``<prefix>-<slug>`` so environments and models never share it (a tuning job name has at
    most 32 characters, and it prefixes its trials' training job names); the IAM grants use it."""

    def training_job_name(self, stamp: str) -> str:
        """A training job name: :attr:`training_job_prefix` + ``stamp`` (e.g. ``20261201-083700``).

        Raises:
            InvalidNameError: the result is not a valid SageMaker training job name.
        """
        return _check_sagemaker(f"{self.training_job_prefix}{stamp}", "training job")

    def transform_job_name(self, stamp: str) -> str:
        """A batch transform job name: :attr:`transform_job_prefix` + ``stamp``.

        Raises:
            InvalidNameError: the result is not a valid SageMaker transform job name.
        """
        return _check_sagemaker(f"{self.transform_job_prefix}{stamp}", "transform job")

    def tuning_job_name(self, stamp: str) -> str:
        """A tuning job name: :attr:`tuning_job_prefix` + ``stamp`` (e.g. ``261201-083700``).

        Raises:
            InvalidNameError: the result is not a valid hyperparameter tuning job name (1-32 characters).
        """
        name = f"{self.tuning_job_prefix}{stamp}"
        if not TUNING_JOB_NAME.match(name):
            raise InvalidNameError(
                f"tuning job name {name!r} is not valid for SageMaker: letters, digits and '-', at most 32 "
                "characters; use a shorter stamp"
            )
        return name


def _check_sagemaker(name: str, what: str) -> str:
    if len(name) > SAGEMAKER_NAME_MAX or not SAGEMAKER_NAME.match(name):
        raise InvalidNameError(
            f"{what} name {name!r} is not valid for SageMaker: letters, digits and '-', at most "
            f"{SAGEMAKER_NAME_MAX} characters; shorten the model name"
        )
    return name


def model_names(prefix: str, model: str) -> ModelNames:
    """All resource names of ``model`` under the environment ``prefix`` (``mlops-dev``).

    Raises:
        InvalidNameError: a derived name breaks a service's pattern or length.
    """
    slug = model_slug(model)
    underscored = slug.replace("-", "_")
    full = f"{prefix}-{slug}"
    return ModelNames(
        model=model,
        slug=slug,
        model_package_group=_check_sagemaker(full, "model package group"),
        endpoint=_check_sagemaker(full, "endpoint"),
        glue_capture_table=f"{underscored}_capture",
        capture_prefix=f"datacapture/{slug}",
        pipeline=f"{slug}-training",
        training_dag_id=f"{underscored}_training",
        monitoring_dag_id=f"{underscored}_monitoring",
        training_job_prefix=f"{full}-",
        feature_group=_check_feature_group(f"{full}-features"),
        feature_offline_table=f"{underscored}_feature_group",
        feature_offline_prefix=f"feature-store/{slug}",
        transform_job_prefix=f"{full}-bt-",
        batch_prefix=f"predictions/{slug}",
        batch_predictions_table=f"{underscored}_batch_predictions",
        spark_scores_table=f"{underscored}_spark_scores",
        batch_dag_id=f"{underscored}_batch",
        tuning_job_prefix=tuning_job_prefix(prefix, slug),
    )


def tuning_job_prefix(prefix: str, slug: str) -> str:
    """``<slug[:10]>-<6 hex of sha256(prefix-slug)>-`` (13 characters left for a stamp; see
    :attr:`ModelNames.tuning_job_prefix`)."""
    digest = hashlib.sha256(f"{prefix}-{slug}".encode()).hexdigest()[:6]
    return f"{slug[:10].rstrip('-')}-{digest}-"


def _check_feature_group(name: str) -> str:
    if not FEATURE_GROUP_NAME.match(name):
        raise InvalidNameError(
            f"feature group name {name!r} is not valid for SageMaker Feature Store: letters, digits, '_' "
            "and '-', at most 64 characters; shorten the model name"
        )
    return name
