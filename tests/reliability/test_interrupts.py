"""A pipeline run killed with SIGKILL in the middle of registering, then re-run: one package, same result.

The run is ``mlops pipeline run`` in its own process against the emulator. A latency fault holds its
CreateModelPackage call in flight; the process is killed while it waits, and the emulator then
completes the call (the request had fully arrived, as it would have at AWS): the classic "did my
create succeed?" case. The re-run must find that package by its registration key
(``pipelines/register.py``) instead of creating a second one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines.synthetic import generate
from rehearsal.faults import ApiFault
from tests.reliability.conftest import GROUP, REPO, Account, account

pytestmark = pytest.mark.slow
DAY = "2026-11-21"


@pytest.fixture
def acct(tmp_path: Path) -> Iterator[Account]:
    with account(tmp_path) as acct:
        yield acct


def _environment(acct: Account) -> dict[str, str]:
    """The run's environment: its settings as ``MLOPS_*`` variables and the emulator's credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "AWS_"))}
    for name, value in acct.clients.settings.model_dump().items():
        if value is not None and not isinstance(value, (dict, list)):
            env[f"MLOPS_{name.upper()}"] = str(value)
    env |= {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": acct.emu.region,
    }
    return env


def _run(acct: Account, batch: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "mlops_cli.main", "pipeline", "run", str(batch)]
    command += ["--contract", "churn", "--date", DAY, "--engine", "pandas", "--no-metrics"]
    return subprocess.Popen(
        command, cwd=REPO, env=_environment(acct), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def _packages(acct: Account) -> list[dict[str, Any]]:
    return acct.packages(GROUP)


def test_a_run_killed_while_registering_reruns_to_the_same_single_package(
    acct: Account, tmp_path: Path
) -> None:
    batch = tmp_path / "churn.csv"
    generate("churn", 3000, seed=7).to_csv(batch, index=False)  # enough rows for the gate to pass
    acct.faults.add(ApiFault("sagemaker", "CreateModelPackage", "latency", delay_s=4.0))

    killed = _run(acct, batch)
    deadline = time.monotonic() + 240
    while acct.faults.count(operation="CreateModelPackage") == 0:
        if killed.poll() is not None:
            output = killed.stdout.read().decode() if killed.stdout else ""
            pytest.fail(f"the run ended (exit {killed.returncode}) before registering:\n{output}")
        assert time.monotonic() < deadline, "the run never reached registration"
        time.sleep(0.1)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(timeout=30) == -signal.SIGKILL
    # the request had arrived: the emulator completes it after the client is gone
    deadline = time.monotonic() + 30
    while not _packages(acct):
        assert time.monotonic() < deadline, "the in-flight CreateModelPackage never completed"
        time.sleep(0.2)
    first = _packages(acct)
    raw_before = acct.keys("raw", "")
    curated_before = acct.keys("curated", "")

    acct.faults.reset()
    rerun = _run(acct, batch)
    output = rerun.communicate(timeout=300)[0].decode()
    assert rerun.returncode == 0, output
    after = _packages(acct)
    assert [p["ModelPackageArn"] for p in after] == [p["ModelPackageArn"] for p in first]  # no duplicate
    assert after[0]["ModelApprovalStatus"] == first[0]["ModelApprovalStatus"]  # no second approval
    assert first[0]["ModelPackageArn"] in output or "already registered" in output.lower()
    # the batch landed once and was curated once: the re-run wrote no second copy
    assert acct.keys("raw", "") == raw_before
    assert acct.keys("curated", "") == curated_before
