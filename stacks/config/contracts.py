"""Read the table schema of a dataset contract (``contracts/<name>.yaml``) without ``pipelines`` or Pulumi.

The stack needs only what the Glue catalog needs: the curated columns, the feature job's output columns
and the model inputs. :mod:`pipelines.contract` is the full model of the file; this reader takes the
few keys it needs and fails with a message naming the file and the key.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import yaml

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"
"""The repository's contract folder (``contracts/``); model entries name a file in it."""
CONTRACTS_DIR_ENV = "MLOPS_CONTRACTS_DIR"
"""Environment variable naming another contracts folder (the rehearsal's, holding a user's contract)."""

SPLIT_COLUMN = "__split__"
"""Column the feature job adds with the row's split (``pipelines.contract.SPLIT_COLUMN``)."""

ContractType = Literal["integer", "float", "string", "boolean", "datetime"]
"""The column types of a contract."""
_TYPES: tuple[ContractType, ...] = ("integer", "float", "string", "boolean", "datetime")
_GLUE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_DERIVED_TYPE: ContractType = "float"
"""Every derived feature (``ratio``, ``log1p``, ...) is a float column."""


class ContractFileError(ValueError):
    """A contract file is missing or lacks a key the catalog needs."""


@dataclass(frozen=True)
class ContractColumn:
    """One column: name and contract type (``integer``, ``float``, ``string``, ``boolean``, ``datetime``)."""

    name: str
    """Column name."""
    type: ContractType
    """Contract type."""


@dataclass(frozen=True)
class ContractSchema:
    """What the Glue catalog needs from a contract."""

    name: str
    """The contract's ``name`` (the ``<dataset>`` of the lake's S3 layout)."""
    task: str
    """The contract's ``task`` (``binary_classification``, ``regression``...)."""
    columns: tuple[ContractColumn, ...]
    """Columns of the curated table, in file order."""
    feature_columns: tuple[ContractColumn, ...]
    """What the feature job writes: keys, numeric, derived, categorical, target, split."""
    model_inputs: tuple[str, ...]
    """Model inputs in the model's order: numeric, derived, categorical."""
    unique_keys: tuple[str, ...] = ()
    """The contract's ``unique_keys`` (a feature group's record identifier is the single key)."""
    event_time: str | None = None
    """The contract's ``event_time`` column (a ``datetime`` column), None when it names none."""
    quality_min: tuple[tuple[str, float], ...] = ()
    """``monitoring.quality_min``: (metric, floor) pairs the model-quality alarms watch."""
    quality_max: tuple[tuple[str, float], ...] = ()
    """``monitoring.quality_max``: (metric, ceiling) pairs."""


def default_contracts_dir() -> Path:
    """``$MLOPS_CONTRACTS_DIR`` when set (read at call time), else the repository's ``contracts/``."""
    folder = os.environ.get(CONTRACTS_DIR_ENV)
    return Path(folder) if folder else CONTRACTS_DIR


def contract_path(name: str, contracts_dir: Path | None = None) -> Path:
    """The file of contract ``name`` (in :func:`default_contracts_dir` unless ``contracts_dir`` is given)."""
    return (contracts_dir or default_contracts_dir()) / f"{name}.yaml"


def read_contract_schema(name: str, contracts_dir: Path | None = None) -> ContractSchema:
    """Read ``<contracts_dir>/<name>.yaml`` (default folder: :func:`default_contracts_dir`).

    Raises:
        ContractFileError: the file is missing, is not YAML, or lacks ``columns``/``features``/``target``.
    """
    path = contract_path(name, contracts_dir)
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ContractFileError(f"no contract file {path} (known contracts: {', '.join(known) or 'none'})")
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ContractFileError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ContractFileError(f"{path} must hold a mapping (a dataset contract)")

    def need(key: str, kind: type) -> Any:
        value = raw.get(key)
        if not isinstance(value, kind):
            raise ContractFileError(f"{path}: '{key}' is missing or not a {kind.__name__}")
        return value

    columns = []
    for i, col in enumerate(need("columns", list)):
        if (
            not isinstance(col, dict)
            or not isinstance(col.get("name"), str)
            or not isinstance(col.get("type"), str)
        ):
            raise ContractFileError(f"{path}: columns[{i}] needs a 'name' and a 'type'")
        if col["type"] not in _TYPES:
            raise ContractFileError(
                f"{path}: columns[{i}].type {col['type']!r} is not one of {', '.join(_TYPES)}"
            )
        if not _GLUE_NAME.match(col["name"]) or col["name"] == "ingest_date":
            raise ContractFileError(
                f"{path}: columns[{i}].name {col['name']!r} must be lowercase letters, digits and '_' "
                "(Glue lowercases names, Athena cannot query mixed case) and not 'ingest_date' (the partition)"
            )
        columns.append(ContractColumn(col["name"], cast(ContractType, col["type"])))
    by_name = {c.name: c for c in columns}
    features = need("features", dict)
    target = need("target", str)

    def listed(key: str) -> list[str]:
        names = features.get(key) or []
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise ContractFileError(f"{path}: features.{key} lists {unknown}, which are not columns")
        return list(names)

    numeric, categorical = listed("numeric"), listed("categorical")
    derived = [str(d["name"]) for d in features.get("derived") or [] if isinstance(d, dict) and "name" in d]
    keys = [str(k) for k in raw.get("unique_keys") or []]
    if target not in by_name or any(k not in by_name for k in keys):
        raise ContractFileError(f"{path}: target and unique_keys must be columns")
    fairness = raw.get("fairness")
    sensitive = fairness.get("sensitive_attributes") or [] if isinstance(fairness, dict) else []
    taken = {*keys, *numeric, *derived, *categorical, target}
    passthrough = [str(a) for a in sensitive if str(a) in by_name and str(a) not in taken]
    feature_columns = (
        *(by_name[k] for k in keys),
        *(by_name[n] for n in numeric),
        *(ContractColumn(d, _DERIVED_TYPE) for d in derived),
        *(by_name[c] for c in categorical),
        by_name[target],
        *(by_name[a] for a in dict.fromkeys(passthrough)),  # sensitive attributes, not model inputs
        ContractColumn(SPLIT_COLUMN, "string"),
    )
    event_time = raw.get("event_time")
    if event_time is not None and (
        not isinstance(event_time, str) or event_time not in by_name or by_name[event_time].type != "datetime"
    ):
        raise ContractFileError(f"{path}: event_time {event_time!r} must name a datetime column")
    monitoring = raw.get("monitoring") or {}
    if not isinstance(monitoring, dict):
        raise ContractFileError(f"{path}: 'monitoring' must be a mapping")

    def bounds(key: str) -> tuple[tuple[str, float], ...]:
        values = monitoring.get(key) or {}
        if not isinstance(values, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values.values()
        ):
            raise ContractFileError(f"{path}: monitoring.{key} must map metric names to numbers")
        return tuple((str(k), float(v)) for k, v in sorted(values.items()))

    return ContractSchema(
        quality_min=bounds("quality_min"),
        quality_max=bounds("quality_max"),
        name=str(raw.get("name") or name),
        unique_keys=tuple(keys),
        event_time=event_time,
        task=str(raw.get("task") or ""),
        columns=tuple(columns),
        feature_columns=feature_columns,
        model_inputs=(*numeric, *derived, *categorical),
    )
