"""Seeded synthetic datasets: customer churn (classification) and housing prices (regression).

Both are realistic enough to learn from and accept a :class:`DriftSpec` to shift numeric
distributions, change category frequencies or shift the label, for drift and retraining tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import InputRejectedError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from pipelines.contract import DatasetContract


@dataclass(frozen=True)
class DriftSpec:
    """Drift to inject: numeric ``scale``/``shift`` per column, category ``weights``, label logit shift."""

    numeric_scale: dict[str, float] = field(default_factory=dict)
    numeric_shift: dict[str, float] = field(default_factory=dict)
    category_weights: dict[str, dict[str, float]] = field(default_factory=dict)
    label_shift: float = 0.0


NO_DRIFT = DriftSpec()


def _choice(
    rng: np.random.Generator,
    column: str,
    categories: list[str],
    weights: list[float],
    drift: DriftSpec,
    n: int,
) -> np.ndarray:
    import numpy as np

    override = drift.category_weights.get(column)
    if override:
        weights = [override.get(c, 0.0) for c in categories]
    p = np.asarray(weights, dtype=float)
    return rng.choice(np.asarray(categories, dtype=object), size=n, p=p / p.sum())


def _drifted(values: np.ndarray, column: str, drift: DriftSpec) -> np.ndarray:
    return values * drift.numeric_scale.get(column, 1.0) + drift.numeric_shift.get(column, 0.0)


def generate_churn(
    rows: int = 5000, seed: int = 42, drift: DriftSpec = NO_DRIFT, id_offset: int = 0
) -> pd.DataFrame:
    """Customer churn rows matching ``contracts/churn.yaml``; same ``seed`` gives the same frame."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n = rows
    contract_type = _choice(
        rng, "contract_type", ["month-to-month", "one-year", "two-year"], [0.55, 0.25, 0.2], drift, n
    )
    internet = _choice(rng, "internet_service", ["dsl", "fiber", "none"], [0.35, 0.45, 0.2], drift, n)
    payment = _choice(
        rng,
        "payment_method",
        ["card", "bank_transfer", "electronic_check", "mailed_check"],
        [0.25, 0.25, 0.35, 0.15],
        drift,
        n,
    )
    region = _choice(rng, "region", ["north", "south", "east", "west"], [0.25, 0.25, 0.25, 0.25], drift, n)
    paperless = rng.random(n) < 0.6
    tenure = np.clip(np.rint(_drifted(rng.exponential(22, n), "tenure_months", drift)), 0, 72).astype(int)
    base = np.select([internet == "fiber", internet == "dsl"], [80.0, 50.0], 22.0)
    monthly = np.clip(_drifted(base + rng.normal(0, 9, n), "monthly_charges", drift), 18, 150).round(2)
    total = (tenure * monthly * (1 + rng.normal(0, 0.04, n))).clip(0).round(2)
    total_series = pd.Series(total).where(tenure > 0)  # new customers have no bill yet
    support = np.clip(
        _drifted(rng.poisson(1.2 + 0.8 * (internet == "fiber"), n).astype(float), "support_calls", drift),
        0,
        20,
    ).astype(int)
    logit = (
        -1.6
        + 1.4 * (contract_type == "month-to-month")
        - 0.9 * (contract_type == "two-year")
        - 0.045 * tenure
        + 0.5 * (internet == "fiber")
        + 0.45 * support
        + 0.45 * (payment == "electronic_check")
        + 0.012 * (monthly - 65)
        + 0.2 * paperless
        + drift.label_shift
    )
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    signup = pd.DatetimeIndex(pd.Timestamp("2026-10-01") - pd.to_timedelta(tenure * 30, unit="D"))
    return pd.DataFrame(
        {
            "customer_id": [f"CUST-{i:08d}" for i in range(id_offset, id_offset + n)],
            "signup_date": signup.strftime("%Y-%m-%d"),
            "tenure_months": tenure,
            "contract_type": contract_type,
            "internet_service": internet,
            "payment_method": payment,
            "region": region,
            "paperless_billing": paperless,
            "monthly_charges": monthly,
            "total_charges": total_series,
            "support_calls": support,
            "churned": churned,
        }
    )


