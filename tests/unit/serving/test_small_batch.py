"""The fused linear path's small-batch (pure Python) evaluation against its NumPy evaluation and
scikit-learn: same values, same errors, and a broken small-batch path is caught at load."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, OneHotEncoder, StandardScaler

from pipelines.serving.artifact import FeatureSpec
from pipelines.serving.fastpath import (
    FastModel,
    _FusedLinear,
    build_verified,
    compile_model,
    small_batches,
    verification_rows,
)
from pipelines.serving.inference import model_fn
from pipelines.transforms import as_text
from tests.unit.serving.model_fixture import (
    CATEGORICAL,
    FEATURES,
    NUMERIC,
    PLANS,
    REGIONS,
    build_pipeline,
    make_training_frame,
)

SPECS = tuple(
    [FeatureSpec(n, "numeric") for n in NUMERIC] + [FeatureSpec(n, "categorical") for n in CATEGORICAL]
)
INT_CODES = {
    "plan": {p: i for i, p in enumerate(PLANS)},
    "region": {r: 10 * i for i, r in enumerate(REGIONS)},
}
SMALL = 128 // (len(FEATURES) + 4)  # the largest batch the small-batch path serves (SMALL_BATCH_VALUES)
BATCH_SIZES = [*range(1, 18)]  # up to one past verify()'s largest small batch


@dataclass(frozen=True)
class Case:
    """A fitted pipeline and which unusual inputs scikit-learn accepts for it."""

    name: str
    numeric_steps: tuple[Any, ...] | None = None  # None: SimpleImputer + StandardScaler
    categorical_steps: tuple[Any, ...] | None = None  # None: most-frequent imputer + OneHotEncoder(ignore)
    estimator: Callable[[], Any] = lambda: LogisticRegression(max_iter=300)
    int_categories: bool = False
    regression: bool = False

    @property
    def numeric_imputer(self) -> bool:
        """NaN numbers are imputed (otherwise scikit-learn rejects them)."""
        return self.numeric_steps is None or isinstance(self.numeric_steps[0], SimpleImputer)

    @property
    def categorical_imputer(self) -> bool:
        """Missing categories are imputed."""
        return self.categorical_steps is None or any(
            isinstance(s, SimpleImputer) for s in self.categorical_steps
        )

    @property
    def text(self) -> bool:
        """Categorical values pass through ``as_text`` first (as in pipeline-trained models)."""
        return any(isinstance(s, FunctionTransformer) for s in self.categorical_steps or ())

    @property
    def strict(self) -> bool:
        """The encoder rejects unknown categories."""
        steps = self.categorical_steps or ()
        return any(getattr(s, "handle_unknown", None) == "error" for s in steps)


CASES = [
    Case("fixture-model"),  # replaced by model_fixture.build_pipeline below
    Case("logistic-most-frequent"),
    Case("logistic-minmax", numeric_steps=(SimpleImputer(strategy="median"), MinMaxScaler())),
    Case(
        "logistic-strict",
        categorical_steps=(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="error")),
    ),
    Case(
        "logistic-no-imputers",
        numeric_steps=(StandardScaler(),),
        categorical_steps=(OneHotEncoder(handle_unknown="ignore"),),
    ),
    Case(
        "logistic-int-categories",
        categorical_steps=(OneHotEncoder(handle_unknown="ignore"),),
        int_categories=True,
    ),
    Case(
        "logistic-int-categories-strict",
        numeric_steps=("passthrough",),
        categorical_steps=(OneHotEncoder(handle_unknown="error"),),
        int_categories=True,
    ),
    Case(  # the chain pipelines.train.build_pipeline fits for categorical features
        "logistic-as-text-missing-category",
        categorical_steps=(
            FunctionTransformer(as_text, feature_names_out="one-to-one"),
            SimpleImputer(missing_values=None, strategy="constant", fill_value="__missing__"),
            OneHotEncoder(handle_unknown="ignore"),
        ),
    ),
    Case("linear-regression", estimator=LinearRegression, regression=True),
    Case(
        "ridge-minmax",
        numeric_steps=(SimpleImputer(strategy="median"), MinMaxScaler()),
        estimator=Ridge,
        regression=True,
    ),
    Case(
        "ridge-strict-no-imputers",
        numeric_steps=(StandardScaler(),),
        categorical_steps=(OneHotEncoder(handle_unknown="error"),),
        estimator=Ridge,
        regression=True,
    ),
]
IDS = [case.name for case in CASES]

# rows with large magnitudes overflow NumPy's exp in the logistic (saturating at 0/1, as intended)
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in exp:RuntimeWarning")


def _training_frame(int_categories: bool) -> pd.DataFrame:
    frame = make_training_frame(800, seed=3)
    if int_categories:
        for name, codes in INT_CODES.items():
            frame[name] = frame[name].map(codes).astype(object)
    return frame


@cache
def _fitted(name: str) -> Pipeline:
    case = next(c for c in CASES if c.name == name)
    frame = _training_frame(case.int_categories)
    if name == "fixture-model":
        return build_pipeline().fit(frame[FEATURES], frame["churned"])
    numeric = case.numeric_steps or (SimpleImputer(), StandardScaler())
    categorical = case.categorical_steps or (
        SimpleImputer(strategy="most_frequent"),
        OneHotEncoder(handle_unknown="ignore"),
    )
    pre = ColumnTransformer(
        [("num", make_pipeline(*numeric), NUMERIC), ("cat", make_pipeline(*categorical), CATEGORICAL)]
    )
    target = frame["monthly_charges"] if case.regression else frame["churned"]
    return Pipeline([("pre", pre), ("model", case.estimator())]).fit(frame[FEATURES], target)


def _fused(fast: FastModel) -> _FusedLinear:
    assert isinstance(fast.fused, _FusedLinear), fast.kind
    return fast.fused


def _known(case: Case, name: str) -> list[Any]:
    if case.int_categories:
        return list(INT_CODES[name].values())
    return PLANS if name == "plan" else REGIONS


def _legal_rows(case: Case, rows: int, seed: int) -> dict[str, np.ndarray]:
    """Rows scikit-learn accepts for ``case``: missing values only where imputed, unknown categories
    only for lenient encoders, large and tiny magnitudes, categories spelled as equal numbers."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for name in NUMERIC:
        values = rng.normal(20.0, 15.0, rows) * rng.choice([1.0, 1.0, 1e-3, 1e3, 1e5], rows)
        values[rng.random(rows) < 0.03] = 0.0
        if case.numeric_imputer:
            values[rng.random(rows) < 0.1] = np.nan
        out[name] = values
    for name in CATEGORICAL:
        pool: list[Any] = list(_known(case, name))
        if case.int_categories:
            pool += [float(pool[1])]  # 1.0 is the category 1 (equal, same hash)
            if not case.strict:
                pool += [True]  # so is True (a strict scikit-learn encoder calls it unknown)
        if not case.strict:
            pool += [99, 2.5, "zzz"] if case.int_categories else ["zzz", "Basic", " north"]
        if case.text:
            pool += ["", "nan", "<NA>", np.nan, 3.0, 7, False]  # as_text: missing texts, numbers, booleans
        if case.categorical_imputer or not case.strict:
            pool += [None]
        column = np.empty(rows, dtype=object)
        for index, choice in enumerate(rng.integers(0, len(pool), rows)):
            column[index] = pool[choice]
        out[name] = column
    return out


