"""Status codes on the prebuilt scikit-learn image: what the shipped ``inference.py`` returns, and how
the emulated image (:mod:`rehearsal.serving_image`) turns that into an HTTP answer.

On the image (gunicorn + Flask over ``sagemaker_containers``) a raised exception is always a 500; a
returned Flask response keeps its status. Client mistakes must therefore come back as a returned 4xx
response, or they count in ``Invocation5XXErrors`` and can roll a deployment back.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from flask import Response

from pipelines.serving.inference import model_fn, transform_fn
from pipelines.train import SERVING_PROGRAM, serving_code_files
from rehearsal import serving_image
from tests.unit.serving.model_fixture import sample_rows


@pytest.fixture(scope="module")
def model(model_dir: Path) -> Any:
    return model_fn(str(model_dir))


def test_a_prediction_is_a_body_and_content_type(model: Any) -> None:
    body, content_type = transform_fn(
        model, sample_rows(3).to_csv(index=False, header=False), "text/csv", None
    )
    assert content_type == "application/json"
    assert len(json.loads(body)["predictions"]) == 3


@pytest.mark.parametrize(
    ("body", "content_type", "accept", "status"),
    [
        ("1,2", "text/csv", "application/json", 400),  # too few columns
        ("", "text/csv", "application/json", 400),  # empty body
        ("{not json", "application/json", "application/json", 400),
        ("a,b", "application/x-parquet", "application/json", 415),
        ("1,2", "text/csv", "image/png", 406),  # checked before the body
    ],
)
def test_a_client_mistake_is_a_returned_4xx_response(
    model: Any, body: str, content_type: str, accept: str, status: int
) -> None:
    answer = transform_fn(model, body, content_type, accept)
    assert isinstance(answer, Response)
    assert answer.status_code == status
    assert answer.mimetype == "application/json"
    assert json.loads(answer.get_data())["status"] == status


def test_the_shipped_entry_point_exports_what_the_image_accepts() -> None:
    """The image refuses transform_fn next to input_fn/predict_fn/output_fn (UserError at import)."""
    namespace: dict[str, Any] = {}
    exec(serving_code_files()[SERVING_PROGRAM].decode(), namespace)
    module = ModuleType("inference")
    module.__dict__.update(namespace)
    handlers = serving_image.Handlers(module)
    assert handlers.transform_fn is transform_fn
    assert not {"input_fn", "predict_fn", "output_fn"} & set(namespace)


def test_the_emulated_image_sends_what_the_handler_returns(model: Any) -> None:
    module = ModuleType("inference")
    module.__dict__.update(model_fn=model_fn, transform_fn=transform_fn)
    handlers = serving_image.Handlers(module)
    rows = sample_rows(2).to_csv(index=False, header=False)
    status, body, content_type = handlers.transform(model, rows, "text/csv", "application/json")
    assert (status, content_type) == (200, "application/json")
    assert len(json.loads(body)["predictions"]) == 2
    status, body, content_type = handlers.transform(model, "1,2", "text/csv", "application/json")
    assert status == 400
    assert content_type.startswith("application/json")
    assert json.loads(body)["status"] == 400


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ((b"[1]", "application/json"), (200, b"[1]", "application/json")),
        ("text", (200, b"text", "text/html; charset=utf-8")),  # Flask's default for a bare string
        (Response(b"no", status=422, mimetype="text/plain"), (422, b"no", "text/plain; charset=utf-8")),
    ],
)
def test_returned_values_map_like_flask(result: Any, expected: tuple[int, bytes, str]) -> None:
    assert serving_image._response(result) == expected


def test_a_raised_error_is_a_500_whatever_it_carries(model: Any) -> None:
    from pipelines.serving.codec import InputError

    def raising(*_: Any) -> Any:
        raise InputError("bad", status_code=400)

    module = ModuleType("inference")
    module.__dict__.update(model_fn=model_fn, transform_fn=raising)
    server = serving_image.make_server(serving_image.Handlers(module), model, 0, "application/json")
    import http.client
    import threading

    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
        conn.request("POST", "/invocations", body=b"1,2", headers={"Content-Type": "text/csv"})
        assert conn.getresponse().status == 500
        conn.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
