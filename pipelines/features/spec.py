"""The feature job's spec (built from a contract) and a pandas reference implementation of the job."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from pipelines.features.spark_job import SPLIT_BUCKETS, SPLIT_COLUMN

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.contract import DatasetContract


def feature_spec(contract: DatasetContract) -> dict[str, Any]:
    """The JSON-serialisable spec the Spark job needs (no pydantic on the cluster)."""
    split_on = contract.unique_keys or [c for c in contract.column_names if c != contract.target]
    return {
        "dataset": contract.name,
        "keys": list(contract.unique_keys),
        "numeric": list(contract.features.numeric),
        "categorical": list(contract.features.categorical),
        "derived": [d.model_dump() for d in contract.features.derived],
        "target": contract.target,
        "passthrough": contract.passthrough_columns,
        "split_on": split_on,
        "split": {"validation": contract.split.validation, "test": contract.split.test},
    }


def feature_columns(spec: dict[str, Any]) -> list[str]:
    """Output column order of the job (keys, numeric, derived, categorical, target, passthrough, split)."""
    derived = [d["name"] for d in spec["derived"]]
    passthrough = list(spec.get("passthrough") or [])
    return [
        *spec["keys"],
        *spec["numeric"],
        *derived,
        *spec["categorical"],
        spec["target"],
        *passthrough,
        SPLIT_COLUMN,
    ]


def _split_of(key: str, test: float, validation: float) -> str:
    bucket = (int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % SPLIT_BUCKETS) / SPLIT_BUCKETS
    if bucket < test:
        return "test"
    return "validation" if bucket < test + validation else "train"


def _as_text(value: Any) -> str:
    if value is None or value != value:  # None or NaN
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def derived_values(frame: pd.DataFrame, derived: list[dict[str, Any]]) -> dict[str, Any]:
    """Derived feature arrays (float64, missing where undefined) computed from ``frame``'s columns."""
    import numpy as np
    import pandas as pd

    values: dict[str, Any] = {}
    for feature in derived:
        a = pd.Series(pd.to_numeric(frame[feature["inputs"][0]], errors="coerce"), dtype="float64")
        b = pd.Series(pd.to_numeric(frame[feature["inputs"][-1]], errors="coerce"), dtype="float64")
        op = feature["op"]
        if op == "ratio":
            values[feature["name"]] = (a / b.where(b != 0)).to_numpy()
        elif op == "log1p":
            values[feature["name"]] = np.log1p(a.where(a > -1).to_numpy())
        elif op == "product":
            values[feature["name"]] = (a * b).to_numpy()
        else:
            values[feature["name"]] = (a - b).to_numpy()
    return values


def build_features_pandas(frame: pd.DataFrame, spec: dict[str, Any]) -> pd.DataFrame:
    """The same features as the Spark job, computed with pandas (small data, tests, no JVM)."""
    import pandas as pd

    out = pd.DataFrame(frame[spec["keys"] + spec["numeric"]]).copy()
    for name, values in derived_values(frame, spec["derived"]).items():
        out[name] = values
    for column in [*spec["categorical"], spec["target"], *(spec.get("passthrough") or [])]:
        out[column] = frame[column]
    keys = frame[spec["split_on"]].astype(object).map(_as_text).agg("|".join, axis=1)
    out[SPLIT_COLUMN] = [_split_of(k, spec["split"]["test"], spec["split"]["validation"]) for k in keys]
    return out.reset_index(drop=True)
