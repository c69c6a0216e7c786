"""Drift on Spark: the in-process engine's statistics from a PySpark job, for windows too large for one machine.

The split of work: the job (:mod:`pipelines.monitoring.spark_drift_job`, self-contained) decodes
the captured rows once and returns the sufficient statistics the streaming
:class:`~pipelines.monitoring.drift.DriftAccumulator` keeps; this module writes the job's plan (the
reference's PSI and plot bin edges, the bounds) and loads the state back into an accumulator, whose
``result()`` runs the very same tests (KS, Wasserstein, chi-square, Z, Jensen-Shannon, PSI) and the
same verdict rules. So the two engines agree exactly on counts, sums, histograms, PSI, category
counts and every categorical and low-cardinality verdict. Where they can differ, only in the last
digits: KS and Wasserstein read a uniform sample of at most ``reservoir_size`` values in both
engines (all values below that size, so equal there); beyond it each engine draws its own sample
(reservoir vs Bernoulli), and a verdict can differ only when the statistic sits within sampling
noise (about ``1/sqrt(reservoir_size)``) of its threshold. Sums are added in a different order
(floating-point rounding in the last bits of means and standard deviations). Past ``max_categories``
distinct values the in-process engine keeps the first seen, the Spark one the most frequent.

On the platform the monitoring DAG submits the job to EMR on EKS when a window holds at least the
model's ``sparkDriftMinBytes`` of capture (:func:`choose_engine`, :func:`spark_drift_request`, then
:func:`spark_drift_monitor` writes the report as the in-process monitor does).

Not covered by the Spark engine: prediction (score) drift (the response payload is not decoded) and
JSON/base64 or quoted-CSV request payloads (counted as ``unsupported_records``; the in-process engine
handles them).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.monitoring.capture_window import window_capture
from pipelines.monitoring.drift import OTHER_CATEGORY, DriftAccumulator, DriftConfig, DriftReport, Reference
from platform_contract.limits import SPARK_DRIFT_MIN_BYTES

if TYPE_CHECKING:
    from pipelines.aws import AwsClients

JOB_SCRIPT = Path(__file__).with_name("spark_drift_job.py")
"""The PySpark entry point to upload and submit."""
DEFAULT_SPARK_MIN_BYTES = SPARK_DRIFT_MIN_BYTES["dev"]
"""Window size (captured bytes) from which drift goes to Spark when the stack sets none (2 GiB, set
from the measured crossover: ``platform_contract.limits.SPARK_DRIFT_MIN_BYTES``, docs/benchmarks.md).
The monitoring DAG reads the model's ``sparkDriftMinBytes`` stack output."""
SPARK_DRIFT_PARAMETERS = (
    "--conf spark.executor.instances=2 --conf spark.executor.cores=2 --conf spark.executor.memory=4G "
    "--conf spark.driver.cores=1 --conf spark.driver.memory=2G"
)
"""spark-submit parameters of the drift job (the feature job's sizes)."""


def _stamp(value: datetime) -> str:
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def use_spark(window_bytes: int, threshold_bytes: int = DEFAULT_SPARK_MIN_BYTES) -> bool:
    """Whether a window of ``window_bytes`` captured bytes goes to the Spark engine."""
    return window_bytes >= threshold_bytes


def drift_plan(
    reference: Reference,
    config: DriftConfig | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, Any]:
    """The job's plan: features in model order with the reference's bin edges, bounds and the window."""
    config = config or DriftConfig()
    accumulator = DriftAccumulator(reference, config)
    features = []
    for feature in reference.features:
        item: dict[str, Any] = {"name": feature.name, "kind": feature.kind}
        if feature.kind == "numeric":
            column = accumulator._numeric[feature.name]
            item["psi_edges"] = column.psi_edges.tolist()
            item["plot_edges"] = column.plot_edges.tolist()
        features.append(item)
    return {
        "features": features,
        "reservoir_size": config.reservoir_size,
        "low_cardinality_max": config.low_cardinality_max,
        "max_categories": config.max_categories,
        "seed": config.seed,
        "window_start": _stamp(start) if start else None,
        "window_end": _stamp(end) if end else None,
    }


