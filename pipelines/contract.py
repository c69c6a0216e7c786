"""Dataset contract: a YAML file describing one dataset, and the pandera schema built from it.

Nothing in the pipeline knows a dataset's columns: they all come from a contract. The contract also
carries the feature declarations (for the Spark job), the training defaults and the evaluation gate,
so pointing the pipeline at a new table means writing one file (see ``contracts/*.yaml``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipelines.errors import InputRejectedError

if TYPE_CHECKING:
    import pandera.pandas as pa

ColumnType = Literal["integer", "float", "string", "boolean", "datetime"]
Task = Literal["binary_classification", "regression"]
DerivedOp = Literal["ratio", "log1p", "product", "difference"]

EVENT_TIME_DEFAULT = "event_time"
"""Event-time feature of a feature group when the contract names no ``event_time`` column: the ingestion
writes the batch's ingestion time (ISO-8601, UTC) into it, so records are versioned by when they landed."""

SPLIT_COLUMN = "__split__"
"""Column the feature job adds: ``train``, ``validation`` or ``test`` (deterministic by key hash)."""

CONTRACTS_DIR = Path(__file__).resolve().parent.parent / "contracts"
"""Contracts shipped with the repository (``contracts/`` at the top level)."""

# pandas dtype each contract type is coerced to (nullable extension types keep missing values).
PANDAS_DTYPES: dict[str, str] = {
    "integer": "Int64",
    "float": "float64",
    "string": "str",
    "boolean": "boolean",
    "datetime": "datetime64[ns]",
}


