"""The rehearsal's ``batch`` stage: a batch transform job over the served package agrees with the endpoint.

After ``serve``, the held-out rows are scored twice: by a SageMaker batch transform job over the
package the endpoint serves (``pipelines.batch.run_transform`` as the Airflow role, run by
:class:`rehearsal.transform.SageMakerTransform` with the package's real inference container), and by
InvokeEndpoint on the endpoint. The claim: every row gets the same prediction from both paths, and
the output is partition ``run=<id>`` of the model's Glue batch predictions table.
"""

from __future__ import annotations

import time
from typing import Any

from rehearsal.run import Evidence, RunContext, Stage

BATCH_ROWS = 300
"""Held-out rows scored by the stage."""


def _endpoint_answers(ctx: RunContext, endpoint: str, rows: list[str]) -> list[str]:
    """The endpoint's CSV answer line per row (the same ``Accept`` the transform job uses)."""
    assert ctx.emulator is not None
    runtime = ctx.emulator.client("sagemaker-runtime")
    answers: list[str] = []
    for start in range(0, len(rows), 50):
        response = runtime.invoke_endpoint(
            EndpointName=endpoint,
            ContentType="text/csv",
            Accept="text/csv",
            Body="\n".join(rows[start : start + 50]).encode(),
        )
        answers += [line for line in response["Body"].read().decode().splitlines() if line.strip()]
    return answers


def batch(ctx: RunContext) -> Evidence:
    """Score held-out rows with a transform job over the served package and with the endpoint."""
    from pipelines.batch import read_output, run_transform, stage_input
    from rehearsal.catalog import contract_of, rehearsed_model
    from rehearsal.lifecycle import held_out_rows
    from rehearsal.stages import _clients

    clients = _clients(ctx)
    contract = contract_of(ctx)
    target = clients.settings.model_target(contract.name, rehearsed_model(ctx).model)
    package = str(ctx.values["packages"][-1])
    endpoint = str(ctx.values["endpoint"])
    rows = held_out_rows(ctx, BATCH_ROWS)
    run_id = f"rehearsal-{ctx.options.seed}"
    started = time.monotonic()
    input_uri = stage_input(clients, target, run_id, rows)
    result = run_transform(clients, contract, target, package, input_uri, run_id, poll_s=0.25, timeout_s=300)
    transform_s = time.monotonic() - started
    width = len(contract.feature_names)
    joined = read_output(clients, result.output_uri)
    batch_predictions = [",".join(line.split(",")[width:]) for line in joined]
    inputs_kept = sum(
        ",".join(line.split(",")[:width]) == row for line, row in zip(joined, rows, strict=False)
    )
    endpoint_predictions = _endpoint_answers(ctx, endpoint, rows)
    agree = sum(a == b for a, b in zip(batch_predictions, endpoint_predictions, strict=False))
    disagreements = [
        {"row": rows[i], "batch": a, "endpoint": b}
        for i, (a, b) in enumerate(zip(batch_predictions, endpoint_predictions, strict=False))
        if a != b
    ][:3]
    return {
        "package_arn": package,
        "endpoint": endpoint,
        "job": result.job_name,
        "model": result.model_name,
        "rows_sent": len(rows),
        "rows_scored": result.rows,
        "inputs_joined": inputs_kept,
        "endpoint_rows": len(endpoint_predictions),
        "agreeing_rows": agree,
        "agreement": round(agree / len(rows), 6) if rows else 0.0,
        "disagreements": disagreements,
        "output_uri": result.output_uri,
        "table": result.table,
        "partition": result.partition,
        "transform_s": round(transform_s, 2),
        "seconds": round(time.monotonic() - started, 2),
    }


def check_batch(evidence: Evidence, ctx: RunContext) -> str | None:
    """The job Completed, scored every row joined with its input, agreed with the endpoint on every
    row, and its output is a partition of the Glue table."""
    assert ctx.emulator is not None
    described = ctx.emulator.client("sagemaker").describe_transform_job(TransformJobName=evidence["job"])
    if described["TransformJobStatus"] != "Completed":
        return f"transform job {evidence['job']} is {described['TransformJobStatus']}: {described.get('FailureReason')}"
    if evidence["rows_scored"] != evidence["rows_sent"] or evidence["inputs_joined"] != evidence["rows_sent"]:
        return (
            f"{evidence['rows_sent']} rows sent, {evidence['rows_scored']} scored, "
            f"{evidence['inputs_joined']} joined with their input"
        )
    if evidence["agreeing_rows"] != evidence["rows_sent"]:
        return f"batch and endpoint predictions differ on {evidence['rows_sent'] - evidence['agreeing_rows']} rows: {evidence['disagreements']}"
    if not evidence["table"]:
        return "the output was not registered in Glue (no glueDatabaseName in the stack outputs)"
    glue: Any = ctx.emulator.client("glue")
    database = ctx.deployment.outputs["glueDatabaseName"] if ctx.deployment else None
    run = str(evidence["partition"]).removeprefix("run=")
    partition = glue.get_partition(DatabaseName=database, TableName=evidence["table"], PartitionValues=[run])
    if partition["Partition"]["StorageDescriptor"]["Location"] != evidence["output_uri"]:
        return f"partition {evidence['partition']} points at {partition['Partition']['StorageDescriptor']['Location']}"
    return None


def headline_batch(evidence: Evidence) -> str:
    """``300 rows by transform job ...: 100% agree with the endpoint (4.2 s)``."""
    return (
        f"{evidence['rows_scored']} rows by batch transform, {evidence['agreement']:.0%} agree with the endpoint; "
        f"{evidence['table']} {evidence['partition']} ({evidence['transform_s']} s)"
    )


def batch_stage() -> Stage:
    """The ``batch`` stage (after ``serve``)."""
    return Stage(
        "batch",
        batch,
        "a batch transform job over the served package scores held-out rows exactly as the endpoint does",
        check_batch,
        headline_batch,
    )
