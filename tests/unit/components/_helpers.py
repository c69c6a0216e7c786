"""Small assertions shared by the component tests."""

from __future__ import annotations

import json
from typing import Any

from stacks.synth import RecordedResource, SynthResult


def policy(resource: RecordedResource, key: str = "policy") -> dict[str, Any]:
    """Parse a resource's JSON policy input (fails the test if it is not valid JSON)."""
    raw = resource.inputs[key]
    assert isinstance(raw, str), f"{resource.name}.{key} is not a JSON string: {raw!r}"
    return json.loads(raw)


def statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Statements of a policy document as a list."""
    stmts = doc["Statement"]
    return stmts if isinstance(stmts, list) else [stmts]


def as_list(value: Any) -> list[Any]:
    """Wrap a scalar in a list (IAM allows both forms)."""
    return value if isinstance(value, list) else [value]


def buckets_by_role(result: SynthResult) -> dict[str, RecordedResource]:
    """The stack's buckets keyed by their ``bucket-role`` tag."""
    return {b.inputs["tags"]["bucket-role"]: b for b in result.of_type("aws:s3/bucket:Bucket")}


def for_bucket(result: SynthResult, token: str, bucket: RecordedResource) -> RecordedResource:
    """The one resource of ``token`` whose ``bucket`` input is this bucket."""
    found = [r for r in result.of_type(token) if r.inputs.get("bucket") == bucket.outputs["bucket"]]
    assert len(found) == 1, f"expected one {token} for {bucket.name}, found {len(found)}"
    return found[0]
