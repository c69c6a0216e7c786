"""Typed layer records: frozen, wired by argument, and every output declared once."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from stacks.outputs import OUTPUT_KEYS, STACK_OUTPUTS
from stacks.synth import run_program
from tests.conftest import BASE_CONFIG


def test_outputs_are_declared_once_with_a_description() -> None:
    keys = [o.key for o in STACK_OUTPUTS]
    assert len(keys) == len(set(keys))
    assert list(OUTPUT_KEYS) == keys
    assert all(o.description.strip() for o in STACK_OUTPUTS)


def test_layers_return_frozen_records_and_studio_is_optional() -> None:
    from stacks.config import load_config
    from stacks.platform import Platform, build

    built: list[Platform] = []

    def program() -> dict[str, Any]:
        platform = build(load_config())
        built.append(platform)
        return platform.outputs

    config = {**BASE_CONFIG, "mlops-platform:spark": json.dumps({"studio": False})}
    result = run_program(program, config, stack="dev")
    [platform] = built
    for record in (platform, platform.foundation, platform.compute, platform.ml):
        assert dataclasses.is_dataclass(record)
        with pytest.raises(dataclasses.FrozenInstanceError):
            record.config = None  # type: ignore[misc,union-attr]
    assert platform.compute.studio is None
    assert result.of_type("mlops:studio:EmrStudio") == []
    assert result.of_type("aws:emr/studio:Studio") == []
    assert result.outputs["emrStudioId"] is None
    assert result.outputs["emrStudioUrl"] is None
    assert set(result.outputs) == set(OUTPUT_KEYS)