def generate_housing(
    rows: int = 3000, seed: int = 7, drift: DriftSpec = NO_DRIFT, id_offset: int = 0
) -> pd.DataFrame:
    """House sale prices matching ``contracts/housing.yaml`` (a regression dataset)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n = rows
    hood = _choice(
        rng, "neighbourhood", ["central", "suburb", "rural", "coastal"], [0.3, 0.4, 0.2, 0.1], drift, n
    )
    bedrooms = np.clip(rng.poisson(2.2, n) + 1, 1, 8)
    area = np.clip(_drifted(bedrooms * 28 + rng.normal(25, 15, n), "area_sqm", drift), 25, 600).round(1)
    age = np.clip(_drifted(rng.gamma(2.0, 15.0, n), "age_years", drift), 0, 150).round().astype(int)
    garden = rng.random(n) < np.where(hood == "central", 0.15, 0.6)
    per_sqm = np.select(
        [hood == "central", hood == "coastal", hood == "suburb"], [6500.0, 5200.0, 3800.0], 2400.0
    )
    price = area * per_sqm * (1 - 0.0025 * age) + 18000 * garden + rng.normal(0, 25000, n)
    price = np.clip(price * (1 + drift.label_shift), 20000, None).round(-2)
    return pd.DataFrame(
        {
            "house_id": [f"H{i:07d}" for i in range(id_offset, id_offset + n)],
            "neighbourhood": hood,
            "bedrooms": bedrooms.astype(int),
            "area_sqm": area,
            "age_years": age,
            "has_garden": garden,
            "price": price,
        }
    )


class UnknownGeneratorError(InputRejectedError, ValueError):
    """No generator for the dataset, or an output file type it cannot write."""


GENERATORS: dict[str, Callable[..., pd.DataFrame]] = {"churn": generate_churn, "housing": generate_housing}
"""Generators by dataset name (the contract ``name``)."""


def generate(
    dataset: str, rows: int, seed: int, drift: DriftSpec = NO_DRIFT, id_offset: int = 0
) -> pd.DataFrame:
    """Generate ``rows`` rows of ``dataset`` (a key of :data:`GENERATORS`)."""
    if dataset not in GENERATORS:
        raise UnknownGeneratorError(f"no generator for dataset '{dataset}'; known: {sorted(GENERATORS)}")
    return GENERATORS[dataset](rows=rows, seed=seed, drift=drift, id_offset=id_offset)


def write_frame(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` as CSV or Parquet by the file suffix; return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        raise UnknownGeneratorError(f"unsupported file type {path.suffix!r}: use .csv or .parquet")
    return path


# --- drift derived from a contract (any dataset: the user's own rows, shifted) ------------------

NUMERIC_SHIFT_STDS = 1.0
"""A drifted numeric column moves by this many of its own standard deviations (Wasserstein/std ~ 1,
ten times the drift engine's 0.1 threshold; KS rejects it at any traffic size the rehearsal sends)."""
CATEGORY_SHARE = 0.8
"""Share of a drifted categorical column's rows moved to its least frequent category."""


@dataclass(frozen=True)
class ColumnDrift:
    """One drifted column: numeric ``shift`` (added, clipped to the contract's bounds) or a categorical
    move of ``share`` of the rows to ``category``."""

    column: str
    kind: str
    """``"shift"`` (numeric) or ``"category"``."""
    shift: float = 0.0
    category: str | int | bool | None = None
    share: float = 0.0
    low: float | None = None
    high: float | None = None
    integer: bool = False

    def describe(self) -> str:
        """One line for reports: what was done to the column."""
        if self.kind == "shift":
            return f"{self.column}: {self.shift:+.4g}"
        return f"{self.column}: {self.share:.0%} of rows -> {self.category!r}"


@dataclass(frozen=True)
class FrameDrift:
    """Drift for a dataset's own rows, derived from its contract (:func:`plan_frame_drift`)."""

    columns: tuple[ColumnDrift, ...]

    @property
    def features(self) -> list[str]:
        """The drifted contract columns, in plan order."""
        return [c.column for c in self.columns]

    def apply(self, frame: pd.DataFrame, seed: int) -> pd.DataFrame:
        """A copy of ``frame`` with every planned column drifted (nulls stay null)."""
        import numpy as np
        import pandas as pd

        rng = np.random.default_rng(seed)
        out = frame.copy()
        for drift in self.columns:
            values = out[drift.column]
            if drift.kind == "shift":
                numbers = _numbers(values) + drift.shift
                shifted = pd.Series(np.clip(numbers, drift.low, drift.high), index=out.index)
                if drift.integer:
                    rounded = shifted.round()
                    shifted = (
                        rounded.astype(values.dtype) if rounded.notna().all() else rounded.astype("Int64")
                    )
                out[drift.column] = shifted
            else:
                move = (rng.random(len(out)) < drift.share) & values.notna().to_numpy()
                column = values.astype(object).copy()
                column[move] = drift.category
                out[drift.column] = column.astype(values.dtype) if values.dtype == bool else column
        return out


def plan_frame_drift(contract: DatasetContract, frame: pd.DataFrame, drift_share: float = 0.5) -> FrameDrift:
    """Which of ``contract``'s columns to drift in ``frame`` (the dataset's own rows), and how.

        Candidates are the contract's numeric and categorical features (never the target, a unique key,
        the event time or a derived feature; derived features follow their inputs), taken alternately
        numeric/categorical in contract order. A numeric column shifts by :data:`NUMERIC_SHIFT_STDS` of its
        standard deviation in ``frame`` (downwards when its ``max`` leaves less room above than its ``min``
    below, and less than two shifts; values are clipped to the bounds); a categorical
        one moves :data:`CATEGORY_SHARE` of its rows to its least frequent value. Enough columns drift that
        the share of drifted model inputs clears ``drift_share`` with a margin (a fifth of the inputs, at
        least one): the dataset drift decision must not hinge on one feature's test.

        Raises:
            ValueError: no candidate column can drift (every one is constant in ``frame``).
    """
    import math

    import numpy as np

    excluded = {contract.target, *contract.unique_keys, contract.event_time}
    specs = {c.name: c for c in contract.columns}
    numeric: list[ColumnDrift] = []
    categorical: list[ColumnDrift] = []
    for name in contract.features.numeric:
        if name in excluded or name not in frame.columns:
            continue
        spec = specs.get(name)
        numbers = _numbers(frame[name])
        values = numbers[~np.isnan(numbers)]
        std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        if not std > 0:
            continue
        integer = spec is not None and spec.type == "integer"
        shift = NUMERIC_SHIFT_STDS * std
        shift = float(max(1, round(shift))) if integer else shift
        high = spec.max if spec is not None else None
        low = spec.min if spec is not None else None
        mean = float(values.mean())
        room_up = math.inf if high is None else high - mean
        room_down = math.inf if low is None else mean - low
        if room_up < 2 * shift and room_down > room_up:  # most of the mass would pile up at the max
            shift = -shift
        numeric.append(ColumnDrift(name, "shift", shift=shift, low=low, high=high, integer=integer))
    for name in contract.features.categorical:
        if name in excluded or name not in frame.columns:
            continue
        counts = frame[name].dropna().value_counts()
        if len(counts) < 2:
            continue
        minority: Any = counts.index[-1]
        value = minority.item() if isinstance(minority, np.generic) else minority
        categorical.append(ColumnDrift(name, "category", category=value, share=CATEGORY_SHARE))
    candidates = [c for pair in _interleave(numeric, categorical) for c in pair]
    if not candidates:
        raise ValueError(
            f"no feature of contract {contract.name!r} can be drifted: every numeric and categorical "
            "feature is constant in the data (or is the target, a key or the event time)"
        )
    inputs = len(contract.feature_names)
    wanted = math.ceil(drift_share * inputs) + max(1, math.ceil(0.2 * inputs))
    return FrameDrift(tuple(candidates[: min(wanted, len(candidates))]))


def _numbers(values: Any) -> np.ndarray:
    """The column as floats (NaN where missing or not a number)."""
    import numpy as np
    import pandas as pd

    return np.asarray(pd.to_numeric(values, errors="coerce"), dtype=float)


def _interleave(first: list[ColumnDrift], second: list[ColumnDrift]) -> list[tuple[ColumnDrift, ...]]:
    from itertools import zip_longest

    return [tuple(c for c in pair if c is not None) for pair in zip_longest(first, second)]


def derived_from(contract: DatasetContract, columns: list[str]) -> list[str]:
    """The contract's derived features with an input among ``columns`` (they drift with them)."""
    return [d.name for d in contract.features.derived if set(d.inputs) & set(columns)]
