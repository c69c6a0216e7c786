"""A NumPy runtime for common fitted scikit-learn pipelines, verified against scikit-learn at load.

scikit-learn's per-call overhead (input validation, ``ColumnTransformer`` bookkeeping, DataFrame
handling) is several milliseconds for a one-row request, far more than the arithmetic. For the
pipeline shapes the training step produces, this module reads the fitted parameters and evaluates
the same function with plain NumPy:

* ``Pipeline([ColumnTransformer, estimator])`` where each column group is ``"drop"``,
  ``"passthrough"`` or a chain of ``SimpleImputer``, ``StandardScaler``, ``MinMaxScaler`` and
  ``OneHotEncoder`` (``drop=None``, ``handle_unknown`` ``"ignore"`` or ``"error"``, no infrequent
  categories);
* the estimator is evaluated directly when it is ``LogisticRegression`` or a linear regressor
  (``coef_``/``intercept_``), otherwise it is called on the transformed matrix (skipping only the
  preprocessing overhead).

:func:`compile_model` raises :class:`UnsupportedModelError` for anything else. A binary logistic
or linear regressor whose preprocessing folds into its weights is evaluated by ``_FusedLinear``:
NumPy for large batches, plain Python floats for small ones (see :data:`SMALL_BATCH_VALUES`: a
dozen NumPy calls cost more than the arithmetic of a one-row request).

:func:`verify` compares the fast path with scikit-learn on generated rows (numeric values around the
fitted statistics, missing values, every known category, an unknown one), all at once and again in
small batches so that both evaluations are checked; the server uses the fast path only when they
agree within ``tolerance`` (default 1e-9 absolute on probabilities/values), otherwise it logs why
and serves through scikit-learn.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipelines.serving.artifact import FeatureSpec
from pipelines.transforms import MISSING_TEXT, category_texts

logger = logging.getLogger(__name__)

DEFAULT_TOLERANCE = 1e-9
"""Largest absolute difference from scikit-learn accepted at verification."""

ColumnStep = Callable[[np.ndarray], np.ndarray]


class UnsupportedModelError(Exception):
    """The fitted pipeline has a step this runtime does not implement (the server falls back)."""


@dataclass(frozen=True)
class _Group:
    columns: tuple[str, ...]
    steps: tuple[Callable[[np.ndarray], np.ndarray], ...]
    categorical_input: bool


def _imputer(step: Any, categorical: bool) -> ColumnStep:
    if getattr(step, "add_indicator", False):
        raise UnsupportedModelError("SimpleImputer(add_indicator=True)")
    missing = step.missing_values
    statistics = np.asarray(step.statistics_)
    if categorical:
        fill = statistics.tolist()

        def impute_objects(block: np.ndarray) -> np.ndarray:
            out = block.copy()
            for j, value in enumerate(fill):
                column = out[:, j]
                mask = np.array(
                    [v is None or (isinstance(v, float) and v != v) or v is missing for v in column]
                )
                if mask.any():
                    column[mask] = value
            return out

        return impute_objects
    if not (missing is np.nan or (isinstance(missing, float) and np.isnan(missing))):
        raise UnsupportedModelError(f"SimpleImputer(missing_values={missing!r})")
    fill_values = statistics.astype(np.float64)

    def impute(block: np.ndarray) -> np.ndarray:
        mask = np.isnan(block)
        if mask.any():
            block = np.where(mask, fill_values, block)
        return block

    return impute


def _standard_scaler(step: Any) -> ColumnStep:
    mean = None if step.mean_ is None else np.asarray(step.mean_, dtype=np.float64)
    scale = None if step.scale_ is None else np.asarray(step.scale_, dtype=np.float64)

    def scale_block(block: np.ndarray) -> np.ndarray:
        if mean is not None:
            block = block - mean
        if scale is not None:
            block = block / scale
        return block

    return scale_block


def _minmax_scaler(step: Any) -> ColumnStep:
    if getattr(step, "clip", False):
        raise UnsupportedModelError("MinMaxScaler(clip=True)")
    scale = np.asarray(step.scale_, dtype=np.float64)
    offset = np.asarray(step.min_, dtype=np.float64)
    return lambda block: block * scale + offset


def _one_hot(step: Any) -> ColumnStep:
    if step.drop is not None or step.handle_unknown not in ("ignore", "error"):
        raise UnsupportedModelError(
            f"OneHotEncoder(drop={step.drop!r}, handle_unknown={step.handle_unknown!r})"
        )
    if getattr(step, "min_frequency", None) is not None or getattr(step, "max_categories", None) is not None:
        raise UnsupportedModelError("OneHotEncoder with infrequent categories")
    lookups: list[dict[Any, int]] = []
    string_columns: list[bool] = []
    for categories in step.categories_:
        values = categories.tolist()
        lookups.append({value: index for index, value in enumerate(values)})
        string_columns.append(all(isinstance(v, str) for v in values))
    widths = [len(c) for c in step.categories_]
    offsets = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(np.int64)
    total = int(sum(widths))
    strict = step.handle_unknown == "error"

    def encode(block: np.ndarray) -> np.ndarray:
        rows = block.shape[0]
        out = np.zeros((rows, total), dtype=np.float64)
        for j, lookup in enumerate(lookups):
            column = block[:, j]
            if string_columns[j] and any(v is not None and not isinstance(v, str) for v in column):
                raise ValueError("Encoders require their input argument to be uniformly strings or numbers")
            index = np.fromiter((lookup.get(v, -1) for v in column), dtype=np.int64, count=rows)
            known = index >= 0
            if strict and not known.all():
                raise ValueError(f"Found unknown categories in column {j} during transform")
            out[np.nonzero(known)[0], offsets[j] + index[known]] = 1.0
        return out

    return encode


def _function_transformer(step: Any) -> ColumnStep:
    """Only the platform's own text normaliser (``pipelines.transforms.as_text``), applied as is."""
    from pipelines.transforms import as_text

    if step.func is not as_text or step.inverse_func is not None or step.kw_args or step.validate:
        raise UnsupportedModelError(f"FunctionTransformer({getattr(step.func, '__name__', step.func)!r})")
    return as_text


