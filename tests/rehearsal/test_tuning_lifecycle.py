"""``mlops rehearse --tune``: the train stage trains the rehearsed model through a tuning job whose best
trial is registered (the rehearsal's stages up to train, IAM enforced)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from rehearsal import lifecycle
from rehearsal.run import RehearsalOptions, RunContext, Stage
from rehearsal.tuning_stage import REHEARSAL_PARALLEL, REHEARSAL_TRIALS

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1800)]  # deploy + a tuned train


def _stages(options: RehearsalOptions) -> dict[str, Stage]:
    return {s.name: s for s in lifecycle.lifecycle_stages(options)}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunContext, dict, float]]:
    out = tmp_path_factory.mktemp("tune-lifecycle")
    options = RehearsalOptions(out=out, quick=True, tune=True)
    context = RunContext(options=options, out=out)
    stages = _stages(options)
    try:
        for name in ("emulator", "deploy", "data", "ingest", "validate"):
            evidence = stages[name].run(context)
            assert stages[name].check(evidence, context) is None, name
        started = time.monotonic()
        evidence = stages["train"].run(context)
        took = time.monotonic() - started
        yield context, {"evidence": evidence, "problem": stages["train"].check(evidence, context)}, took
    finally:
        assert not context.close()


def test_the_best_trial_of_a_bounded_tuning_job_is_registered(
    trained: tuple[RunContext, dict, float],
) -> None:
    _ctx, result, took = trained
    evidence = result["evidence"]
    assert result["problem"] is None, result["problem"]
    tuning = evidence["tuning"]
    assert tuning["status"] == "Completed"
    assert (tuning["max_jobs"], tuning["max_parallel_jobs"]) == (REHEARSAL_TRIALS, REHEARSAL_PARALLEL)
    assert len(tuning["trials"]) == REHEARSAL_TRIALS
    assert tuning["best_training_job"] == evidence["training_job"]  # the registered model is the best
    scored = [t["objective"] for t in tuning["trials"] if t["objective"] is not None]
    assert tuning["best_objective"] == max(scored)  # Maximize validation:auc
    assert evidence["tasks"]["tune"] == "success"
    assert "train" not in evidence["tasks"]
    assert lifecycle.headline_train(evidence).startswith(
        f"tuned {REHEARSAL_TRIALS} trials (best validation:auc "
    )
    print(f"train stage with tuning: {took:.1f} s")
