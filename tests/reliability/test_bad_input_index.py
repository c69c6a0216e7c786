"""Where the bad-input cases of the reliability suite live (they are not duplicated here).

Each entry names a test elsewhere in the repository that feeds the platform bad input and asserts a
4xx or a clear error with nothing lost or corrupted. This test fails when one of them is renamed or
removed, so the index cannot silently go stale.
"""

from __future__ import annotations

import importlib

import pytest

BAD_INPUT_CASES = {
    "dataset validation (schema, types, ranges, nulls, uniqueness), with a readable report": (
        "tests.unit.pipelines.test_validate",
        "test_bad_batch_is_rejected_with_its_own_message",
    ),
    "malformed inference payloads, fuzzed with hypothesis: 4xx with a reason, never 5xx": (
        "tests.unit.serving.test_http_contract",
        "test_fuzz_malformed_bodies_never_5xx",
    ),
    "malformed inference requests at the HTTP layer": (
        "tests.unit.serving.test_http_layer",
        "test_malformed_or_upgrade_request_is_400_once_and_closes",
    ),
    "malformed data-capture lines for the monitor, each with its reason": (
        "tests.unit.monitoring.test_capture",
        "test_malformed_lines_name_the_reason",
    ),
    "invalid stack config values": (
        "tests.unit.stacks.test_synth_cli",
        "test_invalid_stack_config_is_a_clear_error",
    ),
    "an unknown model package ARN": (
        "tests.unit.pipelines.test_fetch_model",
        "test_an_empty_group_and_an_unknown_package_are_explained",
    ),
    "a tampered model artifact (hash mismatch) refused at load": (
        "tests.unit.pipelines.test_train",
        "test_tampered_archive_is_refused",
    ),
    "a tampered model artifact keeps the endpoint unhealthy": (
        "tests.unit.serving.test_http_contract",
        "test_tampered_model_keeps_endpoint_unhealthy",
    ),
    "unsafe model archive entries refused before anything is written": (
        "tests.unit.pipelines.test_fetch_model",
        "test_unsafe_entries_are_refused_before_anything_is_written",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT_CASES))
def test_the_bad_input_case_is_covered(case: str) -> None:
    module_name, test_name = BAD_INPUT_CASES[case]
    module = importlib.import_module(module_name)
    assert callable(getattr(module, test_name, None)), f"{case}: {module_name}.{test_name} is gone"
