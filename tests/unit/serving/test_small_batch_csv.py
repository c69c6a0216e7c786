"""CSV bodies split without the csv module decode exactly as ``csv.reader`` decodes them."""

from __future__ import annotations

import csv
import io
import random
from typing import Any

import pytest

from pipelines.serving.codec import InputError, decode_body


def _reference(text: str) -> Any:
    """The decoder before the plain-text shortcut: csv.reader, strict, blank lines skipped."""
    try:
        rows = [row for row in csv.reader(io.StringIO(text), strict=True) if row]
    except csv.Error as error:
        return f"malformed CSV: {error}"
    return rows or "empty CSV body: send at least one row"


def _decoded(text: str) -> Any:
    try:
        return decode_body(text.encode(), "text/csv").rows
    except InputError as error:
        return error.message


ALPHABET = ["a", "b", "1", ".", "-", ",", ",", "\n", "\n", " ", "\t", '"', "\r", "\x00", "\u2028", "\x0b", "\x0c", "\x85", "é", "\\", "'"]  # fmt: skip
SPECIAL = {'"', "\r", "\x00"}


def test_random_bodies_decode_as_csv_reader_decodes_them() -> None:
    rng = random.Random(0)
    plain = [c for c in ALPHABET if c not in SPECIAL]
    for _ in range(20000):
        pool = ALPHABET if rng.random() < 0.5 else plain
        text = "".join(rng.choice(pool) for _ in range(rng.randint(1, 30)))
        if not text.strip():
            continue  # rejected before CSV parsing
        assert _decoded(text) == _reference(text), repr(text)


@pytest.mark.parametrize(
    "text",
    [
        "1,2,a\n",
        "1,2,a",
        "1,2,a\n\n3,4,b\n",
        "1,,a,\n",
        ",\n",
        " 1 , 2 ,a b\n",
        "1,2,\u2028a\x0b\x0c\x85\n",
        '1,"2,3",a\n',
        '1,"2\n3",a\n',
        '1,2"x,a\n',
        '1,"2"x,a\n',
        "1,2,a\r\n3,4,b\r\n",
        "1,2\ra\n",
        "1,\x00,a\n",
        "x" * (csv.field_size_limit() + 1) + ",1\n",
        "x" * csv.field_size_limit() + "\n",
    ],
)
def test_edge_cases_decode_as_csv_reader_decodes_them(text: str) -> None:
    assert _decoded(text) == _reference(text)
