"""Hyperparameter tuning jobs in the emulator launch real trials and pick the best by the objective."""

from __future__ import annotations

import io
import itertools
import json
import random
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from rehearsal.emulator import Emulator
from rehearsal.training import SageMakerTraining
from rehearsal.tuning import SageMakerTuning, sample

BUCKET = "jobs"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}

# score = 1 - (alpha - 0.3)^2: the trial closest to alpha=0.3 has the highest score and the lowest loss;
# depth > 7 crashes the trial.
ENTRY = """
import json, os, sys
from pathlib import Path
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
x, n = float(args["--alpha"]), int(args["--depth"])
if n > 7:
    raise SystemExit(f"n={n} is too large")
Path(os.environ["SM_MODEL_DIR"], "model.txt").write_text(f"x={x}")
print(f"validation:score={1 - (x - 0.3) ** 2:.6f}")
print(f"validation:loss={(x - 0.3) ** 2:.6f}")
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
    extensions = [SageMakerTraining(stop_grace_s=2, poll_s=0.05), SageMakerTuning(poll_s=0.05)]
    with Emulator(extensions=extensions, workdir=tmp_path / "emu") as emulator:
        s3 = emulator.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="data/train/part-0.csv", Body=b"a,b\n1,2\n")
        s3.put_object(Bucket=BUCKET, Key="src/sourcedir.tar.gz", Body=_archive({"entry.py": ENTRY}))
        emulator.client("iam").create_role(RoleName="sm", AssumeRolePolicyDocument=json.dumps(TRUST))
        yield emulator


def _request(emu: Emulator, name: str, objective: str, kind: str, **limits: int) -> dict[str, Any]:
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Random",
            "HyperParameterTuningJobObjective": {"Type": kind, "MetricName": objective},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2, **limits},
            "ParameterRanges": {
                "ContinuousParameterRanges": [
                    {"Name": "alpha", "MinValue": "0.0", "MaxValue": "1.0", "ScalingType": "Linear"}
                ],
                "IntegerParameterRanges": [{"Name": "depth", "MinValue": "1", "MaxValue": "5"}],
            },
        },
        "TrainingJobDefinition": {
            "AlgorithmSpecification": {
                "TrainingImage": IMAGE,
                "TrainingInputMode": "File",
                "MetricDefinitions": [
                    {"Name": "validation:score", "Regex": r"validation:score=([0-9.eE+-]+)"},
                    {"Name": "validation:loss", "Regex": r"validation:loss=([0-9.eE+-]+)"},
                ],
            },
            "RoleArn": f"arn:aws:iam::{emu.account_id}:role/sm",
            "StaticHyperParameters": {
                "sagemaker_program": json.dumps("entry.py"),
                "sagemaker_submit_directory": json.dumps(f"s3://{BUCKET}/src/sourcedir.tar.gz"),
            },
            "InputDataConfig": [
                {
                    "ChannelName": "train",
                    "DataSource": {
                        "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/data/train"}
                    },
                }
            ],
            "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/out/"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
            "StoppingCondition": {"MaxRuntimeInSeconds": 120},
        },
        "Tags": [{"Key": "mlops:model", "Value": "demo"}],
    }


def _run(emu: Emulator, request: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    sm = emu.client("sagemaker")
    sm.create_hyper_parameter_tuning_job(**request)
    name = request["HyperParameterTuningJobName"]
    first = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    assert first["HyperParameterTuningJobStatus"] == "InProgress"
    emu.extension("sagemaker-tuning").wait(name, timeout_s=240)  # type: ignore[attr-defined]
    job = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    trials = sm.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, MaxResults=100
    )["TrainingJobSummaries"]
    return job, trials


@pytest.mark.parametrize(
    ("objective", "kind"), [("validation:score", "Maximize"), ("validation:loss", "Minimize")]
)
def test_the_best_trial_is_chosen_by_the_objective(emu: Emulator, objective: str, kind: str) -> None:
    name = f"tune-{kind.lower()}"
    job, trials = _run(emu, _request(emu, name, objective, kind))

    assert job["HyperParameterTuningJobStatus"] == "Completed"
    assert len(trials) == 4
    assert job["TrainingJobStatusCounters"]["Completed"] == 4
    assert job["ObjectiveStatusCounters"]["Succeeded"] == 4
    for trial in trials:
        assert trial["TrainingJobName"].startswith(f"{name}-")
        assert len(trial["TrainingJobName"]) == len(name) + 13  # -NNN-<8 hex>
        x = float(trial["TunedHyperParameters"]["alpha"])
        expected = 1 - (x - 0.3) ** 2 if kind == "Maximize" else (x - 0.3) ** 2
        assert trial["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == pytest.approx(
            expected, abs=1e-5
        )
    values = [t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for t in trials]
    best = job["BestTrainingJob"]
    chosen = max(values) if kind == "Maximize" else min(values)
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == pytest.approx(chosen)
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["MetricName"] == objective
    # closest to alpha = 0.3 either way
    closest = min(trials, key=lambda t: abs(float(t["TunedHyperParameters"]["alpha"]) - 0.3))
    assert best["TrainingJobName"] == closest["TrainingJobName"]
    # the best trial's model is where a training job puts it, and the trial got the job's tags
    sm = emu.client("sagemaker")
    described = sm.describe_training_job(TrainingJobName=best["TrainingJobName"])
    assert described["ModelArtifacts"]["S3ModelArtifacts"] == (
        f"s3://{BUCKET}/out/{best['TrainingJobName']}/output/model.tar.gz"
    )
    tags = sm.list_tags(ResourceArn=described["TrainingJobArn"])["Tags"]
    assert {"Key": "mlops:model", "Value": "demo"} in tags


def test_at_most_max_parallel_trials_run_at_once(emu: Emulator) -> None:
    job, trials = _run(
        emu, _request(emu, "tune-par", "validation:score", "Maximize", MaxParallelTrainingJobs=1)
    )
    assert job["HyperParameterTuningJobStatus"] == "Completed"
    spans = sorted((t["TrainingStartTime"], t["TrainingEndTime"]) for t in trials)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start  # one at a time: each starts after the previous ended


def test_a_failed_trial_is_counted_and_all_failed_fails_the_job(emu: Emulator) -> None:
    request = _request(emu, "tune-fail", "validation:score", "Maximize", MaxNumberOfTrainingJobs=6)
    request["HyperParameterTuningJobConfig"]["ParameterRanges"]["IntegerParameterRanges"] = [
        {"Name": "depth", "MinValue": "1", "MaxValue": "10"}
    ]
    job, trials = _run(emu, request)
    crashed = [t for t in trials if int(t["TunedHyperParameters"]["depth"]) > 7]
    assert crashed, "the seeded sample of this job name has a crashing trial"
    assert job["TrainingJobStatusCounters"]["NonRetryableError"] == len(crashed)
    assert job["TrainingJobStatusCounters"]["Completed"] == 6 - len(crashed)
    assert job["ObjectiveStatusCounters"]["Failed"] == len(crashed)
    for trial in crashed:
        assert trial["TrainingJobStatus"] == "Failed"
        assert "too large" in trial["FailureReason"]
    assert job["HyperParameterTuningJobStatus"] == "Completed"

    request = _request(emu, "tune-allfail", "validation:score", "Maximize", MaxNumberOfTrainingJobs=2)
    request["HyperParameterTuningJobConfig"]["ParameterRanges"]["IntegerParameterRanges"] = [
        {"Name": "depth", "MinValue": "8", "MaxValue": "9"}
    ]
    job, trials = _run(emu, request)
    assert job["HyperParameterTuningJobStatus"] == "Failed"
    assert job["TrainingJobStatusCounters"]["NonRetryableError"] == 2
    assert "No training job succeeded after 2 attempts" in job["FailureReason"]
    assert "too large" in job["FailureReason"]
    assert not job.get("BestTrainingJob")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"HyperParameterTuningJobName": "x" * 33}, "hyperParameterTuningJobName"),
        ({"ResourceLimits": {"MaxNumberOfTrainingJobs": 751, "MaxParallelTrainingJobs": 1}}, "MaxNumberOf"),
        ({"ResourceLimits": {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 11}}, "MaxParallel"),
        ({"Strategy": "Hyperband"}, "not emulated"),
        (
            {"HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "nope"}},
            "MetricDefinitions",
        ),
        (
            {
                "ParameterRanges": {
                    "ContinuousParameterRanges": [
                        {"Name": "alpha", "MinValue": "0", "MaxValue": "1", "ScalingType": "Logarithmic"}
                    ]
                }
            },
            "Logarithmic",
        ),
        (
            {
                "ParameterRanges": {
                    "IntegerParameterRanges": [{"Name": "depth", "MinValue": "5", "MaxValue": "5"}]
                }
            },
            "less than",
        ),
    ],
)
def test_invalid_requests_are_refused(emu: Emulator, change: dict[str, Any], message: str) -> None:
    request = _request(emu, "tune-bad", "validation:score", "Maximize")
    if "HyperParameterTuningJobName" in change:
        request.update(change)
    else:
        request["HyperParameterTuningJobConfig"].update(change)
    with pytest.raises(ClientError, match=message):
        emu.client("sagemaker").create_hyper_parameter_tuning_job(**request)


def test_sampling_respects_ranges_and_scaling() -> None:
    rng = random.Random(1)
    ranges = {
        "ContinuousParameterRanges": [
            {"Name": "c", "MinValue": "0.001", "MaxValue": "100", "ScalingType": "Logarithmic"},
            {"Name": "r", "MinValue": "0.9", "MaxValue": "0.999", "ScalingType": "ReverseLogarithmic"},
        ],
        "IntegerParameterRanges": [{"Name": "k", "MinValue": "2", "MaxValue": "4"}],
        "CategoricalParameterRanges": [{"Name": "s", "Values": ["a", "b"]}],
    }
    points = [sample(ranges, rng) for _ in range(400)]
    cs = [float(p["c"]) for p in points]
    assert all(0.001 <= c <= 100 for c in cs)
    assert sum(c < 0.1 for c in cs) > 100  # log-uniform: 2 of 5 decades below 0.1 (linear would give ~0)
    assert all(0.9 <= float(p["r"]) <= 0.999 for p in points)
    assert {p["k"] for p in points} == {"2", "3", "4"}
    assert {p["s"] for p in points} == {"a", "b"}
