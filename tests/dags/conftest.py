"""Airflow for the DAG tests: a throwaway AIRFLOW_HOME and SQLite metadata DB outside the repository.

Airflow reads its configuration when first imported, so the environment is set here, when pytest
imports this conftest (before any test module imports Airflow), and the folder is removed at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "dags"
_HOME = Path(tempfile.mkdtemp(prefix="mlops-airflow-home-"))
OUTPUTS_FILE = _HOME / "mlops_outputs.json"

os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(_HOME / "logs"),
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
            [
                {
                    "name": "dags-folder",
                    "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": {"path": str(DAGS_FOLDER)},
                }
            ]
        ),
    }
)

BASE_OUTPUTS: dict[str, Any] = {
    "environment": "dev",
    "region": "us-east-1",
    "rawBucket": "raw-bucket-test",
    "curatedBucket": "curated-bucket-test",
    "featuresBucket": "features-bucket-test",
    "artifactsBucket": "artifacts-bucket-test",
    "captureBucket": "capture-bucket-test",
    "modelPackageGroupNames": {"churn": "mlops-dev-churn", "housing": "mlops-dev-housing"},
    "contractsDir": str(REPO / "contracts"),
    "airflowAwsConnId": None,
    "pollSeconds": 1,
    # the steps' interpreter: this virtualenv (on MWAA, the startup script's venv)
    "workerPython": sys.executable,
    "workerPythonPath": str(REPO),
}


def write_outputs(**changes: Any) -> Path:
    """Write the stack outputs file the DAGs read (BASE_OUTPUTS updated with ``changes``)."""
    OUTPUTS_FILE.write_text(json.dumps({**BASE_OUTPUTS, **changes}))
    return OUTPUTS_FILE


@pytest.fixture(scope="session", autouse=True)
def _airflow_home() -> Iterator[Path]:
    yield _HOME
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="package", autouse=True)
def _outputs_file(_airflow_home: Path) -> Iterator[Path]:
    """Point the DAG files at the test outputs for this package's tests only (pipelines' own settings
    tests elsewhere read MLOPS_OUTPUTS_FILE too)."""
    previous = os.environ.get("MLOPS_OUTPUTS_FILE")
    os.environ["MLOPS_OUTPUTS_FILE"] = str(write_outputs())
    yield OUTPUTS_FILE
    if previous is None:
        os.environ.pop("MLOPS_OUTPUTS_FILE", None)
    else:
        os.environ["MLOPS_OUTPUTS_FILE"] = previous


@pytest.fixture(scope="session")
def airflow_db(_airflow_home: Path) -> Path:
    """A migrated SQLite metadata database in the throwaway AIRFLOW_HOME."""
    from airflow.utils import db

    db.resetdb()
    return _airflow_home / "airflow.db"


@pytest.fixture
def outputs() -> Iterator[Callable[..., Path]]:
    """Rewrite the outputs file for one test; restored to BASE_OUTPUTS afterwards."""
    yield write_outputs
    write_outputs()
