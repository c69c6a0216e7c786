"""SageMaker training jobs in the emulator run their entry point under the container contract."""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from rehearsal.emulator import Emulator
from rehearsal.training import SageMakerTraining, cmd_args, traceback_tail

BUCKET = "jobs"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}

GOOD_ENTRY = """
import json, os, sys
from pathlib import Path
import sklearn  # the image's library
import helper   # shipped in the archive
model_dir = Path(os.environ["SM_MODEL_DIR"])
train = Path(os.environ["SM_CHANNEL_TRAIN"])
rows = sum(len(p.read_text().splitlines()) for p in sorted(train.rglob("*.csv")))
(model_dir / "model.txt").write_text(helper.describe(rows))
(Path(os.environ["SM_OUTPUT_DATA_DIR"]) / "extra.txt").write_text("extra")
hps = json.loads(os.environ["SM_HPS"])
Path(os.environ["SM_MODEL_DIR"], "seen.json").write_text(json.dumps({
    "argv": sys.argv[1:], "hps": hps, "cwd": os.getcwd(), "sys_path": sys.path,
    "env": {k: v for k, v in os.environ.items()},
    "config": sorted(os.listdir(os.environ["SM_INPUT_CONFIG_DIR"])),
}))
print("epoch 1 loss=0.9")
print("validation:auc=0.75")
print("validation:auc=0.875")
"""


def _archive(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Emulator]:
    training = SageMakerTraining(stop_grace_s=2, poll_s=0.05)
    with Emulator(extensions=[training], workdir=tmp_path / "emu") as emulator:
        s3 = emulator.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="data/train/part-0.csv", Body=b"a,b\n1,2\n3,4\n")
        s3.put_object(Bucket=BUCKET, Key="data/train/sub/part-1.csv", Body=b"a,b\n5,6\n")
        emulator.client("iam").create_role(RoleName="sm", AssumeRolePolicyDocument=json.dumps(TRUST))
        yield emulator


def _submit(emu: Emulator, name: str, files: dict[str, str], **overrides: Any) -> dict[str, Any]:
    key = f"src/{name}/sourcedir.tar.gz"
    emu.client("s3").put_object(Bucket=BUCKET, Key=key, Body=_archive(files))
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": IMAGE,
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "validation:auc", "Regex": r"validation:auc=([0-9.]+)"}],
        },
        "RoleArn": f"arn:aws:iam::{emu.account_id}:role/sm",
        "HyperParameters": {
            "sagemaker_program": json.dumps("entry.py"),
            "sagemaker_submit_directory": json.dumps(f"s3://{BUCKET}/{key}"),
            "learning_rate": json.dumps(0.1),
            "estimator": json.dumps("ridge"),
        },
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/data/train"}
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/out/", "KmsKeyId": "alias/ml"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 120},
    }
    request.update(overrides)
    emu.client("sagemaker").create_training_job(**request)
    return request


def _finished(emu: Emulator, name: str) -> dict[str, Any]:
    status = emu.extension("sagemaker-training").wait(name, timeout_s=60)  # type: ignore[attr-defined]
    job = emu.client("sagemaker").describe_training_job(TrainingJobName=name)
    assert job["TrainingJobStatus"] == status
    return job


def _tar_members(emu: Emulator, key: str) -> dict[str, bytes]:
    body = emu.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}  # type: ignore[union-attr]


HELPER = "def describe(rows):\n    return f'rows={rows}'\n"


