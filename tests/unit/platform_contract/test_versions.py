"""Version facts: one place, consistent with the config defaults and the local Spark."""

from __future__ import annotations

import re

import pyspark
import yaml

from platform_contract import versions
from stacks.config import parse_config
from stacks.config.compute import MIN_KUBERNETES_VERSION, ClusterConfig
from stacks.synth import stack_config_file

VALID = {"environment": "dev", "region": "us-east-1", "owner": "ml-team", "costCenter": "cc-1"}


def test_emr_default_is_7_13_on_the_local_spark_line() -> None:
    # issue 12 item 23: the newest 7.x release (Spark 3.5), matching the PySpark the job is tested on
    assert versions.EMR_ON_EKS_RELEASE_LABEL == "emr-7.13.0-latest"
    assert re.fullmatch(r"emr-7\.\d{1,2}\.\d+-latest", versions.EMR_ON_EKS_RELEASE_LABEL)
    assert pyspark.__version__.startswith(versions.SPARK_LINE + ".")


def test_kubernetes_versions_come_from_one_place_and_stacks_use_a_supported_one() -> None:
    assert ClusterConfig().kubernetes_version == versions.EKS_DEFAULT_KUBERNETES_VERSION
    assert MIN_KUBERNETES_VERSION == versions.EKS_MIN_KUBERNETES_VERSION
    default = tuple(int(p) for p in versions.EKS_DEFAULT_KUBERNETES_VERSION.split("."))
    assert default >= versions.EKS_MIN_KUBERNETES_VERSION
    for env in ("dev", "staging", "prod"):
        config = yaml.safe_load(stack_config_file(env).read_text())["config"]
        version = config["mlops-platform:cluster"]["kubernetesVersion"]
        ClusterConfig(kubernetes_version=version)  # validated like the stack's own config
        assert tuple(int(p) for p in version.split(".")) >= versions.EKS_MIN_KUBERNETES_VERSION, env


def test_a_minor_out_of_standard_support_is_refused() -> None:
    import pytest

    from stacks.config import ConfigError

    with pytest.raises(ConfigError, match="kubernetesVersion"):
        parse_config({**VALID, "cluster": {"kubernetesVersion": "1.34"}})
