"""Shared fixtures. The recording Pulumi mock lives in stacks/synth.py; this wraps it for pytest."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from stacks.synth import SynthResult, run_program, synthesize

ENVIRONMENTS = ("dev", "staging", "prod")

# Minimal valid config for component tests that build a program by hand.
BASE_CONFIG: dict[str, str] = {
    "aws:region": "us-east-1",
    "mlops-platform:environment": "dev",
    "mlops-platform:owner": "team-test",
    "mlops-platform:costCenter": "cc-test",
}


@pytest.fixture
def pulumi_mock() -> Callable[..., SynthResult]:
    """Run a Pulumi program under the shared recording mock and return what it registered.

    Usage::

        def test_x(pulumi_mock):
            result = pulumi_mock(lambda: {"out": MyComponent("x", MyArgs(...)).some_output})
            bucket = result.of_type("aws:s3/bucket:Bucket")[0]
    """

    def run(
        program: Callable[[], Mapping[str, Any] | None],
        config: Mapping[str, str] | None = None,
        stack: str = "test",
    ) -> SynthResult:
        return run_program(program, {**BASE_CONFIG, **(config or {})}, stack=stack)

    return run


_SYNTH_CACHE: dict[str, SynthResult] = {}


@pytest.fixture(scope="session")
def synth_stack() -> Callable[[str], SynthResult]:
    """Synthesize a real stack (dev/staging/prod) once per test session and share the result."""

    def get(stack: str) -> SynthResult:
        if stack not in _SYNTH_CACHE:
            _SYNTH_CACHE[stack] = synthesize(stack)
        return _SYNTH_CACHE[stack]

    return get


@pytest.fixture(params=ENVIRONMENTS)
def each_stack(request: pytest.FixtureRequest, synth_stack: Callable[[str], SynthResult]) -> SynthResult:
    """Parametrizes a test over the three environments' synthesized stacks."""
    return synth_stack(request.param)
