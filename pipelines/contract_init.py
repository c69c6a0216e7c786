"""Draft a dataset contract from a CSV or Parquet file, for the user to read and edit.

The draft records what the data shows (types, nullability, observed ranges, the categories of
low-cardinality text columns), picks the features, and adds training and gate defaults for the task.
It always loads with :func:`pipelines.contract.load_contract`; the header comment says what was guessed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast

from pipelines.errors import PipelineError

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_MAX_CATEGORIES = 20
"""Text columns with at most this many distinct values become categorical features."""

KEY_NAME = re.compile(r"(^id$|_id$|^id_|uuid|_key$|^key$)", re.IGNORECASE)
TARGET_NAMES = ("target", "label", "y", "class", "outcome", "churned", "churn", "price")

# Training and gate defaults of a draft: deliberately modest; the header asks the user to set their bar.
DEFAULT_TRAINING: dict[str, dict[str, Any]] = {
    "binary_classification": {
        "estimator": "logistic_regression",
        "hyperparameters": {"C": 1.0, "max_iter": 1000, "seed": 42},
    },
    "regression": {
        "estimator": "hist_gradient_boosting_regressor",
        "hyperparameters": {"max_iter": 200, "seed": 42},
    },
}
DEFAULT_GATE: dict[str, dict[str, Any]] = {
    "binary_classification": {"min": {"auc": 0.6}, "champion": {"metric": "auc", "margin": 0.01}},
    "regression": {"min": {"r2": 0.1}, "champion": {"metric": "rmse", "margin": 0.05}},
}


class DraftError(PipelineError):
    """The data file cannot be read or cannot give a contract (no columns, unknown target...)."""

    exit_code: ClassVar[int] = 2


@dataclass(frozen=True)
class DraftOptions:
    """What the user asked for on the command line."""

    name: str | None = None
    """Contract name (default: the file name, normalised to ``[a-z0-9][a-z0-9_-]*``)."""
    target: str | None = None
    """The column to predict; guessed when ``None``."""
    key: list[str] = field(default_factory=list)
    """Unique key column(s); guessed only with ``guess_key``."""
    guess_key: bool = False
    task: Literal["binary_classification", "regression"] | None = None
    """Task (default: binary classification for a two-valued target, else regression)."""
    max_categories: int = DEFAULT_MAX_CATEGORIES


@dataclass
class Draft:
    """A drafted contract and the notes for the YAML header."""

    contract: dict[str, Any]
    notes: list[str]

    def to_yaml(self) -> str:
        """The contract as YAML with the notes as a header comment."""
        import yaml

        header = ["# Drafted by `mlops contract init`: read every line, then run `mlops contract check`."]
        header += [f"# - {note}" for note in self.notes]
        body = yaml.safe_dump(
            self.contract, sort_keys=False, default_flow_style=None, width=110, allow_unicode=True
        )
        return "\n".join(header) + "\n" + body


def read_table(path: Path, delimiter: str = ",") -> pd.DataFrame:
    """Read a ``.csv`` (any other suffix is read as CSV too) or ``.parquet`` file."""
    import pandas as pd

    if not path.is_file():
        raise DraftError(f"data file not found: {path}", hint="give the path of a CSV or Parquet file")
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, sep=delimiter, low_memory=False)
    except Exception as error:  # pandas/pyarrow raise many types for unreadable files
        raise DraftError(
            f"cannot read {path} as {'Parquet' if path.suffix.lower() in {'.parquet', '.pq'} else 'CSV'}: {error}"
        ) from None
    if frame.shape[1] == 0 or len(frame) == 0:
        raise DraftError(f"{path} has no rows or no columns; a contract is drafted from data")
    return frame


def contract_name(stem: str) -> str:
    """``My Data.v2`` -> ``my_data_v2``: a name the contract accepts."""
    name = re.sub(r"[^a-z0-9_-]+", "_", stem.lower()).strip("_-")
    return name if name and name[0].isalnum() else f"dataset_{name}".rstrip("_")


def _plain(value: Any) -> Any:
    """A numpy/pandas scalar as a YAML-friendly Python value."""
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _column_type(series: pd.Series) -> str:
    import pandas as pd
    from pandas.api import types

    values = series.dropna()
    if types.is_bool_dtype(series.dtype):
        return "boolean"
    if types.is_integer_dtype(series.dtype):
        return "integer"
    if types.is_float_dtype(series.dtype):
        integral = len(values) > 0 and bool((values == values.round()).all()) and series.isna().any()
        return "integer" if integral else "float"
    if types.is_datetime64_any_dtype(series.dtype):
        return "datetime"
    if len(values) and values.map(lambda v: isinstance(v, str)).all():
        lowered = set(values.str.lower().unique())
        if lowered <= {"true", "false"}:
            return "boolean"
        if values.str.match(r"^\d{4}-\d{2}-\d{2}").all():
            parsed = pd.to_datetime(values, errors="coerce", format="ISO8601")
            if not parsed.isna().any():
                return "datetime"
    return "string"


def _column_spec(name: str, series: pd.Series, kind: str, max_categories: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "type": kind}
    if series.isna().any():
        spec["nullable"] = True
    values = series.dropna()
    if kind in {"integer", "float"} and len(values):
        low, high = float(values.min()), float(values.max())
        spec["min"] = _plain(math.floor(low) if kind == "integer" else low)
        spec["max"] = _plain(math.ceil(high) if kind == "integer" else high)
    if kind == "string":
        distinct = values.unique()
        if 0 < len(distinct) <= max_categories:
            spec["categories"] = sorted(str(v) for v in distinct)
    return spec


def _guess_key(series: dict[str, pd.Series], kinds: dict[str, str]) -> str | None:
    candidates = [
        c
        for c, values in series.items()
        if kinds[c] in {"string", "integer"} and bool(values.notna().all()) and values.is_unique
    ]
    named = [c for c in candidates if KEY_NAME.search(str(c))]
    return (named or candidates or [None])[0]


def _guess_target(frame: pd.DataFrame, exclude: set[str]) -> str:
    columns = [str(c) for c in frame.columns if c not in exclude]
    for wanted in TARGET_NAMES:
        for column in columns:
            if column.lower() == wanted:
                return column
    return columns[-1]


def _positive_class(values: list[Any]) -> Any:
    for preferred in (1, True, "1", "yes", "true", "positive"):
        for value in values:
            if value == preferred or (isinstance(value, str) and value.lower() == str(preferred).lower()):
                return value
    return max(values, key=str)


def draft_contract(frame: pd.DataFrame, options: DraftOptions, source_name: str = "data") -> Draft:
    """Draft a contract for ``frame``: columns, features, target and task, training and gate defaults."""
    frame = frame.rename(columns=str)
    series = {str(name): cast("pd.Series", frame[name]) for name in frame.columns}
    notes: list[str] = []
    kinds = {name: _column_type(values) for name, values in series.items()}
    missing = [k for k in [*options.key, *([options.target] if options.target else [])] if k not in kinds]
    if missing:
        raise DraftError(
            f"column(s) {missing} not in the data; its columns are {list(kinds)[:20]}",
            hint="check --target/--key against the file's header",
        )
    keys = list(options.key)
    if not keys and options.guess_key:
        guessed = _guess_key(series, kinds)
        if guessed is not None:
            keys = [guessed]
            notes.append(f"unique_keys guessed: '{guessed}' (non-null and unique in this file)")
        else:
            notes.append("no column is unique and non-null: no unique_keys (rows split by all columns)")
    target = options.target
    if target is None:
        target = _guess_target(frame, set(keys))
        notes.append(f"target GUESSED as '{target}': set `target` (and `task`) to the column to predict")
    distinct = series[target].dropna().unique().tolist()
    task = options.task or ("binary_classification" if len(distinct) == 2 else "regression")
    if task == "regression" and kinds[target] not in {"integer", "float"}:
        raise DraftError(
            f"target '{target}' is {kinds[target]} with {len(distinct)} distinct values: regression needs numbers",
            hint="pick a numeric target, or a two-valued one for binary classification (--task binary_classification)",
        )
    if task == "binary_classification" and len(distinct) != 2:
        raise DraftError(
            f"target '{target}' has {len(distinct)} distinct values; binary classification needs exactly 2",
            hint="pick a two-valued target or use --task regression",
        )

    columns: list[dict[str, Any]] = []
    numeric: list[str] = []
    categorical: list[str] = []
    for name, values in series.items():
        spec = _column_spec(name, values, kinds[name], options.max_categories)
        if name == target and task == "binary_classification":
            spec.pop("min", None)
            spec.pop("max", None)
            spec["categories"] = sorted((_plain(v) for v in distinct), key=str)
            if kinds[name] == "float":
                spec["type"] = "integer"
        if name in keys:
            spec.pop("categories", None)
        columns.append(spec)
        if name == target or name in keys or bool(values.isna().all()):
            continue
        if spec["type"] in {"integer", "float"}:
            numeric.append(name)
        elif spec["type"] == "boolean" or spec.get("categories"):
            categorical.append(name)
        elif spec["type"] == "string":
            notes.append(f"'{name}' has {values.nunique()} distinct texts: left out of the features")
        else:
            notes.append(f"'{name}' is a {spec['type']}: left out of the features (derive numbers from it)")
    if not numeric and not categorical:
        raise DraftError("no column can be a feature (all are keys, the target, empty or free text)")

    contract: dict[str, Any] = {
        "name": options.name or contract_name(Path(source_name).stem),
        "version": 1,
        "description": f"Drafted from {Path(source_name).name} ({len(frame)} rows).",
        "task": task,
        "target": target,
    }
    if task == "binary_classification":
        positive = _positive_class([_plain(v) for v in distinct])
        contract["positive_class"] = positive
        notes.append(f"positive_class: {positive!r} (the class whose probability is the score)")
    contract["unique_keys"] = keys
    contract["extra_columns"] = "reject"
    contract["columns"] = columns
    features: dict[str, Any] = {}
    if numeric:
        features["numeric"] = numeric
    if categorical:
        features["categorical"] = categorical
    contract["features"] = features
    contract["split"] = {"validation": 0.15, "test": 0.15}
    contract["training"] = DEFAULT_TRAINING[task]
    contract["evaluation"] = DEFAULT_GATE[task]
    notes.append("min/max are the observed ranges: widen them to what valid data may hold")
    notes.append("evaluation thresholds are modest defaults: set the bar your model must pass")
    return Draft(contract, notes)


def init_contract(
    data_path: Path, output: Path, options: DraftOptions, overwrite: bool = False, delimiter: str = ","
) -> Draft:
    """Draft a contract from ``data_path`` and write it to ``output``; it loads with ``load_contract``."""
    from pipelines.contract import load_contract

    if output.exists() and not overwrite:
        raise DraftError(
            f"{output} exists; refusing to overwrite your contract", hint="pass --force or -o NEW.yaml"
        )
    draft = draft_contract(read_table(data_path, delimiter), options, data_path.name)
    if delimiter != ",":
        draft.contract = {**draft.contract, "delimiter": delimiter}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(draft.to_yaml())
    load_contract(output)  # a draft that does not load is a bug here, never the user's to fix
    return draft
