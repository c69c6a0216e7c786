"""Drift engine: exact flags on a known shift, none without, small samples, novelty, streaming bounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pipelines.monitoring.capture import PREDICTION_COLUMN
from pipelines.monitoring.drift import (
    DriftAccumulator,
    DriftConfig,
    DriftReport,
    Reference,
    compute_drift,
    jensen_shannon,
    load_reference,
    psi,
)
from pipelines.serving.artifact import FeatureSpec

NUMERIC = [f"num_{i}" for i in range(6)]
CATEGORICAL = [f"cat_{i}" for i in range(4)]
FEATURES = tuple(
    [FeatureSpec(n, "numeric") for n in NUMERIC] + [FeatureSpec(n, "categorical") for n in CATEGORICAL]
)
LEVELS = ["a", "b", "c", "d", "e"]
BASE_P = [0.35, 0.25, 0.2, 0.15, 0.05]


def make_frame(rows: int, seed: int, *, shifted: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for i, name in enumerate(NUMERIC):
        data[name] = rng.normal(10 * i, 1 + i, rows)
    for name in CATEGORICAL:
        data[name] = rng.choice(LEVELS, rows, p=BASE_P)
    frame = pd.DataFrame(data)
    if shifted:
        frame["num_1"] = frame["num_1"] + 0.6 * 2  # mean shift of 0.6 std
        frame["num_4"] = 40 + (frame["num_4"] - 40) * 1.8  # variance change
        frame["cat_2"] = rng.choice(LEVELS, rows, p=[0.1, 0.15, 0.2, 0.25, 0.3])
    return frame


@pytest.fixture(scope="module")
def reference() -> Reference:
    return Reference.from_frame(make_frame(20_000, seed=1), FEATURES)


def test_shifted_dataset_flags_exactly_the_shifted_features(reference: Reference) -> None:
    report = compute_drift(reference, [make_frame(20_000, seed=2, shifted=True)])
    assert sorted(report.drifted_features) == ["cat_2", "num_1", "num_4"]
    assert report.drift_share == pytest.approx(0.3)
    assert report.dataset_drift is False  # 3 of 10 < 0.5
    # large reference: Evidently's choice is Wasserstein (numeric) and Jensen-Shannon (categorical)
    assert {f.method for f in report.features if f.kind == "numeric"} == {"wasserstein"}
    assert {f.method for f in report.features if f.kind == "categorical"} == {"jensenshannon"}


def test_unshifted_dataset_flags_nothing(reference: Reference) -> None:
    report = compute_drift(reference, [make_frame(20_000, seed=3)])
    assert report.drifted_features == []
    assert report.status == "ok"
    assert max(f.statistic or 0 for f in report.features) < 0.05


def test_dataset_drift_when_share_reaches_half(reference: Reference) -> None:
    current = make_frame(5_000, seed=4)
    for name in ["num_0", "num_2", "num_3", "cat_0", "cat_1"]:
        current[name] = make_frame(5_000, seed=5, shifted=True)["num_1"] if name.startswith("num") else "e"
    report = compute_drift(reference, [current])
    assert len(report.drifted_features) == 5
    assert report.dataset_drift is True
    assert report.status == "drift"


def test_statistics_match_evidently_formulas(reference: Reference) -> None:
    current = make_frame(3_000, seed=6, shifted=True)
    report = compute_drift(reference, [current])
    ref = reference.numeric["num_1"]
    expected_w = stats.wasserstein_distance(ref, current["num_1"]) / max(np.std(ref), 0.001)
    assert report.feature("num_1").statistic == pytest.approx(expected_w, rel=1e-12)
    with_ks = compute_drift(reference, [current], DriftConfig(numeric_method="ks"))
    assert with_ks.feature("num_1").statistic == pytest.approx(stats.ks_2samp(ref, current["num_1"]).pvalue)
    ref_counts = pd.Series(make_frame(20_000, seed=1)["cat_2"]).value_counts().reindex(LEVELS).to_numpy()
    cur_counts = current["cat_2"].value_counts().reindex(LEVELS).to_numpy()
    from scipy.spatial import distance

    assert report.feature("cat_2").statistic == pytest.approx(
        distance.jensenshannon(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()), rel=1e-12
    )
    chi = compute_drift(reference, [current], DriftConfig(categorical_method="chisquare"))
    expected_counts = ref_counts * (cur_counts.sum() / ref_counts.sum())
    assert chi.feature("cat_2").statistic == pytest.approx(
        stats.chisquare(cur_counts, expected_counts).pvalue
    )


def test_small_reference_uses_ks_and_chisquare() -> None:
    # fixed seeds: at p < 0.05 about one unshifted feature in twenty is flagged by chance
    small = Reference.from_frame(make_frame(800, seed=1), FEATURES)
    shifted = compute_drift(small, [make_frame(400, seed=0, shifted=True)])
    assert {f.method for f in shifted.features if f.kind == "numeric"} == {"ks"}
    assert {f.method for f in shifted.features if f.kind == "categorical"} == {"chisquare"}
    assert sorted(shifted.drifted_features) == ["cat_2", "num_1", "num_4"]
    unshifted = compute_drift(small, [make_frame(400, seed=100)])
    assert unshifted.drifted_features == []


def test_binary_categorical_uses_z_test_when_small() -> None:
    features = (FeatureSpec("flag", "categorical"),)
    rng = np.random.default_rng(2)
    ref = Reference.from_frame(pd.DataFrame({"flag": rng.choice(["y", "n"], 500, p=[0.3, 0.7])}), features)
    same = compute_drift(ref, [{"flag": rng.choice(["y", "n"], 300, p=[0.3, 0.7])}])
    moved = compute_drift(ref, [{"flag": rng.choice(["y", "n"], 300, p=[0.6, 0.4])}])
    assert same.feature("flag").method == "z"
    assert not same.feature("flag").drifted
    assert moved.feature("flag").drifted


def test_low_cardinality_numeric_is_treated_as_categorical() -> None:
    features = (FeatureSpec("calls", "numeric"),)
    rng = np.random.default_rng(0)
    ref = Reference.from_frame(pd.DataFrame({"calls": rng.integers(0, 4, 5000).astype(float)}), features)
    report = compute_drift(ref, [{"calls": rng.integers(0, 4, 2000).astype(float)}])
    assert report.feature("calls").method == "jensenshannon"  # Evidently: numeric with <= 5 values, large ref


def test_too_few_rows_is_insufficient_not_drift(reference: Reference) -> None:
    report = compute_drift(reference, [make_frame(10, seed=10, shifted=True)])
    assert report.status == "insufficient_data"
    assert report.dataset_drift is False
    assert {f.status for f in report.features} == {"insufficient_data"}
    lowered = compute_drift(reference, [make_frame(10, seed=10)], DriftConfig(min_current_rows=5))
    assert lowered.status != "insufficient_data"


def test_categorical_novelty(reference: Reference) -> None:
    current = make_frame(4_000, seed=11)
    current.loc[current.index[:400], "cat_3"] = "brand-new"
    current.loc[current.index[400:420], "cat_3"] = "another"
    report = compute_drift(reference, [current])
    cat = report.feature("cat_3")
    assert cat.new_categories == ["another", "brand-new"]
    assert cat.measures["new_category_rate"] == pytest.approx(420 / 4000)
    assert cat.drifted  # 10% mass on unseen values moves Jensen-Shannon past 0.1
    # small-sample mode: chi-square on an unseen category gives p = 0
    small = Reference.from_frame(make_frame(500, seed=12), FEATURES)
    tiny = make_frame(100, seed=13)
    tiny.loc[tiny.index[:3], "cat_0"] = "zzz"
    assert compute_drift(small, [tiny]).feature("cat_0").statistic == 0.0


def test_missing_values_are_counted_and_dropped(reference: Reference) -> None:
    current = make_frame(2_000, seed=14)
    current.loc[current.index[:500], "num_0"] = np.nan
    current.loc[current.index[:200], "cat_0"] = None
    report = compute_drift(reference, [current])
    assert report.feature("num_0").current_missing_rate == pytest.approx(0.25)
    assert report.feature("cat_0").current_missing_rate == pytest.approx(0.1)
    assert report.missing_value_rate == pytest.approx(700 / (2_000 * 10))
    assert not report.feature("num_0").drifted


def test_streaming_in_batches_equals_one_shot(reference: Reference) -> None:
    current = make_frame(9_000, seed=15, shifted=True)
    one = compute_drift(reference, [current])
    many = compute_drift(reference, [current.iloc[i : i + 1000] for i in range(0, 9000, 1000)])
    for a, b in zip(one.features, many.features, strict=True):
        assert a.statistic == pytest.approx(b.statistic, rel=1e-12)
        assert a.drifted == b.drifted


def test_memory_is_bounded_by_the_reservoir(reference: Reference) -> None:
    config = DriftConfig(reservoir_size=5_000)
    accumulator = DriftAccumulator(reference, config)
    for seed in range(20):
        accumulator.update(make_frame(5_000, seed=100 + seed, shifted=True))
    column = accumulator._numeric["num_1"]  # the sample never grows past its size
    assert column.reservoir.values.size == 5_000
    assert column.reservoir.seen == 100_000
    report = accumulator.result()
    assert report.current_rows == 100_000
    assert sorted(report.drifted_features) == ["cat_2", "num_1", "num_4"]
    # the reservoir estimate stays close to the exact statistic over all 100k rows
    exact = pd.concat([make_frame(5_000, seed=100 + s, shifted=True) for s in range(20)])["num_1"]
    ref = reference.numeric["num_1"]
    expected = stats.wasserstein_distance(ref, exact) / np.std(ref)
    assert report.feature("num_1").statistic == pytest.approx(expected, abs=0.03)
    # the reservoir is a uniform sample: its mean matches the stream's
    assert column.reservoir.sample().mean() == pytest.approx(exact.mean(), abs=0.1)


def test_prediction_drift_reported_separately() -> None:
    frame = make_frame(5_000, seed=16)
    frame[PREDICTION_COLUMN] = np.random.default_rng(0).beta(2, 5, 5_000)
    ref = Reference.from_frame(frame, FEATURES)
    current = make_frame(3_000, seed=17)
    current[PREDICTION_COLUMN] = np.random.default_rng(1).beta(5, 2, 3_000)
    report = compute_drift(ref, [current])
    assert report.prediction is not None
    assert report.prediction.drifted
    assert PREDICTION_COLUMN not in report.drifted_features  # prediction is not counted in the share


def test_psi_and_js_helpers() -> None:
    counts = np.array([50.0, 30.0, 20.0])
    assert psi(counts, counts) == pytest.approx(0.0)
    assert jensen_shannon(counts, counts) == pytest.approx(0.0)
    assert psi(counts, np.array([20.0, 30.0, 50.0])) > 0.1


def test_config_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="unknown drift config key"):
        DriftConfig.from_mapping({"ks_treshold": 0.1})
    assert DriftConfig.from_mapping({"drift_share": 0.3}).drift_share == 0.3
    with pytest.raises(ValueError, match="drift_share"):
        DriftConfig(drift_share=0)


def test_report_round_trips_through_json(reference: Reference) -> None:
    import json

    report = compute_drift(reference, [make_frame(2_000, seed=18, shifted=True)])
    again = DriftReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again.drifted_features == report.drifted_features
    assert again.feature("num_1").statistic == report.feature("num_1").statistic


def test_load_reference_from_artifact(model_dir: Path) -> None:
    ref = load_reference(model_dir)
    assert [f.name for f in ref.features][:2] == ["tenure_months", "monthly_charges"]
    assert PREDICTION_COLUMN in ref.numeric
    assert ref.rows == 3000