def test_a_passing_job_is_in_progress_then_completed_with_its_model_and_metrics(emu: Emulator) -> None:
    files = {"entry.py": "import time\ntime.sleep(1.0)\n" + GOOD_ENTRY, "helper.py": HELPER}
    _submit(emu, "good-job", files)
    first = emu.client("sagemaker").describe_training_job(TrainingJobName="good-job")
    assert first["TrainingJobStatus"] == "InProgress"
    assert first["ModelArtifacts"] == {"S3ModelArtifacts": ""}  # nothing uploaded yet

    job = _finished(emu, "good-job")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == [
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://{BUCKET}/out/good-job/output/model.tar.gz"
    assert [(m["MetricName"], m["Value"]) for m in job["FinalMetricDataList"]] == [("validation:auc", 0.875)]
    assert job["AlgorithmSpecification"]["MetricDefinitions"][0]["Name"] == "validation:auc"

    head = emu.client("s3").head_object(Bucket=BUCKET, Key="out/good-job/output/model.tar.gz")
    assert head["ServerSideEncryption"] == "aws:kms"
    model = _tar_members(emu, "out/good-job/output/model.tar.gz")
    assert model["model.txt"] == b"rows=5"  # both files under the prefix (3 + 2 lines)
    assert _tar_members(emu, "out/good-job/output/output.tar.gz") == {"extra.txt": b"extra"}

    seen = json.loads(model["seen.json"])
    # toolkit: hyperparameters JSON-decoded, sagemaker_* split off, sorted --key value arguments
    assert seen["argv"] == ["--estimator", "ridge", "--learning_rate", "0.1"]
    assert seen["hps"] == {"estimator": "ridge", "learning_rate": 0.1}
    env = seen["env"]
    ml = emu.extension("sagemaker-training").job_folder("good-job")  # type: ignore[attr-defined]
    assert env["SM_MODEL_DIR"] == str(ml / "model")
    assert env["SM_CHANNELS"] == '["train"]'
    assert env["SM_CHANNEL_TRAIN"] == str(ml / "input" / "data" / "train")
    assert env["SM_HP_LEARNING_RATE"] == "0.1"
    assert env["SM_HP_ESTIMATOR"] == "ridge"
    assert env["SM_HOSTS"] == '["algo-1"]'
    assert env["SM_CURRENT_HOST"] == "algo-1"
    assert env["SM_USER_ARGS"] == json.dumps(seen["argv"], separators=(",", ":"))
    assert json.loads(env["SM_TRAINING_ENV"])["job_name"] == "good-job"
    assert env["TRAINING_JOB_NAME"] == "good-job"
    assert int(env["SM_NUM_CPUS"]) >= 1
    assert "AWS_ACCESS_KEY_ID" not in env
    assert "AWS_SECRET_ACCESS_KEY" not in env
    assert seen["cwd"] == str(ml / "code")
    assert seen["config"] == ["hyperparameters.json", "inputdataconfig.json", "resourceconfig.json"]
    resource = json.loads((ml / "input/config/resourceconfig.json").read_text())
    assert resource["current_host"] == "algo-1"
    assert resource["hosts"] == ["algo-1"]

    logs = emu.client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs")["logStreams"]
    assert [s["logStreamName"].rsplit("-", 1)[0] for s in streams] == ["good-job/algo-1"]
    events = logs.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=streams[0]["logStreamName"]
    )["events"]
    assert "validation:auc=0.875" in [e["message"] for e in events]


def test_the_process_never_sees_the_repository(emu: Emulator) -> None:
    repo = Path(__file__).resolve().parents[2]
    probe = (
        "import importlib.util, os, sys\n"
        "bad = [n for n in ('pipelines', 'rehearsal', 'stacks', 'components', 'platform_contract')\n"
        "       if importlib.util.find_spec(n) is not None]\n"
        # the image's libraries are this venv's site-packages (which lives in the checkout); nothing else is
        f"leaks = [p for p in sys.path if p.startswith({str(repo)!r}) and 'site-packages' not in p]\n"
        f"cwd_in_repo = os.getcwd().startswith({str(repo)!r})\n"
        "if bad or leaks or cwd_in_repo:\n"
        "    raise SystemExit(f'sees the repository: {bad} {leaks} {cwd_in_repo}')\n"
    )
    _submit(emu, "probe", {"entry.py": probe})
    job = _finished(emu, "probe")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")


def test_a_failing_entry_point_fails_with_the_end_of_its_traceback(emu: Emulator) -> None:
    entry = "def fit():\n    raise ValueError('the label column is empty')\nfit()\n"
    _submit(emu, "bad-job", {"entry.py": entry})
    job = _finished(emu, "bad-job")
    assert job["TrainingJobStatus"] == "Failed"
    assert job["SecondaryStatus"] == "Failed"
    reason = job["FailureReason"]
    assert reason.startswith("AlgorithmError: ExecuteUserScriptError:\nExitCode 1")
    assert "ValueError: the label column is empty" in reason
    assert 'Command "/miniconda3/bin/python entry.py --estimator ridge --learning_rate 0.1"' in reason
    assert job["ModelArtifacts"] == {"S3ModelArtifacts": ""}


