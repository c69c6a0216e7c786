"""The monitoring DAG's ``drift_engine`` branch runs in Airflow's own process (on MWAA: Airflow's
environment, without the pipeline's numpy): importing the DAG file and calling the branch imports
neither numpy nor pandas. Checked in a fresh interpreter, S3 mocked by moto in process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.dags.conftest import REPO, write_outputs

PROBE = """
import json, sys
from moto import mock_aws
import boto3

heavy = ("numpy", "pandas", "pyarrow", "sklearn")
loaded_before = [m for m in heavy if m in sys.modules]
with mock_aws():
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="capture-bucket-test")
    key = "datacapture/churn/mlops-dev-churn/AllTraffic/2026/11/24/16/05-00-000-a.jsonl"
    s3.put_object(Bucket="capture-bucket-test", Key=key, Body=b"x" * 100)
    import dags.mlops_monitoring as dag_file

    window = {"start": "2026-11-24T16:00:00+00:00", "end": "2026-11-24T17:00:00+00:00"}
    args = (sys.argv[1], "mlops-dev-churn", "mlops-dev-churn", "datacapture/churn", window)
    routes = [dag_file.drift_engine(*args, 100), dag_file.drift_engine(*args, 101)]
print(json.dumps({"before": loaded_before, "after": [m for m in heavy if m in sys.modules], "routes": routes}))
"""


def test_the_drift_engine_branch_imports_no_numpy(tmp_path: Path) -> None:
    outputs = write_outputs()
    env = {
        **os.environ,
        "MLOPS_OUTPUTS_FILE": str(outputs),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONPATH": str(REPO),
    }
    env.pop("AWS_PROFILE", None)
    env.pop("MLOPS_ENDPOINT_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(outputs)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["before"] == []  # the probe itself (moto, boto3) loads none of them
    assert result["routes"] == ["prepare_spark_drift", "drift_report"]  # 100 bytes: Spark from 100, not 101
    assert result["after"] == [], f"the branch's process imported {result['after']}"
