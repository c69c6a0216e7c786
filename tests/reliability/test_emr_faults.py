"""The EMR on EKS feature job under faults: a FAILED job run publishes nothing; the throttled re-run completes.

One real Spark local-mode run (the re-run), so this module is marked ``spark``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipelines.contract import load_contract
from pipelines.features.emr import JobRunError, submit_features_job, wait_for_job_run
from pipelines.features.local import curated_prefix, features_prefix
from pipelines.synthetic import generate
from pipelines.validate import check_batch, frame_to_parquet
from rehearsal.emr_containers import EmrContainersExtension
from rehearsal.faults import ApiFault, ServiceFault
from tests.reliability.conftest import Account, account

pytestmark = [pytest.mark.slow, pytest.mark.spark]
DAY = "2026-11-20"


@pytest.fixture
def acct(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Account]:
    with account(tmp_path_factory.mktemp("emr-faults"), EmrContainersExtension(cores=1)) as acct:
        cluster = acct.emu.client("emr-containers").create_virtual_cluster(
            name="mlops-dev-features",
            containerProvider={"id": "eks-cluster", "type": "EKS", "info": {"eksInfo": {"namespace": "emr"}}},
        )["id"]
        acct.clients.settings = acct.clients.settings.model_copy(update={"emr_virtual_cluster_id": cluster})
        _, curated = check_batch(
            generate("churn", 300, 5).to_csv(index=False).encode(), "x.csv", load_contract("churn")
        )
        assert curated is not None
        acct.s3.put_object(
            Bucket="curated",
            Key=f"{curated_prefix('churn', DAY)}abc/data.parquet",
            Body=frame_to_parquet(curated),
        )
        yield acct


def test_a_failed_job_run_publishes_nothing_and_the_throttled_rerun_completes(acct: Account) -> None:
    contract = load_contract("churn")
    emr = acct.emu.client("emr-containers")
    acct.faults.add(ServiceFault("emr-job-run"))
    failed = submit_features_job(
        acct.clients, contract, DAY, spark_parameters="--conf spark.driver.memory=1G"
    )
    with pytest.raises(JobRunError, match="FAILED: Jobrun failed: Cluster is unavailable"):
        wait_for_job_run(acct.clients, failed, timeout_s=120, poll_s=0.5)
    described = emr.describe_job_run(id=failed.job_run_id, virtualClusterId=failed.virtual_cluster_id)[
        "jobRun"
    ]
    assert described["failureReason"] == "CLUSTER_UNAVAILABLE"
    assert acct.keys("features", features_prefix("churn", DAY)) == []  # nothing half-written

    # the re-run of the step: its API calls are throttled and fail transiently, and it completes
    acct.faults.add(ApiFault("emr-containers", "StartJobRun", "throttle", times=2))
    acct.faults.add(ApiFault("emr-containers", "DescribeJobRun", "transient", times=2))
    acct.faults.add(
        ApiFault("s3", "PutObject", "throttle", times=1, where=lambda r: r.params["Key"].endswith(".py"))
    )
    run = submit_features_job(acct.clients, contract, DAY, spark_parameters="--conf spark.driver.memory=1G")
    job = wait_for_job_run(acct.clients, run, timeout_s=420, poll_s=1)
    assert job["state"] == "COMPLETED"
    assert acct.faults.count(service="emr-containers", kind="throttle") == 2
    assert acct.faults.count(service="emr-containers", kind="transient") == 2
    parts = [k for k in acct.keys("features", features_prefix("churn", DAY)) if k.endswith(".parquet")]
    assert parts
    runs = emr.list_job_runs(virtualClusterId=run.virtual_cluster_id)["jobRuns"]
    assert sorted(r["state"] for r in runs) == ["COMPLETED", "FAILED"]  # one job run per submission
