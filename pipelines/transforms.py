"""Functions referenced from inside fitted models (so they must stay importable under these names).

``model.joblib`` pickles scikit-learn objects by reference: a model that uses :func:`as_text`
needs ``pipelines.transforms`` importable where it is loaded (the serving container ships the
``pipelines`` package). Only NumPy is imported here, and renaming anything breaks old models.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

MISSING_TEXT = frozenset({"", "<NA>", "nan", "NaT"})
"""Texts :func:`category_text` reads as a missing value."""


def category_text(value: Any) -> str | None:
    """One categorical value as text: None for missing, ``True``/``False`` for booleans, ``3`` for 3.0."""
    if value is None or value is getattr(np, "nan", None):
        return None
    if isinstance(value, bool | np.bool_):
        return "True" if value else "False"
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return None
        return str(int(value)) if float(value).is_integer() else str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    text = str(value)
    return None if text in MISSING_TEXT else text


def as_text(values: Any) -> np.ndarray:
    """Map a 2-D array or frame of categorical values through :func:`category_text` (object array)."""
    array = np.asarray(values, dtype=object)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    out = np.empty(array.size, dtype=object)
    out[:] = category_texts(array.ravel().tolist())  # an object array's tolist() keeps the objects
    return out.reshape(array.shape)


def category_texts(values: Any) -> list[str | None]:
    """:func:`category_text` over a 1-D sequence, as a list.

    Strings are what requests and CSV files carry: they skip the type dispatch (same result, since
    :func:`category_text` returns a string unchanged unless it spells "missing").
    """
    return [(None if v in MISSING_TEXT else v) if type(v) is str else category_text(v) for v in values]