def _sklearn(pipeline: Pipeline, columns: dict[str, np.ndarray], regression: bool) -> np.ndarray:
    frame = pd.DataFrame(columns)
    return np.asarray(pipeline.predict(frame) if regression else pipeline.predict_proba(frame))


def _slice(columns: dict[str, np.ndarray], start: int, stop: int) -> dict[str, np.ndarray]:
    return {name: values[start:stop] for name, values in columns.items()}


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_small_batches_match_numpy_path_and_sklearn(case: Case) -> None:
    pipeline = _fitted(case.name)
    fast = compile_model(pipeline, SPECS)
    fused = _fused(fast)
    columns = _legal_rows(case, 300, seed=len(case.name))
    # scikit-learn on the whole batch (it treats a column of only None differently from a column with
    # some None, so tiny batches are compared with rows of this large one)
    expected = _sklearn(pipeline, columns, case.regression)
    np.testing.assert_allclose(fast.predict(columns), expected, rtol=1e-9, atol=1e-9)
    rng = np.random.default_rng(1)
    start = 0
    while start < len(expected):
        size = int(rng.choice(BATCH_SIZES)) if start >= 60 else 1  # the first 60 rows one at a time
        stop = min(start + size, len(expected))
        part = _slice(columns, start, stop)
        small = fused.small_batch(part, stop - start)
        vector = fused.vector(part, stop - start)
        assert small.shape == vector.shape == expected[start:stop].shape
        np.testing.assert_allclose(small, vector, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(fast.predict(part), expected[start:stop], rtol=1e-9, atol=1e-9)
        start = stop


def _outcome(function: Callable[[], np.ndarray]) -> np.ndarray | tuple[type[BaseException], str]:
    try:
        return function()
    except (ValueError, TypeError) as error:
        return type(error), str(error)


def _hostile_rows(case: Case, rows: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Rows with values scikit-learn may reject: infinities, NaN without an imputer, NaN (not None)
    categories, unknown categories for strict encoders, numbers among strings, unhashable values."""
    columns = _legal_rows(case, rows, seed=int(rng.integers(1 << 30)))
    for name in NUMERIC:
        values = columns[name]
        for index in range(rows):
            draw = rng.random()
            if draw < 0.04:
                values[index] = rng.choice([np.inf, -np.inf])
            elif draw < 0.08:
                values[index] = np.nan
            elif draw < 0.10:
                values[index] = rng.choice([1e200, -1e200])  # the logistic's exp overflows
    for name in CATEGORICAL:
        values = columns[name]
        for index in range(rows):
            draw = rng.random()
            if draw < 0.04:
                values[index] = None
            elif draw < 0.07:
                values[index] = float("nan")
            elif draw < 0.10:
                values[index] = "zzz" if case.int_categories else 7
            elif draw < 0.12:
                values[index] = 99 if case.int_categories else "zzz"
            elif draw < 0.13:
                values[index] = [1]
    return columns


@pytest.mark.filterwarnings("ignore:invalid value encountered in reduce:RuntimeWarning")  # sklearn, on inf
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_small_batch_errors_are_the_numpy_paths(case: Case) -> None:
    pipeline = _fitted(case.name)
    fused = _fused(compile_model(pipeline, SPECS))
    rng = np.random.default_rng(7)
    outcomes = {"ok": 0, "error": 0}
    for trial in range(150):
        rows = 1 if trial < 50 else int(rng.integers(1, 17))
        columns = _hostile_rows(case, rows, rng)
        small = _outcome(lambda: fused.small_batch(columns, rows))  # noqa: B023 - called right here
        vector = _outcome(lambda: fused.vector(columns, rows))  # noqa: B023
        if isinstance(vector, tuple):
            assert small == vector
            outcomes["error"] += 1
            if vector[1] != "Encoders require their input argument to be uniformly strings or numbers":
                # the fast path refuses only what scikit-learn refuses (it checks types more strictly)
                with pytest.raises((ValueError, TypeError)):
                    _sklearn(pipeline, columns, case.regression)
        else:
            assert isinstance(small, np.ndarray), small
            assert small.shape == vector.shape
            np.testing.assert_allclose(small, vector, rtol=1e-12, atol=1e-12)
            outcomes["ok"] += 1
    assert outcomes["ok"] >= 10
    assert outcomes["error"] >= 10


def test_probability_saturates_like_numpy_when_exp_overflows() -> None:
    fused = _fused(compile_model(_fitted("logistic-no-imputers"), SPECS))
    for big in (1e200, -1e200, 1e300, -1e300):
        columns: dict[str, np.ndarray] = {name: np.array([big]) for name in NUMERIC}
        columns.update({name: np.array([_known(CASES[0], name)[0]], dtype=object) for name in CATEGORICAL})
        small = fused.small_batch(columns, 1)
        np.testing.assert_array_equal(small, fused.vector(columns, 1))
        assert set(small.ravel().tolist()) == {0.0, 1.0}


def test_batches_up_to_the_limit_take_the_small_batch_path(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = compile_model(_fitted("fixture-model"), SPECS)
    fused = _fused(fast)
    assert fused.small_batch_rows == SMALL == 14
    called: list[str] = []
    for method in ("small_batch", "vector"):
        original = getattr(_FusedLinear, method)
        monkeypatch.setattr(
            _FusedLinear,
            method,
            lambda self, columns, rows, method=method, original=original: (
                called.append(method) or original(self, columns, rows)
            ),
        )
    columns = _legal_rows(CASES[0], 40, seed=2)
    expected = fused.vector(columns, 40)
    called.clear()
    for rows in (1, 2, SMALL, SMALL + 1, 40):
        np.testing.assert_allclose(fast.predict(_slice(columns, 0, rows)), expected[:rows], atol=1e-12)
    assert called == ["small_batch"] * 3 + ["vector"] * 2


def test_none_known_to_the_encoder_is_still_imputed_by_both_paths() -> None:
    """An encoder fitted on None (the imputer looked for "?"): the fast path imputes None anyway,
    scikit-learn does not, so verification refuses the model; both evaluations impute alike."""
    frame = _training_frame(int_categories=False)
    for name in CATEGORICAL:
        frame[name] = frame[name].astype(object)
        frame.loc[frame.index[:50], name] = None
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(missing_values="?", strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                CATEGORICAL,
            ),
        ]
    )
    pipeline = Pipeline([("pre", pre), ("model", LogisticRegression(max_iter=300))])
    pipeline.fit(frame[FEATURES], frame["churned"])
    fused = _fused(compile_model(pipeline, SPECS))
    assert None in fused.categorical[0][1]  # the lookup has a None key
    fills = {name: fill for name, _, fill, *_ in fused.categorical}
    for rows in (1, 3, 40):
        columns = _legal_rows(CASES[4], rows, seed=4)  # logistic-no-imputers: no NaN numbers
        for name in CATEGORICAL:
            columns[name] = np.array([None] * rows, dtype=object)
        imputed = {**columns, **{n: np.array([fills[n]] * rows, dtype=object) for n in CATEGORICAL}}
        np.testing.assert_allclose(fused.small_batch(columns, rows), fused.vector(imputed, rows), atol=1e-12)
        np.testing.assert_allclose(fused.vector(columns, rows), fused.vector(imputed, rows), atol=1e-12)
    assert build_verified(pipeline, SPECS) is None


def test_ragged_columns_fail_as_in_the_numpy_path() -> None:
    fused = _fused(compile_model(_fitted("fixture-model"), SPECS))
    columns = _legal_rows(CASES[0], 3, seed=1)
    columns["support_calls"] = columns["support_calls"][:2]
    assert _outcome(lambda: fused.small_batch(columns, 3)) == _outcome(lambda: fused.vector(columns, 3))
    columns = _legal_rows(CASES[0], 3, seed=1)
    columns["region"] = columns["region"][:2]
    assert _outcome(lambda: fused.small_batch(columns, 3)) == _outcome(lambda: fused.vector(columns, 3))


def test_probe_rows_cover_missing_and_unknown_values_in_small_batches() -> None:
    pipeline = _fitted("logistic-most-frequent")
    probes = verification_rows(pipeline, SPECS)
    batches = small_batches(len(probes[NUMERIC[0]]))
    assert [b.stop - b.start for b in batches] == [1] * 32 + list(range(2, 17))
    for singles in (batches[:32], batches[32:]):
        rows = np.concatenate([np.arange(b.start, b.stop) for b in singles])
        assert any(np.isnan(probes[name][rows]).any() for name in NUMERIC)
        for name in CATEGORICAL:
            values = probes[name][rows].tolist()
            assert None in values
            assert "__unknown_probe__" in values


# ------------------------------------------------------------------------------------------------
# a broken small-batch path is caught at load, and the server falls back to scikit-learn


def _offset(original: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    return lambda self, columns, rows: original(self, columns, rows) + 1e-6


def _single_row_only(original: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def broken(self: _FusedLinear, columns: dict[str, np.ndarray], rows: int) -> np.ndarray:
        out = original(self, columns, rows)
        return out[:, ::-1] if rows == 1 and out.ndim == 2 else out * (1.0 + 1e-6 * (rows == 1))

    return broken


def _nan_as_zero(original: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def broken(self: _FusedLinear, columns: dict[str, np.ndarray], rows: int) -> np.ndarray:
        changed = {n: np.nan_to_num(v) if n in NUMERIC else v for n, v in columns.items()}
        return original(self, changed, rows)

    return broken


def _unknown_as_known(original: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def broken(self: _FusedLinear, columns: dict[str, np.ndarray], rows: int) -> np.ndarray:
        changed = dict(columns)
        for name in CATEGORICAL:
            known = _known(CASES[0], name)
            changed[name] = np.array(
                [known[0] if v not in (None, *known) else v for v in columns[name]], dtype=object
            )
        return original(self, changed, rows)

    return broken


def _missing_not_imputed(original: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def broken(self: _FusedLinear, columns: dict[str, np.ndarray], rows: int) -> np.ndarray:
        changed = {
            n: np.array(["?" if v is None else v for v in columns[n]], dtype=object) for n in CATEGORICAL
        }
        return original(self, {**columns, **changed}, rows)

    return broken


def _positive_column_only(original: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    return lambda self, columns, rows: original(self, columns, rows)[:, 1]


def _raises(original: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def broken(self: _FusedLinear, columns: dict[str, np.ndarray], rows: int) -> np.ndarray:
        raise ValueError("bug")

    return broken


BREAKAGES = [_offset, _single_row_only, _nan_as_zero, _unknown_as_known, _missing_not_imputed, _positive_column_only, _raises]  # fmt: skip


@pytest.mark.parametrize("breakage", BREAKAGES, ids=[b.__name__.strip("_") for b in BREAKAGES])
def test_broken_small_batch_path_fails_verification(
    breakage: Callable[[Callable[..., np.ndarray]], Callable[..., np.ndarray]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline = _fitted("logistic-most-frequent")
    assert build_verified(pipeline, SPECS) is not None
    monkeypatch.setattr(_FusedLinear, "small_batch", breakage(_FusedLinear.small_batch))
    assert build_verified(pipeline, SPECS) is None


def test_broken_small_batch_path_makes_the_server_use_sklearn(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert model_fn(model_dir).fast is not None
    monkeypatch.setattr(_FusedLinear, "small_batch", _offset(_FusedLinear.small_batch))
    assert model_fn(model_dir).fast is None


NAN = "Input X contains NaN (the model has no imputer for it)"
INFINITY = "Input X contains infinity or a value too large for dtype('float64')"
MIXED = "Encoders require their input argument to be uniformly strings or numbers"


def _unknown(name: str) -> str:
    return f"Found unknown categories in column '{name}' during transform"


@pytest.mark.parametrize(
    ("case_name", "changes", "expected"),
    [
        # numeric checks come first: NaN (no imputer) over the whole group before infinity
        ("logistic-no-imputers", {"tenure_months": [np.inf, 1.0], "support_calls": [1.0, np.nan]}, NAN),
        ("logistic-most-frequent", {"tenure_months": [np.inf, np.nan]}, INFINITY),
        ("logistic-strict", {"tenure_months": [1.0, -np.inf], "plan": ["gold", "basic"]}, INFINITY),
        # a non-string anywhere in a string column outranks an earlier unknown category
        ("logistic-strict", {"plan": ["gold", 7]}, MIXED),
        ("logistic-strict", {"plan": ["gold", [1]]}, MIXED),
        ("logistic-strict", {"plan": ["basic", "gold"], "region": [3, "north"]}, _unknown("plan")),
        # without strings the first unknown or unhashable value decides
        ("logistic-int-categories-strict", {"plan": [99, [1]]}, _unknown("plan")),
        ("logistic-int-categories-strict", {"plan": [[1], 99]}, TypeError),
        ("logistic-int-categories", {"plan": [0, [1]]}, TypeError),
        # missing categories: imputed, unknown (strict: an error) or, as NaN in a string column, a number
        ("logistic-strict", {"plan": [None, float("nan")]}, None),
        ("ridge-strict-no-imputers", {"region": [float("nan"), "north"]}, MIXED),
        ("ridge-strict-no-imputers", {"region": ["north", None]}, _unknown("region")),
        ("logistic-no-imputers", {"region": ["north", None]}, None),
    ],
)
def test_first_error_is_the_same_in_both_paths(
    case_name: str, changes: dict[str, list[Any]], expected: str | type[BaseException] | None
) -> None:
    fused = _fused(compile_model(_fitted(case_name), SPECS))
    case = next(c for c in CASES if c.name == case_name)
    for rows in (2, 40):  # the small-batch path, then the NumPy path
        columns = _legal_rows(case, rows, seed=3)
        for name, values in changes.items():
            column = np.empty(len(values), dtype=object) if name in CATEGORICAL else np.empty(len(values))
            for index, value in enumerate(values):
                column[index] = value
            columns[name] = np.concatenate([column, columns[name][2:]])
            if name in NUMERIC:
                columns[name] = columns[name].astype(np.float64)
        outcome = _outcome(lambda: fused(columns))  # noqa: B023
        if expected is None:
            assert isinstance(outcome, np.ndarray)
        elif isinstance(expected, str):
            assert outcome == (ValueError, expected)
        else:
            assert isinstance(outcome, tuple)
            assert outcome[0] is expected