def accumulator_from_state(
    reference: Reference, state: Mapping[str, Any], config: DriftConfig | None = None
) -> DriftAccumulator:
    """A :class:`DriftAccumulator` holding the Spark job's state, ready for ``result()``."""
    config = config or DriftConfig()
    accumulator = DriftAccumulator(reference, config)
    accumulator.rows = int(state["rows"])
    rng = np.random.default_rng(config.seed)
    for name, values in state["numeric"].items():
        column = accumulator._numeric[name]
        column.count = int(values["count"])
        column.missing = int(values["missing"])
        column.total = float(values["total"])
        column.total_sq = float(values["total_sq"])
        column.minimum = float(values["minimum"])
        column.maximum = float(values["maximum"])
        column.psi_counts = np.asarray(values["psi_counts"], dtype=np.int64)
        column.plot_counts = np.asarray(values["plot_counts"], dtype=np.int64)
        distinct = values.get("distinct")
        column.distinct = None if distinct is None else {float(k): int(v) for k, v in distinct.items()}
        sample = np.asarray(values["sample"], dtype=np.float64)
        if sample.size > config.reservoir_size:  # the Bernoulli sample overshot: trim uniformly
            sample = rng.choice(sample, config.reservoir_size, replace=False)
        reservoir = column.reservoir
        reservoir.values[: sample.size] = sample
        reservoir.seen = sample.size  # sample() returns exactly these values
    for name, values in state["categorical"].items():
        column = accumulator._categorical[name]
        counts = Counter({str(k): int(v) for k, v in values["counts"].items()})
        if len(counts) > config.max_categories:
            kept = dict(counts.most_common(config.max_categories))
            other = sum(v for k, v in counts.items() if k not in kept)
            counts = Counter(kept)
            counts[OTHER_CATEGORY] += other
        if values.get("other"):  # the job sends the most frequent max_categories and the rest's total
            counts[OTHER_CATEGORY] += int(values["other"])
        column.counts = counts
        column.missing = int(values["missing"])
    return accumulator


def spark_drift(
    spark: Any,
    paths: Sequence[str],
    reference: Reference,
    config: DriftConfig | None = None,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    context: Mapping[str, Any] | None = None,
) -> DriftReport:
    """Run the job's computation in ``spark`` (local mode in tests and benchmarks) and return the report."""
    from pipelines.monitoring import spark_drift_job

    plan = drift_plan(reference, config, start, end)
    state = spark_drift_job.compute_state(spark, list(paths), plan)
    return report_from_state(reference, state, config, context)


def report_from_state(
    reference: Reference,
    state: Mapping[str, Any],
    config: DriftConfig | None = None,
    context: Mapping[str, Any] | None = None,
) -> DriftReport:
    """The drift report of a job state (e.g. the JSON the EMR job wrote)."""
    extra = {
        "engine": "spark",
        "spark": {k: state[k] for k in ("records", "unsupported_records", "malformed_records")},
    }
    return accumulator_from_state(reference, state, config).result({**dict(context or {}), **extra})


def load_state(text: str) -> dict[str, Any]:
    """Parse the job's state file."""
    return json.loads(text)


# ------------------------------------------------------------------------------ on EMR on EKS


def _reference(clients: AwsClients, evaluation_prefix: str, folder: Path) -> Reference:
    """The champion's drift reference, downloaded from its evaluation prefix into ``folder``."""
    from pipelines.aws import split_s3_uri
    from pipelines.monitoring.drift import load_reference

    bucket, prefix = split_s3_uri(evaluation_prefix)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("baseline.json", "baseline_sample.parquet"):
        body = clients.s3.get_object(Bucket=bucket, Key=prefix + name)["Body"].read()
        (folder / name).write_bytes(body)
    return load_reference(folder)