def test_the_failure_file_is_the_reason_when_the_entry_point_writes_it(emu: Emulator) -> None:
    entry = (
        "import os, pathlib\n"
        "pathlib.Path(os.environ['SM_OUTPUT_DIR'], 'failure').write_text('bad contract: no target')\n"
        "raise SystemExit(2)\n"
    )
    _submit(emu, "failure-file", {"entry.py": entry})
    job = _finished(emu, "failure-file")
    assert job["FailureReason"] == "AlgorithmError: bad contract: no target"


def test_an_archive_missing_a_module_fails_like_the_image_would(emu: Emulator) -> None:
    _submit(emu, "isolated", {"entry.py": "import helper\n"})  # helper.py not shipped
    job = _finished(emu, "isolated")
    assert job["TrainingJobStatus"] == "Failed"
    assert "ModuleNotFoundError: No module named 'helper'" in job["FailureReason"]


def test_unmet_requirements_fail_the_job_without_running_it(emu: Emulator) -> None:
    files = {"entry.py": "open('ran', 'w').write('x')\n", "requirements.txt": "no-such-package-xyz==1.0\n"}
    _submit(emu, "reqs", files)
    job = _finished(emu, "reqs")
    assert job["TrainingJobStatus"] == "Failed"
    assert "InstallRequirementsError" in job["FailureReason"]
    assert "no-such-package-xyz==1.0: not in the image" in job["FailureReason"]
    ml = emu.extension("sagemaker-training").job_folder("reqs")  # type: ignore[attr-defined]
    assert not (ml / "code" / "ran").exists()


def test_max_runtime_stops_the_job(emu: Emulator) -> None:
    entry = "import time\nprint('started', flush=True)\ntime.sleep(60)\n"
    started = time.monotonic()
    _submit(emu, "slow", {"entry.py": entry}, StoppingCondition={"MaxRuntimeInSeconds": 2})
    job = _finished(emu, "slow")
    assert time.monotonic() - started < 20
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_SecondaryStatusTransition.html
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")
    assert job["ModelArtifacts"] == {"S3ModelArtifacts": ""}


def test_stop_training_job_stops_the_process_and_keeps_what_it_saved(emu: Emulator) -> None:
    entry = (
        "import os, pathlib, signal, sys, time\n"
        "def save(*_):\n"
        "    pathlib.Path(os.environ['SM_MODEL_DIR'], 'partial.txt').write_text('saved on SIGTERM')\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, save)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    _submit(emu, "to-stop", {"entry.py": entry})
    sm = emu.client("sagemaker")
    deadline = time.monotonic() + 30
    while sm.describe_training_job(TrainingJobName="to-stop")["SecondaryStatus"] != "Training":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1.0)  # let the process install its handler
    sm.stop_training_job(TrainingJobName="to-stop")
    assert sm.describe_training_job(TrainingJobName="to-stop")["TrainingJobStatus"] in {"Stopping", "Stopped"}
    job = _finished(emu, "to-stop")
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert _tar_members(emu, "out/to-stop/output/model.tar.gz") == {"partial.txt": b"saved on SIGTERM"}
    with pytest.raises(ClientError, match="status Stopped"):
        sm.stop_training_job(TrainingJobName="to-stop")


def test_create_refuses_what_aws_refuses(emu: Emulator) -> None:
    files = {"entry.py": "pass\n"}
    with pytest.raises(ClientError, match="Could not assume role"):
        _submit(emu, "no-role", files, RoleArn=f"arn:aws:iam::{emu.account_id}:role/missing")
    other = {
        "TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/mine:latest",
        "TrainingInputMode": "File",
    }
    with pytest.raises(ClientError, match="cannot run offline"):
        _submit(emu, "other-image", files, AlgorithmSpecification=other)
    old = {
        "TrainingImage": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
        "TrainingInputMode": "File",
    }
    with pytest.raises(ClientError, match=r"has scikit-learn 1\.2-1"):
        _submit(emu, "old-image", files, AlgorithmSpecification=old)
    _submit(emu, "twice", files)
    with pytest.raises(ClientError, match="already exists"):
        _submit(emu, "twice", files)
    with pytest.raises(ClientError, match="Could not find training job"):
        emu.client("sagemaker").stop_training_job(TrainingJobName="never")


