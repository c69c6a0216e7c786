"""What the delivery pipeline ships to MWAA: the DAG folder, plugins.zip, requirements.txt, startup.sh,
and the check that requirements.txt resolves under the Airflow constraints file."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from delivery import mwaa
from tests.dags.conftest import REPO

DATA = Path(__file__).parent / "data"
CONSTRAINTS = sorted(DATA.glob("constraints-*.txt"))


def test_constraints_data_is_committed() -> None:
    assert CONSTRAINTS, "no Airflow constraints file in tests/dags/data"


@pytest.mark.parametrize("constraints", CONSTRAINTS, ids=lambda p: p.name)
def test_airflow_side_requirements_resolve_under_the_constraints(constraints: Path) -> None:
    pins = mwaa.parse_constraints(constraints.read_text())
    assert pins["apache-airflow-providers-amazon"]  # a real Airflow constraints file
    assert mwaa.constraint_conflicts(mwaa.airflow_requirements(), pins) == []


@pytest.mark.parametrize("constraints", CONSTRAINTS, ids=lambda p: p.name)
def test_pipeline_steps_cannot_share_airflows_environment(constraints: Path) -> None:
    """Why the steps run in their own virtualenv: under Airflow's pins pip cannot install them."""
    conflicts = mwaa.constraint_conflicts(
        mwaa.worker_requirements(), mwaa.parse_constraints(constraints.read_text())
    )
    assert {c.requirement.split(">")[0].split("<")[0] for c in conflicts} >= {
        "pandas",
        "numpy",
        "scikit-learn",
    }


def test_conflict_check_catches_a_pin_outside_the_range() -> None:
    pins = mwaa.parse_constraints(
        "apache-airflow-providers-amazon==9.10.0\napache-airflow-providers-standard==1.10.1\n"
    )
    conflicts = mwaa.constraint_conflicts(mwaa.airflow_requirements(), pins)
    assert [str(c) for c in conflicts] == [
        "requirements.txt needs apache-airflow-providers-amazon>=9.18, the constraints pin apache-airflow-providers-amazon==9.10.0"
    ]


def test_constraints_parse_errors_name_the_line() -> None:
    with pytest.raises(mwaa.PackagingError, match="'pandas>=2' is not name==version"):
        mwaa.parse_constraints("# comment\npandas>=2\n")


def test_worker_set_covers_every_third_party_import_the_steps_reach() -> None:
    imported = mwaa.reachable_imports()
    assert {"pandas", "sklearn", "boto3", "yaml"} <= imported  # the scan sees lazy imports too
    needed = imported - mwaa.NOT_ON_WORKERS
    assert needed <= set(mwaa.WORKER_DISTRIBUTIONS), needed - set(mwaa.WORKER_DISTRIBUTIONS)
    assert "pulumi" not in imported


def test_dag_files_need_only_airflow_and_the_light_modules_at_parse_time() -> None:
    code = (
        "import sys; import pipelines.orchestration;"
        "heavy = {'pandas', 'numpy', 'sklearn', 'scipy', 'pandera', 'boto3', 'pydantic'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_build_artifacts(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text('{"environment": "dev"}')
    built = mwaa.build_artifacts(tmp_path / "airflow", outputs_file=outputs)
    assert sorted(p.name for p in built.dags.glob("*.py")) == [
        "mlops_batch.py", "mlops_monitoring.py", "mlops_promotion.py", "mlops_training.py"
    ]  # fmt: skip
    assert (built.dags / "contracts" / "churn.yaml").is_file()
    assert (built.dags / "mlops_outputs.json").read_text() == '{"environment": "dev"}'
    assert (built.dags / ".airflowignore").read_text() == "contracts/\n"

    lines = built.requirements_txt.read_text().splitlines()
    assert (
        lines[0]
        == '--constraint "https://raw.githubusercontent.com/apache/airflow/constraints-3.3.1/constraints-3.12.txt"'
    )
    assert [Requirement(line).name for line in lines[1:]] == [
        "apache-airflow-providers-amazon", "apache-airflow-providers-standard"
    ]  # fmt: skip

    with zipfile.ZipFile(built.plugins_zip) as archive:
        names = archive.namelist()
        assert archive.read(".airflowignore").decode() == "pipelines/\nplatform_contract/\n"
    assert {"pipelines/orchestration.py", "platform_contract/naming.py"} <= set(names)
    assert not [n for n in names if "__pycache__" in n or n.startswith(("tests/", "components/", "stacks/"))]

    script = built.startup_sh.read_text()
    assert script.startswith("#!/bin/sh\n")
    assert built.startup_sh.stat().st_mode & 0o111
    for name in ("pandas", "scikit-learn", "pandera", "boto3", "pydantic-settings"):
        assert f"\n{name}==" in script
    assert "pulumi" not in script
    assert "pyspark" not in script
    assert subprocess.run(["sh", "-n", str(built.startup_sh)], check=False).returncode == 0


def test_plugins_zip_is_deterministic() -> None:
    assert mwaa.plugins_zip_bytes() == mwaa.plugins_zip_bytes()
    with zipfile.ZipFile(io.BytesIO(mwaa.plugins_zip_bytes())) as archive:
        assert {i.date_time for i in archive.infolist()} == {(2026, 1, 1, 0, 0, 0)}


def test_plugin_loader_skips_the_packages(tmp_path: Path) -> None:
    from airflow._shared.module_loading import find_path_from_directory

    with zipfile.ZipFile(io.BytesIO(mwaa.plugins_zip_bytes())) as archive:
        archive.extractall(tmp_path)  # our own archive, built above
    assert list(find_path_from_directory(str(tmp_path), ".airflowignore", "glob")) == []


def test_cli_check_and_build(tmp_path: Path) -> None:
    check = subprocess.run(
        [sys.executable, "-m", "delivery.mwaa", "check", "--constraints", str(CONSTRAINTS[0])],
        capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert "0 conflicts" in check.stdout
    build = subprocess.run(
        [sys.executable, "-m", "delivery.mwaa", "build", "--out", str(tmp_path)],
        capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    assert (tmp_path / "plugins.zip").is_file()
