"""The one JSON writer for every report the pipeline writes: strict JSON that every parser accepts.

Python's ``json`` writes ``NaN`` and ``Infinity`` by default, which are not JSON (RFC 8259 section 6:
"Numeric values that cannot be represented ... (such as Infinity and NaN) are not permitted").
Here a non-finite float (e.g. AUC on a one-class test set, a statistic over no rows) becomes
``null``, NumPy scalars and arrays become plain numbers and lists, and anything else unknown is
its ``str``.
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None and NumPy values made plain (recursively)."""
    if isinstance(value, dict):
        return {
            str(k) if not isinstance(k, str | int | float | bool) else k: finite(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [finite(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        value = value.tolist()  # numpy scalar -> Python scalar, ndarray -> list
        if isinstance(value, list):
            return [finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _default(value: Any) -> Any:
    return str(value)


def strict_json(value: Any, *, indent: int | None = 2) -> str:
    """Serialise ``value`` as strict JSON (never ``NaN``/``Infinity``); see the module docstring."""
    return json.dumps(finite(value), indent=indent, default=_default, allow_nan=False)