def test_an_empty_channel_and_network_isolation_fail_as_on_aws(emu: Emulator) -> None:
    channel = [
        {
            "ChannelName": "train",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/nothing/"}},
        }
    ]
    _submit(emu, "empty", {"entry.py": "pass\n"}, InputDataConfig=channel)
    assert "No S3 objects found under S3 URL" in _finished(emu, "empty")["FailureReason"]
    _submit(emu, "isolated-net", {"entry.py": "pass\n"}, EnableNetworkIsolation=True)
    assert "EnableNetworkIsolation" in _finished(emu, "isolated-net")["FailureReason"]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has ended; only its exit status is left


def test_close_kills_the_process_group_without_the_stop_window_and_restores_moto(tmp_path: Path) -> None:
    from moto.sagemaker.responses import SageMakerResponse

    training = SageMakerTraining(poll_s=0.05)  # the default 120 s SIGTERM window
    entry = (
        "import os, signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "open(os.path.join(os.environ['SM_OUTPUT_DATA_DIR'], 'child.pid'), 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    with Emulator(extensions=[training], workdir=tmp_path / "emu") as emu:
        emu.client("s3").create_bucket(Bucket=BUCKET)
        emu.client("s3").put_object(Bucket=BUCKET, Key="data/train/x.csv", Body=b"a\n1\n")
        emu.client("iam").create_role(RoleName="sm", AssumeRolePolicyDocument=json.dumps(TRUST))
        _submit(emu, "long", {"entry.py": entry})
        pid_file = training.job_folder("long") / "output" / "data" / "child.pid"
        deadline = time.monotonic() + 30
        while not pid_file.is_file() or not pid_file.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        process = training._jobs["long"].process
        assert process is not None
        child = int(pid_file.read_text())
        closing = time.monotonic()
    assert time.monotonic() - closing < 15
    assert process.poll() is not None
    assert not _alive(child)
    assert not hasattr(SageMakerResponse, "stop_training_job")


def test_a_manifest_channel_downloads_the_listed_objects(emu: Emulator) -> None:
    manifest = json.dumps([{"prefix": f"s3://{BUCKET}/data/"}, "train/part-0.csv"])
    emu.client("s3").put_object(Bucket=BUCKET, Key="manifests/train.json", Body=manifest.encode())
    channel = [
        {
            "ChannelName": "train",
            "DataSource": {
                "S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": f"s3://{BUCKET}/manifests/train.json"}
            },
        }
    ]
    entry = (
        "import os, pathlib\n"
        "root = pathlib.Path(os.environ['SM_CHANNEL_TRAIN'])\n"
        "found = sorted(p.relative_to(root).as_posix() for p in root.rglob('*') if p.is_file())\n"
        "assert found == ['train/part-0.csv'], found\n"
    )
    _submit(emu, "manifest", {"entry.py": entry}, InputDataConfig=channel)
    job = _finished(emu, "manifest")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")


def test_toolkit_helpers() -> None:
    # mapping.to_cmd_args: one-letter names get one dash; values are str() of the JSON-decoded value
    assert cmd_args({"b": 1, "a": "x", "c": {"k": 2}}) == ["-a", "x", "-b", "1", "-c", "k=2"]
    assert cmd_args({"fit_intercept": False, "layers": [1, 2]}) == [
        "--fit_intercept",
        "False",
        "--layers",
        "[1, 2]",
    ]
    log = 'noise\nTraceback (most recent call last):\n  File "e.py", line 1\n    boom()\nNameError: boom\n'
    assert traceback_tail(log) == '  File "e.py", line 1\n    boom()\nNameError: boom'