def spark_drift_request(
    clients: AwsClients,
    endpoint: str,
    capture_prefix: str,
    evaluation_prefix: str,
    start: datetime,
    end: datetime,
    scratch: Path,
    config: DriftConfig | None = None,
) -> dict[str, Any]:
    """Write the job's plan and script to the artifacts bucket and return the EMR on EKS StartJobRun
    request (keys as :class:`EmrContainerOperator` takes them) plus ``state_uri``, where the job writes
    its state. The job reads the window's capture hour folders as the job execution role."""
    import uuid

    from pipelines.aws import put_bytes, sha256_hex
    from pipelines.features.emr import configuration_overrides
    from pipelines.monitoring.report import report_prefix

    settings = clients.settings
    artifacts = settings.require("artifacts_bucket")
    capture_bucket = settings.require("capture_bucket")
    reference = _reference(clients, evaluation_prefix, scratch / "baseline")
    _, folders = window_capture(clients.s3, capture_bucket, capture_prefix, endpoint, start, end)
    if not folders:
        raise FileNotFoundError(
            f"no capture files under s3://{capture_bucket}/{capture_prefix} for {endpoint} in the window"
        )
    prefix = report_prefix(endpoint, start, end) + "spark/"
    plan = json.dumps(drift_plan(reference, config, start, end)).encode()
    plan_uri = put_bytes(
        clients.s3, artifacts, f"{prefix}plan.json", plan, settings.ml_key_arn, "application/json"
    )
    script = JOB_SCRIPT.read_bytes()
    script_uri = put_bytes(
        clients.s3,
        artifacts,
        f"code/monitoring/{sha256_hex(script)[:16]}/spark_drift_job.py",
        script,
        settings.ml_key_arn,
        "text/x-python",
    )
    state_uri = f"s3://{artifacts}/{prefix}state.json"
    return {
        "name": f"drift-{endpoint}-{start.astimezone(UTC):%Y%m%dT%H%M}"[:64],
        "virtual_cluster_id": settings.require("emr_virtual_cluster_id"),
        "execution_role_arn": settings.require("emr_job_role_arn"),
        "release_label": settings.emr_release_label,
        "client_request_token": str(uuid.uuid4()),
        "job_driver": {
            "sparkSubmitJobDriver": {
                "entryPoint": script_uri,
                "entryPointArguments": ["--plan", plan_uri, "--output", state_uri, *folders],
                "sparkSubmitParameters": SPARK_DRIFT_PARAMETERS,
            }
        },
        # the state goes to the artifacts bucket, encrypted with the ML key like the reports beside it
        "configuration_overrides": configuration_overrides(
            settings, f"drift-{endpoint}"[:512], settings.ml_key_arn
        ),
        "state_uri": state_uri,
    }


def spark_drift_monitor(
    clients: AwsClients,
    endpoint: str,
    evaluation_prefix: str,
    start: datetime,
    end: datetime,
    state_uri: str,
    output_dir: Path,
    config: DriftConfig | None = None,
) -> dict[str, Any]:
    """After the EMR job: its state -> the drift report, written and uploaded exactly as the in-process
    monitor writes it (``monitor_step``'s result: ``window``, ``report``, ``s3_keys``)."""
    from pipelines.aws import split_s3_uri
    from pipelines.monitoring.capture import CaptureStats
    from pipelines.monitoring.monitor import finish_monitor, window_context

    config = config or DriftConfig()
    settings = clients.settings
    reference = _reference(clients, evaluation_prefix, output_dir / "baseline")
    bucket, key = split_s3_uri(state_uri)
    state = load_state(clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8"))
    capture = CaptureStats()
    capture.records = int(state["records"])
    capture.rows = int(state["rows"])
    if state.get("malformed_records"):
        capture.malformed["malformed_csv"] = int(state["malformed_records"])
    if state.get("unsupported_records"):
        capture.malformed["unsupported_payload"] = int(state["unsupported_records"])
    extra = {"capture": capture.as_dict(), "state_uri": state_uri}
    context = window_context(endpoint, settings.environment, None, start, end, extra)
    report = report_from_state(reference, state, config, context)
    result = finish_monitor(
        s3=clients.s3,
        report=report,
        reference=reference,
        capture=capture,
        endpoint_name=endpoint,
        start=start,
        end=end,
        output_dir=output_dir / "report",
        config=config,
        environment=settings.environment,
        artifacts_bucket=settings.require("artifacts_bucket"),
        kms_key_id=settings.ml_key_arn,
    )
    return {"window": result.window, "report": report.to_dict(), "s3_keys": result.s3_keys}