class ContractError(InputRejectedError, ValueError):
    """A contract file is missing or invalid; the message names the file and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Model):
    """One column: type, nullability and allowed values."""

    name: str
    type: ColumnType
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    categories: list[str | int | bool] | None = None
    description: str = ""


class DerivedFeature(_Model):
    """A numeric feature computed by the feature job from input columns (``op`` over ``inputs``)."""

    name: str
    op: DerivedOp
    inputs: list[str]

    @model_validator(mode="after")
    def _arity(self) -> DerivedFeature:
        expected = 1 if self.op == "log1p" else 2
        if len(self.inputs) != expected:
            raise ValueError(f"derived feature '{self.name}': op '{self.op}' takes {expected} input(s)")
        return self


class FeatureConfig(_Model):
    """Which columns feed the model, and derived numeric features built by the feature job."""

    numeric: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    derived: list[DerivedFeature] = Field(default_factory=list)


class SplitConfig(_Model):
    """Deterministic split shares (by a hash of the unique keys): the rest is the training split."""

    validation: float = 0.15
    test: float = 0.15


class TrainingConfig(_Model):
    """The scikit-learn estimator and its default hyperparameters (overridable per run)."""

    estimator: str = "logistic_regression"
    hyperparameters: dict[str, Any] = Field(default_factory=dict)


TUNING_OBJECTIVES: dict[str, tuple[str, ...]] = {
    "binary_classification": ("validation:auc", "validation:accuracy"),
    "regression": ("validation:rmse", "validation:r2"),
}
"""Objective metrics a tuning job can use, per task: what the training entry point prints
(``validation:<metric>=<value>``) and its MetricDefinitions name."""

Scaling = Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"]

# The platform limits TUNING_MAX_CATEGORICAL_VALUES and TUNING_MAX_HYPERPARAMETERS, repeated: this
# module runs inside the training container, whose source bundle carries ``pipelines`` only
# (tests/unit/pipelines/test_tuning.py checks the two agree).
MAX_CATEGORICAL_VALUES = 30
MAX_TUNED_HYPERPARAMETERS = 30


class TuningRange(_Model):
    """One searched hyperparameter: ``continuous``/``integer`` between ``min`` and ``max`` with a
    ``scaling``, or ``categorical`` over ``values`` (API_ParameterRanges.html)."""

    type: Literal["continuous", "integer", "categorical"]
    min: float | None = None
    max: float | None = None
    scaling: Scaling = "Auto"
    values: list[str | int | float | bool] = Field(default_factory=list)

    @model_validator(mode="after")
    def _valid(self) -> TuningRange:
        # Limits: https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-define-ranges.html
        # and https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-limits.html
        if self.type == "categorical":
            if self.min is not None or self.max is not None or self.scaling != "Auto":
                raise ValueError("a categorical range takes 'values' only (no min, max or scaling)")
            if not self.values:
                raise ValueError("a categorical range needs at least one entry under 'values'")
            if len(self.values) > MAX_CATEGORICAL_VALUES:
                raise ValueError(f"a categorical range takes at most {MAX_CATEGORICAL_VALUES} values")
            if len({str(v) for v in self.values}) != len(self.values):
                raise ValueError(f"categorical values must be distinct, got {self.values}")
            return self
        if self.values:
            raise ValueError(f"a {self.type} range takes 'min' and 'max', not 'values'")
        if self.min is None or self.max is None:
            raise ValueError(f"a {self.type} range needs both 'min' and 'max'")
        if not self.min < self.max:
            raise ValueError(f"'min' ({self.min}) must be below 'max' ({self.max})")
        if self.type == "integer" and (self.min != int(self.min) or self.max != int(self.max)):
            raise ValueError(f"an integer range needs whole 'min' and 'max', got {self.min}..{self.max}")
        if self.scaling == "Logarithmic" and self.min <= 0:
            raise ValueError("Logarithmic scaling needs 'min' above 0")
        if self.scaling == "ReverseLogarithmic":
            if self.type == "integer":
                raise ValueError("ReverseLogarithmic scaling is for continuous ranges only")
            if not (self.min >= 0 and self.max < 1):
                raise ValueError("ReverseLogarithmic scaling needs 0 <= min < max < 1")
        return self


class TuningObjective(_Model):
    """The metric the tuning job optimises and its direction."""

    metric: str
    type: Literal["Maximize", "Minimize"]


class TuningConfig(_Model):
    """Hyperparameter tuning (optional): the search space, the objective and the strategy.

    How many trials run, and how many at once, is the stack config's (per model and environment).
    ``Bayesian`` runs as a seeded random search in the rehearsal (the emulator has no Bayesian model).
    """

    objective: TuningObjective
    strategy: Literal["Bayesian", "Random"] = "Bayesian"
    parameters: dict[str, TuningRange]

    @model_validator(mode="after")
    def _valid(self) -> TuningConfig:
        if not self.parameters:
            raise ValueError("name at least one hyperparameter to search under 'parameters'")
        if len(self.parameters) > MAX_TUNED_HYPERPARAMETERS:
            raise ValueError(f"at most {MAX_TUNED_HYPERPARAMETERS} hyperparameters can be searched")
        return self


class BehaviouralCheck(_Model):
    """An invariance (changing ``column`` to each of ``values`` moves scores by at most ``tolerance``)
    or directional (adding ``delta`` to ``column`` moves the mean score in direction ``expect``) check."""

    kind: Literal["invariance", "directional"]
    column: str
    values: list[Any] = Field(default_factory=list)
    tolerance: float = 0.05
    delta: float = 0.0
    expect: Literal["increase", "decrease"] = "increase"
    rows: int = 500


class ChampionConfig(_Model):
    """Champion/challenger rule: the challenger may not be worse than the approved model by > ``margin``."""

    metric: str | None = None
    margin: float = 0.01


class ExplainabilityConfig(_Model):
    """Global feature importance at evaluation: permutation importance on (a seeded sample of) the test split."""

    enabled: bool = True
    n_repeats: int = Field(default=5, ge=1, le=50)
    max_rows: int = Field(default=1000, ge=50)


class EvaluationConfig(_Model):
    """Quality gate: absolute bounds on metrics, champion rule, behavioural checks."""

    min: dict[str, float] = Field(default_factory=dict)
    max: dict[str, float] = Field(default_factory=dict)
    champion: ChampionConfig = Field(default_factory=ChampionConfig)
    behavioural: list[BehaviouralCheck] = Field(default_factory=list)
    explainability: ExplainabilityConfig = Field(default_factory=ExplainabilityConfig)


class FairnessConfig(_Model):
    """Group fairness of a classifier over sensitive attributes, with the gate's maximum differences.

    The differences are fairlearn's: demographic parity difference (largest gap in selection rate between
    groups) and equalized odds difference (the larger of the largest TPR gap and the largest FPR gap).
    A threshold left out is reported but not enforced.
    """

    sensitive_attributes: list[str] = Field(min_length=1)
    max_demographic_parity_difference: float | None = Field(default=None, ge=0, le=1)
    max_equalized_odds_difference: float | None = Field(default=None, ge=0, le=1)


RiskRating = Literal["High", "Medium", "Low", "Unknown"]


class GovernanceConfig(_Model):
    """What the model card says beyond the measurements: intended use, risk rating, limitations."""

    intended_use: str = (
        "Not stated in the contract: add governance.intended_use before relying on this model."
    )
    purpose: str = ""
    risk_rating: RiskRating = "Unknown"
    risk_explanation: str = ""
    limitations: list[str] = Field(default_factory=list)
    ethical_considerations: str = ""
    owner: str = ""


_QUALITY_METRICS = {
    True: frozenset({"auc", "accuracy", "f1", "precision", "recall", "log_loss", "calibration_error"}),
    False: frozenset({"rmse", "mae", "r2"}),
}
"""What the monitor computes from ground truth (classification, regression): what floors may name."""


class MonitoringConfig(_Model):
    """Model-quality monitoring: segments, floors on the realized metrics, labels needed for a metric."""

    segments: list[str] = Field(default_factory=list)
    """Columns whose values split the quality metrics (model inputs, or columns sent with the labels)."""
    quality_min: dict[str, float] = Field(default_factory=dict)
    """Metric -> floor (e.g. ``{auc: 0.7}``): below it the quality alarm fires and the monitor retrains."""
    quality_max: dict[str, float] = Field(default_factory=dict)
    """Metric -> ceiling (e.g. ``{rmse: 40000}``)."""
    min_labelled_rows: int = Field(default=100, ge=1)
    """No metric (and no floor check) from fewer labelled rows in a window or segment."""


class DatasetContract(_Model):
    """A dataset's contract: columns, keys, target, task, features, training and evaluation config."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    version: int = 1
    description: str = ""
    task: Task
    target: str
    positive_class: str | int | bool | None = None
    unique_keys: list[str] = Field(default_factory=list)
    event_time: str | None = None
    """A ``datetime`` column holding when each record's values were true (the feature store's event time
    and the point-in-time join key). None: the ingestion time, in the column :data:`EVENT_TIME_DEFAULT`."""
    extra_columns: Literal["reject", "drop", "allow"] = "reject"
    delimiter: str = ","
    columns: list[ColumnSpec]
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    fairness: FairnessConfig | None = None
    governance: GovernanceConfig = Field(default_factory=GovernanceConfig)
    tuning: TuningConfig | None = None
    """Hyperparameter tuning of the training step (None: one training job with the defaults)."""

    @model_validator(mode="after")
    def _consistent(self) -> DatasetContract:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError("column names must be unique")
        missing = [
            n
            for n in [self.target, *self.unique_keys, *self.features.numeric, *self.features.categorical]
            if n not in names
        ]
        missing += [i for d in self.features.derived for i in d.inputs if i not in names]
        if missing:
            raise ValueError(f"names not declared under 'columns': {sorted(set(missing))}")
        if self.event_time is not None:
            if self.event_time not in names:
                raise ValueError(f"event_time '{self.event_time}' is not declared under 'columns'")
            if self.column(self.event_time).type != "datetime":
                raise ValueError(f"event_time '{self.event_time}' must be a datetime column")
            if self.event_time in (self.target, *self.unique_keys, *self.feature_names):
                raise ValueError(
                    f"event_time '{self.event_time}' cannot also be the target, a key or a feature"
                )
        unknown_segments = [c for c in self.monitoring.segments if c not in names]
        if unknown_segments:
            raise ValueError(f"monitoring.segments names undeclared columns: {unknown_segments}")
        known = _QUALITY_METRICS[self.task == "binary_classification"]
        bad = sorted(
            m for m in [*self.monitoring.quality_min, *self.monitoring.quality_max] if m not in known
        )
        if bad:
            raise ValueError(f"monitoring quality floors name unknown metrics {bad}; known: {sorted(known)}")
        if self.task == "binary_classification" and self.positive_class is None:
            raise ValueError("binary_classification needs 'positive_class'")
        if self.target in self.feature_names:
            raise ValueError(f"the target '{self.target}' cannot also be a feature")
        if not self.feature_names:
            raise ValueError("declare at least one feature under features.numeric/categorical/derived")
        if self.fairness is not None:
            self._check_fairness(self.fairness, names)
        if self.tuning is not None:
            self._check_tuning(self.tuning)
        return self

    def _check_fairness(self, fairness: FairnessConfig, names: list[str]) -> None:
        if not self.is_classification:
            raise ValueError(
                "fairness: group fairness (demographic parity, equalized odds) needs predicted classes, so it "
                f"applies to binary_classification only; remove the 'fairness' section from this {self.task} "
                "contract"
            )
        for attribute in fairness.sensitive_attributes:
            if attribute not in names:
                raise ValueError(
                    f"fairness.sensitive_attributes: '{attribute}' is not declared under 'columns' "
                    f"(declared: {names})"
                )
            if attribute == self.target:
                raise ValueError(f"fairness.sensitive_attributes: '{attribute}' is the target")
            kind = self.column(attribute).type
            if kind in ("float", "datetime"):
                raise ValueError(
                    f"fairness.sensitive_attributes: '{attribute}' is a {kind} column; a sensitive attribute "
                    "must name groups (a string, boolean or integer column, e.g. an age band)"
                )
        if len(set(fairness.sensitive_attributes)) != len(fairness.sensitive_attributes):
            raise ValueError("fairness.sensitive_attributes lists a column twice")

    @property
    def sensitive_attributes(self) -> list[str]:
        """The contract's sensitive attributes (empty without a ``fairness`` section)."""
        return list(self.fairness.sensitive_attributes) if self.fairness else []

    @property
    def passthrough_columns(self) -> list[str]:
        """Columns the feature job carries that are not keys, features or the target: sensitive attributes
        that are not model inputs (evaluation groups rows by them; the model never sees them)."""
        taken = {*self.unique_keys, *self.feature_names, self.target}
        return [a for a in self.sensitive_attributes if a not in taken]

    def _check_tuning(self, tuning: TuningConfig) -> None:
        objectives = TUNING_OBJECTIVES[self.task]
        if tuning.objective.metric not in objectives:
            raise ValueError(
                f"tuning.objective.metric '{tuning.objective.metric}' is not a metric the training job "
                f"reports for {self.task}; choose one of {list(objectives)}"
            )
        clash = sorted(set(tuning.parameters) & {"contract", "code_version", "run_id", "estimator"})
        if clash:
            raise ValueError(f"tuning.parameters cannot search {clash}: the pipeline sets them")

    @property
    def event_time_column(self) -> str:
        """The event-time column: :attr:`event_time`, else :data:`EVENT_TIME_DEFAULT` (ingestion time)."""
        return self.event_time or EVENT_TIME_DEFAULT

    @property
    def column_names(self) -> list[str]:
        """Declared column names in contract order."""
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSpec:
        """The spec of column ``name`` (KeyError when not declared)."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def feature_kinds(self) -> list[tuple[str, str]]:
        """Model inputs in the order the model expects them: ``(name, 'numeric'|'categorical')``."""
        kinds = [(n, "numeric") for n in self.features.numeric]
        kinds += [(d.name, "numeric") for d in self.features.derived]
        kinds += [(n, "categorical") for n in self.features.categorical]
        return kinds

    @property
    def feature_names(self) -> list[str]:
        """Model input column names, in order."""
        return [name for name, _ in self.feature_kinds]

    @property
    def is_classification(self) -> bool:
        """True for binary classification."""
        return self.task == "binary_classification"


def parse_contract(data: dict[str, Any], source: str = "<contract>") -> DatasetContract:
    """Validate a contract mapping; raise :class:`ContractError` naming the source and the field."""
    try:
        return DatasetContract.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors())
        raise ContractError(f"invalid contract {source}: {problems}") from None


def contract_sha256(contract: DatasetContract) -> str:
    """SHA-256 of the contract's parsed content (canonical JSON: comments and key order do not count)."""
    import hashlib
    import json

    canonical = json.dumps(contract.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def load_contract(path_or_name: str | Path) -> DatasetContract:
    """Load a contract from a YAML/JSON path, or by name from the shipped ``contracts/`` folder."""
    path = resolve_contract_path(path_or_name)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ContractError(f"contract {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ContractError(f"contract {path} must be a mapping at the top level")
    return parse_contract(data, str(path))


def resolve_contract_path(path_or_name: str | Path) -> Path:
    """A contract file path: the path itself, else ``<name>.yaml`` in ``./contracts`` or the repo's ``contracts/``."""
    path = Path(path_or_name)
    if path.is_file():
        return path
    if path.suffix == "":
        for folder in (Path.cwd() / "contracts", CONTRACTS_DIR):
            candidate = folder / f"{path_or_name}.yaml"
            if candidate.is_file():
                return candidate
    raise ContractError(
        f"contract not found: {path_or_name} (give a YAML file path, or a name of a file in ./contracts)"
    )


def contract_text(path_or_name: str | Path) -> str:
    """The verbatim text of a contract file (copied into model artifacts)."""
    return resolve_contract_path(path_or_name).read_text()


def pandera_schema(contract: DatasetContract, columns: list[str] | None = None) -> pa.DataFrameSchema:
    """The pandera schema for ``contract`` (types coerced, ranges, categories, nulls, unique keys).

    ``columns`` restricts the schema to the columns present (missing ones are reported separately).
    """
    import pandera.pandas as pa

    schema_columns: dict[str, pa.Column] = {}
    for col in contract.columns:
        if columns is not None and col.name not in columns:
            continue
        checks: list[pa.Check] = []
        if col.min is not None:
            checks.append(pa.Check.ge(col.min))
        if col.max is not None:
            checks.append(pa.Check.le(col.max))
        if col.categories is not None:
            checks.append(pa.Check.isin(col.categories))
        schema_columns[col.name] = pa.Column(
            PANDAS_DTYPES[col.type], checks=checks, nullable=col.nullable, coerce=True, required=True
        )
    keys = [k for k in contract.unique_keys if columns is None or k in columns]
    return pa.DataFrameSchema(
        schema_columns,
        unique=keys or None,
        strict=False,
        name=contract.name,
    )
