"""The naming contract: every derived name is valid for the service it names."""

from __future__ import annotations

import pytest

from platform_contract.naming import (
    DAG_ID,
    GLUE_NAME,
    MAX_MODEL_SLUG,
    SAGEMAKER_NAME,
    InvalidNameError,
    model_names,
    model_slug,
)


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("churn", "churn"),
        ("my_dataset", "my-dataset"),
        ("Housing Prices", "housing-prices"),
        ("a__b--c", "a-b-c"),
    ],
)
def test_slug_normalises_separators_and_case(name: str, slug: str) -> None:
    assert model_slug(name) == slug


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "no letters"), ("___", "no letters"), ("9lives", "start with a letter"), ("x" * 25, "at most 24")],
)
def test_slug_rejects_names_aws_cannot_take(name: str, message: str) -> None:
    with pytest.raises(InvalidNameError, match=message):
        model_slug(name)


@pytest.mark.parametrize("prefix", ["mlops-dev", "mlops-staging", "mlops-prod"])
@pytest.mark.parametrize("model", ["churn", "my_dataset", "z" * MAX_MODEL_SLUG])
def test_every_derived_name_matches_its_service(prefix: str, model: str) -> None:
    names = model_names(prefix, model)
    for sagemaker_name in (
        names.model_package_group,
        names.endpoint,
        names.training_job_name("20261201-083700"),
    ):
        assert SAGEMAKER_NAME.match(sagemaker_name)
        assert len(sagemaker_name) <= 63
    assert GLUE_NAME.match(names.glue_capture_table)
    assert DAG_ID.match(names.training_dag_id)
    assert DAG_ID.match(names.monitoring_dag_id)
    assert names.training_job_name("x").startswith(names.training_job_prefix)


def test_two_models_get_disjoint_names() -> None:
    churn, housing = model_names("mlops-dev", "churn"), model_names("mlops-dev", "housing")
    assert churn.model_package_group != housing.model_package_group
    assert churn.capture_prefix != housing.capture_prefix
    assert churn.pipeline != housing.pipeline