def _column_steps(transformer: Any, categorical: bool) -> tuple[ColumnStep, ...]:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, OneHotEncoder, StandardScaler

    chain = [step for _, step in transformer.steps] if isinstance(transformer, Pipeline) else [transformer]
    steps: list[ColumnStep] = []
    objects = categorical
    for step in chain:
        if step == "passthrough" or step is None:
            continue
        if isinstance(step, FunctionTransformer) and objects:
            steps.append(_function_transformer(step))
        elif isinstance(step, SimpleImputer):
            steps.append(_imputer(step, objects))
        elif isinstance(step, StandardScaler) and not objects:
            steps.append(_standard_scaler(step))
        elif isinstance(step, MinMaxScaler) and not objects:
            steps.append(_minmax_scaler(step))
        elif isinstance(step, OneHotEncoder):
            steps.append(_one_hot(step))
            objects = False
        else:
            raise UnsupportedModelError(f"column step {type(step).__name__}")
    if objects:
        raise UnsupportedModelError("categorical columns reach the estimator without encoding")
    return tuple(steps)


@dataclass(frozen=True)
class FastModel:
    """The compiled pipeline: preprocessing groups plus a final function on the dense matrix."""

    groups: tuple[_Group, ...]
    final: Callable[[np.ndarray], np.ndarray]
    is_classifier: bool
    kind: str
    fused: Callable[[dict[str, np.ndarray]], np.ndarray] | None = None

    def transform(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """Apply the preprocessing to aligned feature columns; returns the dense model matrix."""
        blocks = []
        for group in self.groups:
            if group.categorical_input:
                block = np.empty((len(columns[group.columns[0]]), len(group.columns)), dtype=object)
                for j, name in enumerate(group.columns):
                    block[:, j] = columns[name]
            else:
                block = np.column_stack(
                    [np.asarray(columns[name], dtype=np.float64) for name in group.columns]
                )
            for step in group.steps:
                block = step(block)
            blocks.append(np.asarray(block, dtype=np.float64))
        matrix = blocks[0] if len(blocks) == 1 else np.hstack(blocks)
        if not np.isfinite(matrix).all():
            raise ValueError("Input X contains NaN or infinity (the model has no imputer for it)")
        return matrix

    def predict(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """Class probabilities (classifier) or predicted values (regressor)."""
        if self.fused is not None:
            return self.fused(columns)
        return self.final(self.transform(columns))


def _final(estimator: Any) -> tuple[Callable[[np.ndarray], np.ndarray], bool, str]:
    from sklearn.linear_model import LogisticRegression

    if isinstance(estimator, LogisticRegression):
        coef = np.asarray(estimator.coef_, dtype=np.float64)
        intercept = np.asarray(estimator.intercept_, dtype=np.float64)
        if coef.shape[0] == 1:

            def binary(matrix: np.ndarray) -> np.ndarray:
                positive = 1.0 / (1.0 + np.exp(-(matrix @ coef[0] + intercept[0])))
                return np.column_stack([1.0 - positive, positive])

            return binary, True, "logistic-binary"

        def softmax(matrix: np.ndarray) -> np.ndarray:
            scores = matrix @ coef.T + intercept
            scores -= scores.max(axis=1, keepdims=True)
            np.exp(scores, out=scores)
            return scores / scores.sum(axis=1, keepdims=True)

        return softmax, True, "logistic-multinomial"
    if hasattr(estimator, "predict_proba"):
        return estimator.predict_proba, True, f"sklearn:{type(estimator).__name__}"
    coef = getattr(estimator, "coef_", None)
    if (
        coef is not None
        and np.ndim(coef) == 1
        and type(estimator).__name__ in ("LinearRegression", "Ridge", "Lasso", "ElasticNet")
    ):
        weights = np.asarray(coef, dtype=np.float64)
        bias = float(np.asarray(estimator.intercept_))
        return (lambda matrix: matrix @ weights + bias), False, "linear"
    return estimator.predict, False, f"sklearn:{type(estimator).__name__}"


SMALL_BATCH_VALUES = 128
"""``_FusedLinear`` evaluates a batch with plain Python floats instead of NumPy when
``rows * (features + 4)`` is at most this: 14 rows of 5 features, 4 rows of 28, 1 row of up to 124.
Below that the dozen NumPy calls cost more than the arithmetic (measured crossovers: about 20 rows
of 5 features, 8-16 rows of 22, 1-2 rows of 50)."""

_Categorical = tuple[str, dict[Any, float], Any, bool, bool, bool]
"""A folded categorical column: name, coefficient per category, fill for missing values, strict
(``handle_unknown="error"``), fitted on strings, values pass through ``as_text`` first."""

_NAN_MESSAGE = "Input X contains NaN (the model has no imputer for it)"
_INFINITY_MESSAGE = "Input X contains infinity or a value too large for dtype('float64')"
_MIXED_MESSAGE = "Encoders require their input argument to be uniformly strings or numbers"


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


class _FusedLinear:
    """A linear model folded through its preprocessing: per-feature weights on the raw numeric
    values (imputation, then the scalers' affine maps, folded into the weights) plus a coefficient
    lookup per category; no intermediate matrix is built.

    Small batches (see :data:`SMALL_BATCH_VALUES`) are computed with Python floats (same checks,
    same errors, results equal up to summation order); larger ones with NumPy.
    """

    def __init__(self, bias: float, numeric: list[tuple[list[str], np.ndarray, np.ndarray | None]],
                 categorical: list[_Categorical], binary: bool) -> None:  # fmt: skip
        self.bias = bias
        self.numeric = numeric
        self.categorical = categorical
        self.binary = binary
        # the same parameters as Python lists, for the small-batch path
        self._numeric_lists = [
            (names, weights.tolist(), None if fills is None else fills.tolist())
            for names, weights, fills in numeric
        ]
        # a lookup without None/NaN keys: a hit proves the value needs no imputation or type check
        # (with as_text, keys must also be texts as_text returns unchanged)
        self._clean_lookup = [
            not any(
                _is_missing(key) or (text and (type(key) is not str or key in MISSING_TEXT)) for key in lookup
            )
            for _, lookup, _, _, _, text in categorical
        ]
        width = sum(len(names) for names, _, _ in numeric) + len(categorical)
        self.small_batch_rows = SMALL_BATCH_VALUES // (width + 4)  # larger batches: vector()

    def __call__(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        rows = len(next(iter(columns.values())))
        if rows <= self.small_batch_rows:
            return self.small_batch(columns, rows)
        return self.vector(columns, rows)

    def vector(self, columns: dict[str, np.ndarray], rows: int) -> np.ndarray:
        """The NumPy evaluation (any batch size)."""
        score = np.full(rows, self.bias)
        for names, weights, fills in self.numeric:
            block = np.column_stack([np.asarray(columns[name], dtype=np.float64) for name in names])
            if not np.isfinite(block).all():  # usually all finite: one check instead of two
                missing = np.isnan(block)
                if missing.any():
                    if fills is None:
                        raise ValueError(_NAN_MESSAGE)
                    block = np.where(missing, fills, block)
                if not np.isfinite(block).all():
                    raise ValueError(_INFINITY_MESSAGE)
            score += block @ weights
        for index, (name, *_) in enumerate(self.categorical):
            found = self._category_scores(index, columns[name])
            score += np.fromiter(found, dtype=np.float64, count=rows)
        if self.binary:
            positive = 1.0 / (1.0 + np.exp(-score))
            out = np.empty((rows, 2))
            out[:, 0] = 1.0 - positive
            out[:, 1] = positive
            return out
        return score

    def small_batch(self, columns: dict[str, np.ndarray], rows: int) -> np.ndarray:
        """The pure-Python evaluation of a few rows: the same checks in the same order as :meth:`vector`."""
        scores = [self.bias] * rows
        for names, weights, fills in self._numeric_lists:
            block: list[list[float]] = []
            for name in names:
                values = np.asarray(columns[name], dtype=np.float64)
                if values.shape != (rows,):  # ragged or 2-D input: let NumPy raise (or not) as usual
                    return self.vector(columns, rows)
                block.append(values.tolist())
            if fills is None:
                if any(v != v for column in block for v in column):
                    raise ValueError(_NAN_MESSAGE)
            else:
                block = [[f if v != v else v for v in column] for column, f in zip(block, fills, strict=True)]
            for column, weight in zip(block, weights, strict=True):
                for row, value in enumerate(column):
                    if value - value != 0.0:  # infinity (NaN is gone: imputed or rejected above)
                        raise ValueError(_INFINITY_MESSAGE)
                    scores[row] += weight * value
        for index, (name, *_) in enumerate(self.categorical):
            found = self._category_scores(index, columns[name])
            if len(found) != rows:
                return self.vector(columns, rows)
            for row, contribution in enumerate(found):
                scores[row] += contribution
        if self.binary:
            flat: list[float] = []
            for score in scores:
                try:
                    positive = 1.0 / (1.0 + math.exp(-score))
                except OverflowError:  # exp(-score) is inf: NumPy gives 1 / inf = 0
                    positive = 0.0
                flat += (1.0 - positive, positive)
            return np.array(flat, dtype=np.float64).reshape(rows, 2)
        return np.array(scores, dtype=np.float64)

    def _category_scores(self, index: int, values: Any) -> list[float]:
        """Each value's coefficient (0 for an unknown category), after imputing None/NaN.

        Raises:
            ValueError: a non-string value in a column fitted on strings (checked over the whole
                column first), or an unknown category with a strict (``handle_unknown="error"``) encoder.
            TypeError: an unhashable value.
        """
        name, lookup, fill, strict, strings, text = self.categorical[index]
        get = lookup.get
        if isinstance(values, np.ndarray) and values.dtype == object and values.ndim == 1:
            values = values.tolist()  # the same objects, iterated faster (other dtypes: NumPy scalars)
        if self._clean_lookup[index]:
            # common case, one dict lookup per value: every value a known category (with as_text too:
            # a hit is a string equal to a key, which as_text returns unchanged)
            try:
                found: list[Any] = [get(v) for v in values]
            except TypeError:
                pass
            else:
                if None not in found:
                    return found
        if text:
            values = category_texts(values)
        found = []
        unknown = False
        for value in values:
            if fill is not None and _is_missing(value):
                value = fill
            if strings and value is not None and not isinstance(value, str):
                raise ValueError(_MIXED_MESSAGE)
            contribution = get(value)
            if contribution is None:
                if strict:
                    if not strings:  # the NumPy path stops at the first unknown value
                        raise ValueError(f"Found unknown categories in column '{name}' during transform")
                    unknown = True  # a later non-string value takes precedence
                contribution = 0.0
            found.append(contribution)
        if unknown:
            raise ValueError(f"Found unknown categories in column '{name}' during transform")
        return found


def _fuse_linear(model: Any, features: Sequence[FeatureSpec]) -> _FusedLinear:
    """Fold a ``ColumnTransformer`` + binary logistic / linear regression into a :class:`_FusedLinear`."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, OneHotEncoder, StandardScaler

    estimator = model.steps[1][1]
    coef = np.asarray(getattr(estimator, "coef_", np.empty(0)), dtype=np.float64)
    binary = isinstance(estimator, LogisticRegression)
    if binary and coef.shape[0] == 1:
        coef = coef[0]
    elif (
        binary
        or coef.ndim != 1
        or type(estimator).__name__ not in ("LinearRegression", "Ridge", "Lasso", "ElasticNet")
    ):
        raise UnsupportedModelError("not a binary logistic or single-output linear model")
    bias = float(np.ravel(estimator.intercept_)[0])
    kinds = {f.name: f.kind for f in features}
    numeric: list[tuple[list[str], np.ndarray, np.ndarray | None]] = []
    categorical: list[_Categorical] = []
    offset = 0
    for name, step, columns in model.steps[0][1].transformers_:
        if step == "drop" or (name == "remainder" and not len(columns)):
            continue
        if name == "remainder" or isinstance(columns, slice) or not all(isinstance(c, str) for c in columns):
            raise UnsupportedModelError("columns must be selected by name")
        names = list(columns)
        if not names:
            continue
        chain = (
            []
            if step == "passthrough"
            else ([s for _, s in step.steps] if isinstance(step, Pipeline) else [step])
        )
        chain = [s for s in chain if s != "passthrough" and s is not None]
        if all(kinds.get(n) == "numeric" for n in names):
            fills = None
            scale = np.ones(len(names))
            shift = np.zeros(len(names))
            for position, item in enumerate(chain):
                if isinstance(item, SimpleImputer) and position == 0 and not item.add_indicator:
                    fills = np.asarray(item.statistics_, dtype=np.float64)
                elif isinstance(item, StandardScaler):
                    mean = (
                        np.zeros(len(names))
                        if item.mean_ is None
                        else np.asarray(item.mean_, dtype=np.float64)
                    )
                    std = (
                        np.ones(len(names))
                        if item.scale_ is None
                        else np.asarray(item.scale_, dtype=np.float64)
                    )
                    scale, shift = scale / std, (shift - mean) / std
                elif isinstance(item, MinMaxScaler) and not item.clip:
                    scale, shift = scale * item.scale_, shift * item.scale_ + item.min_
                else:
                    raise UnsupportedModelError(f"cannot fold {type(item).__name__}")
            weights = coef[offset : offset + len(names)]
            numeric.append((names, weights * scale, fills))
            bias += float(weights @ shift)
            offset += len(names)
        elif all(kinds.get(n) == "categorical" for n in names):
            # the training step's chain: [FunctionTransformer(as_text)], [SimpleImputer], OneHotEncoder
            text = bool(chain) and isinstance(chain[0], FunctionTransformer)
            if text:
                _function_transformer(chain[0])  # raises unless it is the platform's as_text
                chain = chain[1:]
            encoder = chain[-1] if chain else None
            if chain[:-1]:
                imputer = chain[0]
                if len(chain) != 2 or not isinstance(imputer, SimpleImputer) or imputer.add_indicator:
                    raise UnsupportedModelError(
                        "categorical chain must be [as_text], [SimpleImputer], OneHotEncoder"
                    )
                if text and imputer.missing_values is not None:
                    # as_text marks every missing value None; an imputer looking for NaN misses them
                    raise UnsupportedModelError("as_text followed by SimpleImputer(missing_values != None)")
                fill_values: list[Any] = np.asarray(imputer.statistics_, dtype=object).tolist()
            else:
                fill_values = [None] * len(names)
            if (
                not isinstance(encoder, OneHotEncoder)
                or encoder.drop is not None
                or encoder.handle_unknown not in ("ignore", "error")
            ):
                raise UnsupportedModelError("categorical columns need OneHotEncoder(drop=None)")
            if (
                getattr(encoder, "min_frequency", None) is not None
                or getattr(encoder, "max_categories", None) is not None
            ):
                raise UnsupportedModelError("OneHotEncoder with infrequent categories")
            for column, categories, fill in zip(names, encoder.categories_, fill_values, strict=True):
                values = categories.tolist()
                lookup = {value: float(coef[offset + i]) for i, value in enumerate(values)}
                strings = all(isinstance(v, str) for v in values)
                strict = encoder.handle_unknown == "error"
                categorical.append((column, lookup, fill, strict, strings, text))
                offset += len(values)
        else:
            raise UnsupportedModelError(f"column group {names} mixes numeric and categorical features")
    if offset != coef.size:
        raise UnsupportedModelError(f"folded {offset} inputs but the model has {coef.size} coefficients")
    return _FusedLinear(bias, numeric, categorical, binary)


def compile_model(model: Any, features: Sequence[FeatureSpec]) -> FastModel:
    """Compile a fitted ``Pipeline([ColumnTransformer, estimator])``.

    Raises:
        UnsupportedModelError: naming the step this runtime does not implement.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if (
        not isinstance(model, Pipeline)
        or len(model.steps) != 2
        or not isinstance(model.steps[0][1], ColumnTransformer)
    ):
        raise UnsupportedModelError("expected Pipeline([ColumnTransformer, estimator])")
    transformer: Any = model.steps[0][1]
    kinds = {f.name: f.kind for f in features}
    groups: list[_Group] = []
    used: list[str] = []
    for _name, step, columns in transformer.transformers_:
        if step == "drop":
            continue
        if _name == "remainder":
            if step == "passthrough" and len(columns):
                raise UnsupportedModelError("remainder='passthrough' with columns")
            continue
        if isinstance(columns, slice) or not all(isinstance(c, str) for c in columns):
            raise UnsupportedModelError("ColumnTransformer columns must be selected by name")
        names = tuple(columns)
        if not names:
            continue
        if any(name not in kinds for name in names):
            raise UnsupportedModelError(f"columns {names} are not all model features")
        group_kinds = {kinds[name] for name in names}
        if len(group_kinds) != 1:
            raise UnsupportedModelError(f"column group {names} mixes numeric and categorical features")
        categorical = group_kinds == {"categorical"}
        steps = () if step == "passthrough" else _column_steps(step, categorical)
        if categorical and step == "passthrough":
            raise UnsupportedModelError("categorical passthrough")
        groups.append(_Group(names, steps, categorical))
        used += names
    if not groups:
        raise UnsupportedModelError("the ColumnTransformer selects no columns")
    final, is_classifier, kind = _final(model.steps[1][1])
    fused = None
    if kind in ("logistic-binary", "linear"):
        try:
            fused = _fuse_linear(model, features)
            kind = f"{kind}-fused"
        except UnsupportedModelError as error:
            logger.info("linear model not folded (%s); using the step-by-step fast path", error)
    return FastModel(groups=tuple(groups), final=final, is_classifier=is_classifier, kind=kind, fused=fused)


def verification_rows(
    model: Any, features: Sequence[FeatureSpec], rows: int = 256, seed: int = 0
) -> dict[str, np.ndarray]:
    """Deterministic probe rows: numeric values spread around the fitted statistics (with missing
    values), every known category, an unknown category and missing categories."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    known, strict = _known_categories(model)
    for feature in features:
        if feature.kind == "numeric":
            values = rng.normal(0.0, 1.0, rows) * rng.choice([1.0, 10.0, 100.0], rows)
            values[rng.random(rows) < 0.05] = np.nan
            out[feature.name] = values
        else:
            unknown = [] if feature.name in strict else ["__unknown_probe__"]
            pool: list[Any] = [*known.get(feature.name, []), *unknown, None]
            out[feature.name] = np.array([pool[i % len(pool)] for i in rng.permutation(rows)], dtype=object)
    return out


def _known_categories(model: Any) -> tuple[dict[str, list[Any]], set[str]]:
    from sklearn.preprocessing import OneHotEncoder

    found: dict[str, list[Any]] = {}
    strict: set[str] = set()
    try:
        transformer = model.steps[0][1]
        for _name, step, columns in transformer.transformers_:
            chain = [s for _, s in step.steps] if hasattr(step, "steps") else [step]
            for item in chain:
                if isinstance(item, OneHotEncoder):
                    for name, categories in zip(columns, item.categories_, strict=True):
                        found[name] = [c for c in categories.tolist() if c is not None]
                        if item.handle_unknown == "error":
                            strict.add(name)
    except (AttributeError, IndexError, TypeError):
        return {}, set()
    return found, strict


def verify(
    fast: FastModel, model: Any, columns: dict[str, np.ndarray], tolerance: float = DEFAULT_TOLERANCE
) -> float:
    """Largest absolute difference between the fast path and scikit-learn on ``columns``.

    The fast path runs on all rows at once and again on leading rows in small batches (one row at a
    time, then 2 to 16 rows, see :func:`small_batches`), so the code serving small requests is
    checked as well as the NumPy code.

    Raises:
        UnsupportedModelError: when they differ by more than ``tolerance`` or only one of them fails.
    """
    import pandas as pd

    frame = pd.DataFrame(columns)
    try:
        expected = model.predict_proba(frame) if fast.is_classifier else model.predict(frame)
    except (ValueError, TypeError) as error:
        raise UnsupportedModelError(f"scikit-learn rejects the probe rows: {error}") from error
    expected = np.asarray(expected, dtype=np.float64)
    difference = _difference(expected, fast, columns, len(expected))
    for batch in small_batches(len(expected)):
        part = {name: values[batch] for name, values in columns.items()}
        difference = max(difference, _difference(expected[batch], fast, part, batch.stop - batch.start))
    if not difference <= tolerance:
        raise UnsupportedModelError(
            f"fast path differs from scikit-learn by {difference:.3g} (> {tolerance:g})"
        )
    return difference


def small_batches(rows: int, single: int = 32, largest: int = 16) -> list[slice]:
    """The batches :func:`verify` re-runs: the first ``single`` rows one at a time, then batches of
    2, 3, ..., ``largest`` rows (167 rows in 47 calls, fewer when ``rows`` is smaller)."""
    batches = [slice(start, start + 1) for start in range(min(single, rows))]
    start = len(batches)
    for size in range(2, largest + 1):
        if start >= rows:
            break
        batches.append(slice(start, min(start + size, rows)))
        start += size
    return batches


def _difference(expected: np.ndarray, fast: FastModel, columns: dict[str, np.ndarray], rows: int) -> float:
    try:
        got = np.asarray(fast.predict(columns), dtype=np.float64)
    except (ValueError, TypeError) as error:
        raise UnsupportedModelError(
            f"fast path fails on {rows} row(s) scikit-learn accepts: {error}"
        ) from error
    if got.shape != expected.shape:
        raise UnsupportedModelError(
            f"fast path returns shape {got.shape} for {rows} row(s); scikit-learn {expected.shape}"
        )
    difference = float(np.max(np.abs(expected - got), initial=0.0))
    return difference if difference == difference else math.inf  # NaN must not vanish in max()


def build_verified(
    model: Any, features: Sequence[FeatureSpec], tolerance: float = DEFAULT_TOLERANCE
) -> FastModel | None:
    """Compile and verify; ``None`` (with the reason logged) when the fast path cannot be trusted."""
    try:
        fast = compile_model(model, features)
        difference = verify(fast, model, verification_rows(model, features), tolerance)
    except UnsupportedModelError as error:
        logger.info("serving through scikit-learn (no fast path): %s", error)
        return None
    logger.info("fast path %s verified: max |difference| %.3g on probe rows", fast.kind, difference)
    return fast
