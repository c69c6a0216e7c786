"""Without orjson (the SageMaker scikit-learn image has none) the JSON encoder gives the same bytes."""

from __future__ import annotations

import pytest

from pipelines.serving import codec


def test_stdlib_fallback_matches_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    body = {
        "classes": [0, 1],
        "predictions": [
            {"label": 1, "score": 0.1234567890123, "probabilities": [0.8765432109877, 0.1234567890123]},
            {"label": "é", "score": float("nan"), "probabilities": [float("inf"), 1e-300]},
        ],
    }
    fast = codec.dumps_json(body)
    monkeypatch.setattr(codec, "_orjson_dumps", lambda: None)
    slow = codec.dumps_json(body)
    assert slow == fast
    assert b"NaN" not in slow
    assert b"Infinity" not in slow
