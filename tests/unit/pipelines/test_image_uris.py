"""The scikit-learn image URIs read from sagemaker-core's table match ``image_uris.retrieve``."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from pipelines.register import inference_image
from pipelines.train import sklearn_image_uri, training_image


def _table() -> dict:
    path = metadata.distribution("sagemaker-core").locate_file("sagemaker/core/image_uri_config/sklearn.json")
    return json.loads(Path(str(path)).read_text())


REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2", "us-gov-west-1", "cn-north-1", "us-iso-east-1")
"""One region per partition plus a few commercial ones (``retrieve`` takes about a second a call)."""


@pytest.mark.parametrize("version", ["1.9-0", "1.4-2-py312"])
def test_the_uri_matches_the_library(version: str) -> None:
    from sagemaker.core import image_uris

    for scope in ("training", "inference"):
        assert version in _table()[scope]["versions"]
        for region in REGIONS:
            expected = image_uris.retrieve("sklearn", region=region, version=version, image_scope=scope)
            assert sklearn_image_uri(region, version, scope) == expected, (scope, version, region)


def test_the_dag_steps_helpers_name_the_scopes() -> None:
    assert training_image("us-east-1", "1.9-0").endswith("/sagemaker-scikit-learn:1.9-0-cpu-py3")
    assert inference_image("cn-north-1", "1.9-0").startswith(
        "450853457545.dkr.ecr.cn-north-1.amazonaws.com.cn/"
    )


def test_an_unknown_version_gets_the_library_error() -> None:
    with pytest.raises(ValueError, match="Unsupported sklearn version"):
        sklearn_image_uri("us-east-1", "0.0-0", "training")


def test_the_fast_path_does_not_import_sagemaker() -> None:
    code = (
        "import sys; from pipelines.train import training_image; "
        "training_image('us-east-1', '1.9-0'); print('sagemaker' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
