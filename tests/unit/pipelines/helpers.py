"""Helpers shared by the pipeline tests: land, validate and featurize a synthetic batch in moto."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from botocore.awsrequest import AWSResponse

from pipelines.contract import DatasetContract, resolve_contract_path
from pipelines.features.local import FeatureResult, run_features
from pipelines.ingest import ingest_bytes
from pipelines.synthetic import generate
from pipelines.validate import validate_batch
from tests.unit.pipelines.conftest import Platform

DAY = "2026-11-24"


def prepare_features(
    platform: Platform, contract: DatasetContract, rows: int = 2000, seed: int = 1, day: str = DAY
) -> FeatureResult:
    """Generate, ingest, validate and featurize (pandas engine) one batch; return the features."""
    data = generate(contract.name, rows, seed).to_csv(index=False).encode()
    batch = ingest_bytes(platform.clients, contract.name, data, f"{contract.name}.csv", day)
    validate_batch(platform.clients, contract, batch)
    return run_features(platform.clients, contract, day, engine="pandas")


def contract_path(contract: DatasetContract) -> Path:
    """The shipped contract file of ``contract``."""
    return resolve_contract_path(contract.name)


def inject_errors(client: Any, operation: str, status: int, code: str, times: int) -> list[int]:
    """Answer the first ``times`` calls of ``operation`` with an error before moto sees them."""
    calls: list[int] = []

    def handler(request: Any, **_: Any) -> AWSResponse | None:
        calls.append(1)
        if len(calls) <= times:
            body = f"<Error><Code>{code}</Code><Message>slow down</Message></Error>".encode()
            if "json" in str(request.headers.get("Content-Type", "")):
                body = json.dumps({"__type": code, "message": "Rate exceeded"}).encode()
            return AWSResponse(request.url, status, {}, _Raw(body))
        return None

    client.meta.events.register_first(
        f"before-send.{client.meta.service_model.service_id.hyphenize()}.{operation}", handler
    )
    return calls


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body
