"""The rehearsal's stage runner: verdicts, exit codes, summary.json, the report, and cleanup."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from pipelines.monitoring.drift import DriftReport, FeatureDrift
from pipelines.synthetic import generate_churn
from rehearsal.emulator import LOOPBACK
from rehearsal.report import render_report, write_report
from rehearsal.run import (
    EXIT_INTERRUPTED,
    EXIT_STAGE_FAILED,
    RehearsalOptions,
    RehearsalOptionsError,
    RunContext,
    Stage,
    run_stages,
)
from rehearsal.stages import check_data, prepare_data, start_emulator

REPO = Path(__file__).resolve().parents[2]


def _quiet() -> Console:
    return Console(file=open(os.devnull, "w"), force_terminal=False)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((LOOPBACK, port)) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _ctx(tmp_path: Path) -> RunContext:
    return RunContext(options=RehearsalOptions(out=tmp_path), out=tmp_path)


def test_a_failed_claim_stops_the_run_naming_the_stage_and_reason(tmp_path: Path) -> None:
    ran: list[str] = []

    def first(ctx: RunContext) -> dict[str, object]:
        ran.append("first")
        ctx.event("deploy", "stack deployed", weights={"primary": 1.0})
        return {"answer": 42}

    def second(ctx: RunContext) -> dict[str, object]:
        ran.append("second")
        return {"rows": 0}

    stages = [
        Stage("first", first, "the answer is 42", lambda ev, ctx: None if ev["answer"] == 42 else "wrong"),
        Stage(
            "second", second, "rows exist", lambda ev, ctx: None if ev["rows"] else "the dataset has no rows"
        ),
        Stage("third", lambda ctx: ran.append("third") or {}, "never reached", lambda ev, ctx: None),
    ]
    ctx = _ctx(tmp_path)
    summary = run_stages(stages, ctx, console=_quiet())

    assert summary.exit_code == EXIT_STAGE_FAILED
    assert summary.message == "rehearsal failed at stage 'second': the dataset has no rows"
    assert ran == ["first", "second"]
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["verdict"] == "failed"
    assert data["exit_code"] == 1
    assert [(s["stage"], s["verdict"]) for s in data["stages"]] == [
        ("first", "passed"),
        ("second", "failed"),
        ("third", "not run"),
    ]
    assert data["stages"][0]["evidence"] == {"answer": 42}
    assert data["stages"][1]["reason"] == "the dataset has no rows"
    assert data["stages"][0]["duration_s"] >= 0
    assert data["stages"][2]["started_s"] is None

    report = write_report(summary, ctx).read_text()
    for section in ('id="stages"', 'id="timeline"', 'id="drift"', 'id="metrics"', 'id="alarms"'):
        assert section in report
    assert 'class="timeline"' in report
    assert "deploy @" in report
    assert "primary: 100%" in report  # the traffic weights of the deployment event
    assert "<script" not in report
    assert "http://" not in report.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_report_draws_one_plot_per_drifted_feature(tmp_path: Path) -> None:
    def feature(name: str, drifted: bool) -> FeatureDrift:
        return FeatureDrift(
            name=name,
            kind="categorical",
            method="chi2",
            statistic=0.01 if drifted else 0.6,
            threshold=0.05,
            drifted=drifted,
            status="drift" if drifted else "ok",
            reference_rows=100,
            current_rows=100,
            current_missing=0,
            reference_missing_rate=0.0,
            current_missing_rate=0.0,
            plot={"type": "bars", "categories": ["a", "b"], "reference": [0.5, 0.5], "current": [0.9, 0.1]},
        )

    ctx = _ctx(tmp_path)
    ctx.drift_reports.append(
        DriftReport(
            features=[feature("contract_type", True), feature("region", False)],
            prediction=None,
            dataset_drift=True,
            drift_share=0.5,
            drifted_features=["contract_type"],
            evaluated_features=2,
            missing_value_rate=0.0,
            current_rows=100,
            reference_rows=100,
            config={"drift_share": 0.3},
            status="drift",
            context={"endpoint_name": "mlops-dev-churn"},
        )
    )
    summary = run_stages([], ctx, console=_quiet())
    html = render_report(summary, ctx)
    assert html.count('<section class="feature">') == 2
    assert "contract_type" in html
    assert "mlops-dev-churn: drift, 1 of 2 features drifted" in html


def test_a_raising_stage_fails_and_everything_started_is_stopped(tmp_path: Path) -> None:
    started: dict[str, int] = {}

    def spawn(ctx: RunContext) -> dict[str, object]:
        child = ctx.spawn([sys.executable, "-c", "import time; time.sleep(60)"])
        started["pid"] = child.pid
        return {"pid": child.pid}

    def boom(ctx: RunContext) -> dict[str, object]:
        raise RuntimeError("the training job failed: exit code 3")

    before = os.environ.get("AWS_ACCESS_KEY_ID")
    ctx = _ctx(tmp_path)
    stages = [
        Stage("emulator", start_emulator, "emulator up", lambda ev, ctx: None),
        Stage("child", spawn, "a child runs", lambda ev, ctx: None),
        Stage("train", boom, "a model is trained", lambda ev, ctx: None),
    ]
    summary = run_stages(stages, ctx, console=_quiet())

    assert summary.exit_code == EXIT_STAGE_FAILED
    assert (
        summary.message
        == "rehearsal failed at stage 'train': RuntimeError: the training job failed: exit code 3"
    )
    port = summary.results[0].evidence["port"]
    assert not _port_open(port)
    assert not _alive(started["pid"])
    assert summary.cleanup_problems == []
    assert os.environ.get("AWS_ACCESS_KEY_ID") == before  # the emulator's credentials were unset


def test_sigint_interrupts_the_stage_and_cleans_up(tmp_path: Path) -> None:
    started: dict[str, int] = {}

    def interrupted(ctx: RunContext) -> dict[str, object]:
        child = ctx.spawn([sys.executable, "-c", "import time; time.sleep(60)"])
        started["pid"] = child.pid
        os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, delivered to this process
        time.sleep(30)
        return {}

    ctx = _ctx(tmp_path)
    stages = [
        Stage("emulator", start_emulator, "emulator up", lambda ev, ctx: None),
        Stage("serve", interrupted, "the endpoint serves", lambda ev, ctx: None),
        Stage("after", lambda ctx: {}, "never reached", lambda ev, ctx: None),
    ]
    summary = run_stages(stages, ctx, console=_quiet())

    assert summary.exit_code == EXIT_INTERRUPTED
    assert [r.verdict for r in summary.results] == ["passed", "interrupted", "not run"]
    assert summary.message.startswith("rehearsal interrupted at stage 'serve'")
    assert not _port_open(summary.results[0].evidence["port"])
    assert not _alive(started["pid"])
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["exit_code"] == EXIT_INTERRUPTED
    assert data["stages"][1]["verdict"] == "interrupted"


def test_options_are_checked_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(RehearsalOptionsError, match="--data and --contract go together"):
        RehearsalOptions(data=tmp_path / "x.csv").validated()
    with pytest.raises(RehearsalOptionsError, match=r"--data .*missing.csv: no such file"):
        RehearsalOptions(data=tmp_path / "missing.csv", contract=tmp_path / "c.yaml").validated()
    data = tmp_path / "mine.csv"
    data.write_text("a,b\n1,2\n")
    bad = tmp_path / "contract.yaml"
    bad.write_text("name: mine\ncolumns: nope\n")
    with pytest.raises(RehearsalOptionsError, match=r"--contract .*contract.yaml: invalid contract"):
        RehearsalOptions(data=data, contract=bad).validated()


def test_cli_exits_2_on_bad_options(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlops_cli.main",
            "rehearse",
            "--data",
            str(tmp_path / "none.csv"),
            "--contract",
            "x.yaml",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "no such file" in result.stderr
    assert not (REPO / "rehearsal-report").exists() or (REPO / "rehearsal-report").is_dir()


def test_user_data_stage_takes_the_file_and_checks_the_contract(tmp_path: Path) -> None:
    frame = generate_churn(rows=200, seed=7)
    data = tmp_path / "customers.csv"
    frame.to_csv(data, index=False)
    options = RehearsalOptions(
        out=tmp_path / "out", data=data, contract=REPO / "contracts" / "churn.yaml"
    ).validated()
    ctx = RunContext(options=options, out=options.out)
    evidence = prepare_data(ctx)
    assert evidence["source"] == f"user data {data}"
    assert evidence["rows"] == 200
    assert check_data(evidence, ctx) is None
    frame.drop(columns=["region"]).to_csv(data, index=False)
    evidence = prepare_data(
        RunContext(options=options, out=options.out, values={"contract": ctx.values["contract"]})
    )
    assert check_data(evidence, ctx) == "columns of the contract missing from the data: ['region']"


@pytest.mark.integration
@pytest.mark.slow
def test_ctrl_c_on_the_command_leaves_nothing_running(tmp_path: Path) -> None:
    """The real command, interrupted during the deploy: exit 130, emulator port closed, summary written."""
    out = tmp_path / "report"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops_cli.main", "rehearse", "--quick", "--out", str(out)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = None
        deadline = time.monotonic() + 240
        while port is None and time.monotonic() < deadline and proc.poll() is None:
            summary = out / "summary.json"
            if summary.is_file():
                stages = json.loads(summary.read_text())["stages"]
                if stages[0]["verdict"] == "passed":
                    port = stages[0]["evidence"]["port"]
            time.sleep(0.2)
        assert port is not None, "the emulator stage never passed"
        assert _port_open(port)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == EXIT_INTERRUPTED, stderr
    assert not _port_open(port)
    data = json.loads((out / "summary.json").read_text())
    assert data["stages"][1]["stage"] == "deploy"
    assert data["stages"][1]["verdict"] == "interrupted"
    assert (out / "report.html").is_file()


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(1800)  # 13 stages; several times the quiet-machine 4 minutes while the suite runs
def test_the_rehearsal_runs_its_stages_against_the_emulator(tmp_path: Path) -> None:
    # The command itself, in its own process, as a user runs it: Airflow configures itself once per
    # process when first imported, so an in-process run would inherit whatever Airflow configuration
    # an earlier test of this worker left behind.
    # tests/dags/conftest.py points AIRFLOW_* at the DAG tests' own home; a user's shell has none.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    result = subprocess.run(
        [sys.executable, "-m", "mlops_cli.main", "rehearse", "--quick", "--out", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads((tmp_path / "summary.json").read_text())
    assert [s["stage"] for s in data["stages"]] == [
        "emulator", "deploy", "data", "ingest", "validate", "train", "deploy-model", "serve", "batch", "canary", "rollback",
        "drift", "retrain", "iam",
    ]  # fmt: skip
    assert {s["verdict"] for s in data["stages"]} == {"passed"}
    by_stage = {s["stage"]: s["evidence"] for s in data["stages"]}
    assert by_stage["data"]["rows"] == 2000
    assert by_stage["validate"]["curated_uri"].startswith("s3://mlops-dev-curated-")
    assert "aws:mwaa/environment:Environment" in by_stage["deploy"]["recorded_types"]
    outputs = json.loads((tmp_path / "stack" / "outputs.json").read_text())
    assert outputs["rawBucket"] == by_stage["deploy"]["raw_bucket"]
    assert not _port_open(by_stage["emulator"]["port"])
    assert 'id="timeline"' in (tmp_path / "report.html").read_text()
    assert by_stage["train"]["training_status"] == "Completed"
    assert by_stage["canary"]["observed_green_shares"] == [0.5, 1.0]  # dev's CANARY 50%
    assert by_stage["rollback"]["deploy_raised_guardrail_rollback"] is True
    assert by_stage["drift"]["control_drifted_features"] == []
    assert by_stage["drift"]["drifted_features"]
    assert by_stage["retrain"]["traffic_errors"] == 0
    assert by_stage["iam"]["iam"] == "enforce"
    assert by_stage["iam"]["denials"] == 0


def test_ctrl_c_interrupts_even_when_sigint_was_inherited_ignored(tmp_path: Path) -> None:
    """A process started with SIGINT ignored (a shell's background job) still stops on Ctrl-C."""

    def interrupted(ctx: RunContext) -> dict[str, object]:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
        return {}

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        summary = run_stages(
            [Stage("serve", interrupted, "the endpoint serves", lambda ev, ctx: None)],
            _ctx(tmp_path),
            console=_quiet(),
        )
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # the caller's handler is back
    finally:
        signal.signal(signal.SIGINT, previous)
    assert summary.exit_code == EXIT_INTERRUPTED
    assert [r.verdict for r in summary.results] == ["interrupted"]
