"""The SageMaker serving contract over HTTP against the real server (``pipelines.serving.http``)."""

from __future__ import annotations

import io
import json
import logging
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.serving.artifact import load_artifact
from pipelines.serving.server import InferenceApp
from tests.unit.serving.conftest import RunningServer, free_port
from tests.unit.serving.model_fixture import FEATURES, NUMERIC, sample_rows

ROWS = sample_rows(7, seed=21)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _structured(frame: pd.DataFrame) -> np.ndarray:
    dtype = [(n, "f8") if n in NUMERIC else (n, "U16") for n in FEATURES]
    return np.array([tuple(r) for r in frame[FEATURES].itertuples(index=False)], dtype=dtype)


BODIES: dict[str, tuple[str, Callable[[pd.DataFrame], bytes]]] = {
    "csv": ("text/csv", lambda f: f.to_csv(index=False, header=False).encode()),
    "csv-header": ("text/csv", lambda f: f.to_csv(index=False).encode()),
    "csv-header-reordered": ("text/csv", lambda f: f[FEATURES[::-1]].to_csv(index=False).encode()),
    "json-records": ("application/json", lambda f: json.dumps(f.to_dict(orient="records")).encode()),
    "json-instances-lists": (
        "application/json",
        lambda f: json.dumps({"instances": f.values.tolist()}).encode(),
    ),
    "json-instances-objects": (
        "application/json",
        lambda f: json.dumps({"instances": f.to_dict(orient="records")}).encode(),
    ),
    "json-columns-split": (
        "application/json",
        lambda f: json.dumps({"columns": list(f.columns), "data": f.values.tolist()}).encode(),
    ),
    "json-columns-dict": (
        "application/json",
        lambda f: json.dumps({"columns": f.to_dict(orient="list")}).encode(),
    ),
    "npy-strings": ("application/x-npy", lambda f: _npy(f.astype(str).to_numpy().astype("U"))),
    "npy-structured": ("application/x-npy", lambda f: _npy(_structured(f))),
}
ACCEPTS = {
    "json": "application/json",
    "csv": "text/csv",
    "none": None,
    "any": "*/*",
    "csv-q": "application/xml;q=0.9, text/csv",
}


@pytest.fixture(scope="module")
def expected(model_dir: Path) -> np.ndarray:
    return load_artifact(model_dir).model.predict_proba(ROWS)


def _scores(response: httpx.Response) -> np.ndarray:
    if response.headers["content-type"].startswith("text/csv"):
        return np.array(
            [[float(x) for x in line.split(",")[1:]] for line in response.text.strip().splitlines()]
        )
    return np.array([p["probabilities"] for p in response.json()["predictions"]])


def test_ping(client: httpx.Client) -> None:
    response = client.get("/ping")
    assert response.status_code == 200


@pytest.mark.parametrize("accept", list(ACCEPTS))
@pytest.mark.parametrize("body", list(BODIES))
def test_every_content_type_and_accept(
    client: httpx.Client, expected: np.ndarray, body: str, accept: str
) -> None:
    content_type, encode = BODIES[body]
    headers = {"content-type": content_type}
    if ACCEPTS[accept] is not None:
        headers["accept"] = str(ACCEPTS[accept])
    response = client.post("/invocations", content=encode(ROWS), headers=headers)
    assert response.status_code == 200, response.text
    wanted = "text/csv" if accept in ("csv", "csv-q") else "application/json"
    assert response.headers["content-type"].startswith(wanted)
    assert response.headers["x-request-id"]
    np.testing.assert_allclose(_scores(response), expected, rtol=1e-12)


def test_json_response_shape(client: httpx.Client, expected: np.ndarray) -> None:
    response = client.post(
        "/invocations", content=BODIES["csv"][1](ROWS), headers={"content-type": "text/csv"}
    )
    body = response.json()
    assert body["classes"] == [0, 1]
    first = body["predictions"][0]
    assert set(first) == {"label", "score", "probabilities"}
    assert first["score"] == pytest.approx(expected[0, 1])
    assert first["label"] == int(np.argmax(expected[0]))


def test_large_batch(client: httpx.Client, model_dir: Path) -> None:
    rows = sample_rows(2000, seed=5)
    response = client.post(
        "/invocations", content=rows.to_csv(index=False, header=False), headers={"content-type": "text/csv"}
    )
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert len(predictions) == 2000
    np.testing.assert_allclose(
        [p["score"] for p in predictions], load_artifact(model_dir).model.predict_proba(rows)[:, 1]
    )


def test_single_row_json_object(client: httpx.Client) -> None:
    record = ROWS.iloc[0].to_dict()
    response = client.post("/invocations", json=record)
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 1


BAD = [
    ("unknown content type", "application/xml", b"<a/>", 415, "unsupported content type"),
    ("no content type", None, b"1,2,3,basic,north", 415, "unsupported content type"),
    ("empty body", "text/csv", b"", 400, "empty request body"),
    ("blank csv", "text/csv", b"\n\n", 400, "empty request body"),
    ("too few columns", "text/csv", b"1,2,3\n", 400, "row 0 has 3 columns; the model expects 5"),
    ("too many columns", "text/csv", b"1,2,3,basic,north,9\n", 400, "has 6 columns"),
    ("ragged rows", "text/csv", b"1,2,3,basic,north\n1,2\n1,2,3,basic,north\n", 400, "row 1 has 2 columns"),
    ("all rows short", "text/csv", b"1,2,3,basic\n1,2,3,basic\n", 400, "row 0 has 4 columns"),
    ("ragged rows", "text/csv", b"1,2,3,basic,north\n1,2\n", 400, "row 1 has 2 columns"),
    (
        "non-numeric",
        "text/csv",
        b"1,abc,3,basic,north\n",
        400,
        "feature 'monthly_charges' row 0: 'abc' is not a number",
    ),
    ("malformed csv", "text/csv", b'1,"2,3,basic,north\n', 400, "malformed CSV"),
    ("not utf-8", "text/csv", b"\xff\xfe1,2", 400, "not valid UTF-8"),
    ("malformed json", "application/json", b'{"instances": [1,', 400, "malformed JSON at line 1"),
    ("json scalar", "application/json", b"42", 400, "JSON body must be an object or a list"),
    ("json wrong names", "application/json", b'[{"a": 1}]', 400, "missing feature(s) tenure_months"),
    (
        "json unknown name",
        "application/json",
        json.dumps([{**dict.fromkeys(FEATURES, 1), "extra": 1}]).encode(),
        400,
        "unknown feature(s) 'extra'",
    ),
    (
        "json nested value",
        "application/json",
        json.dumps([{**dict.fromkeys(FEATURES, 1), "tenure_months": [1]}]).encode(),
        400,
        "is not a number",
    ),
    (
        "json bool numeric",
        "application/json",
        json.dumps([{**dict.fromkeys(FEATURES, "a"), "tenure_months": True}]).encode(),
        400,
        "feature 'tenure_months' row 0: True is not a number",
    ),
    (
        "json ragged columns",
        "application/json",
        b'{"columns": {"a": [1], "b": [1, 2]}}',
        400,
        "different lengths",
    ),
    ("json empty instances", "application/json", b'{"instances": []}', 400, "is empty"),
    ("malformed npy", "application/x-npy", b"\x93NUMPY garbage", 400, "malformed NPY"),
    ("npy wrong width", "application/x-npy", _npy(np.zeros((2, 3))), 400, "expected 5 columns"),
    ("npy 3-d", "application/x-npy", _npy(np.zeros((2, 3, 5))), 400, "must be 1-D (one row) or 2-D"),
    ("npy complex", "application/x-npy", _npy(np.zeros((1, 5), dtype=complex)), 400, "not supported"),
]


@pytest.mark.parametrize(("case", "content_type", "body", "status", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_4xx_naming_the_problem(
    client: httpx.Client, case: str, content_type: str | None, body: bytes, status: int, message: str
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/invocations", content=body, headers=headers)
    assert response.status_code == status, response.text
    payload = response.json()
    assert message in payload["error"]
    assert payload["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text


def test_unsupported_accept_is_406(client: httpx.Client) -> None:
    response = client.post(
        "/invocations",
        content=b"1,2,3,basic,north",
        headers={"content-type": "text/csv", "accept": "application/xml"},
    )
    assert response.status_code == 406
    assert "text/csv" in response.json()["error"]


def test_oversized_body_is_413(client: httpx.Client) -> None:
    body = b"1,2,3,basic,north\n" * 20000  # ~360 KiB > 256 KiB limit of the test server
    response = client.post("/invocations", content=body, headers={"content-type": "text/csv"})
    assert response.status_code == 413
    assert "larger than 262144 bytes" in response.json()["error"]


def test_oversized_chunked_body_is_413(client: httpx.Client) -> None:
    def chunks():
        for _ in range(40):
            yield b"1,2,3,basic,north\n" * 500

    response = client.post("/invocations", content=chunks(), headers={"content-type": "text/csv"})
    assert response.status_code == 413


def test_missing_values_where_the_model_imputes(client: httpx.Client) -> None:
    response = client.post("/invocations", content=b",,,,\n", headers={"content-type": "text/csv"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/invocations", 405), ("POST", "/ping", 405), ("GET", "/nope", 404)],
)
def test_routes(client: httpx.Client, method: str, path: str, status: int) -> None:
    response = client.request(method, path)
    assert response.status_code == status
    assert "error" in response.json()


def test_execution_parameters(client: httpx.Client) -> None:
    assert client.get("/execution-parameters").json()["BatchStrategy"] == "MULTI_RECORD"


class _Exploding:
    """A model that fails like a genuine server fault (not a ValueError from bad input)."""

    classes_ = np.array([0, 1])

    def predict(self, features):
        raise RuntimeError("disk on fire")

    def predict_proba(self, features):
        raise RuntimeError("disk on fire")


def test_server_fault_is_500_with_request_id_logged(
    model_dir: Path, start_server: Callable[[InferenceApp], RunningServer], caplog: pytest.LogCaptureFixture
) -> None:
    app = InferenceApp(model_dir)
    app.load()
    assert app.artifact is not None
    object.__setattr__(app.artifact, "model", _Exploding())
    object.__setattr__(app.artifact, "fast", None)
    server = start_server(app)
    with caplog.at_level(logging.ERROR, logger="pipelines.serving.server"):
        response = httpx.post(
            f"{server.url}/invocations", content=b"1,2,3,basic,north", headers={"content-type": "text/csv"}
        )
    assert response.status_code == 500
    request_id = response.json()["request_id"]
    assert request_id
    assert request_id == response.headers["x-request-id"]
    assert "disk on fire" not in response.text
    assert "Traceback" not in response.text
    assert any(request_id in record.getMessage() and record.exc_info for record in caplog.records)
    assert httpx.get(f"{server.url}/ping").status_code == 200  # still up


def test_tampered_model_keeps_endpoint_unhealthy(
    model_dir: Path, tmp_path: Path, start_server: Callable[[InferenceApp], RunningServer]
) -> None:
    broken = tmp_path / "model"
    shutil.copytree(model_dir, broken)
    with (broken / "model.joblib").open("ab") as handle:
        handle.write(b"x")
    server = start_server(InferenceApp(broken))
    ping = httpx.get(f"{server.url}/ping")
    assert ping.status_code == 503
    assert "does not match metadata model_sha256" in ping.json()["error"]
    response = httpx.post(
        f"{server.url}/invocations", content=b"1,2,3,basic,north", headers={"content-type": "text/csv"}
    )
    assert response.status_code == 503


_content_types = st.sampled_from(
    ["text/csv", "application/json", "application/x-npy", "text/plain", "", "application/json; charset=utf-8"]
)
_bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(str.encode),
    st.lists(
        st.lists(
            st.one_of(st.integers(), st.floats(allow_nan=True), st.text(max_size=5), st.none()), max_size=7
        ),
        max_size=4,
    ).map(lambda rows: json.dumps(rows).encode()),
    st.dictionaries(
        st.sampled_from([*FEATURES, "instances", "columns", "data", "x"]),
        st.one_of(st.integers(), st.text(max_size=4), st.lists(st.integers(), max_size=3), st.none()),
        max_size=6,
    ).map(lambda d: json.dumps(d).encode()),
    st.lists(st.text(alphabet='0123456789.,-e"abc\n ', max_size=40), max_size=5).map(
        lambda ls: "\n".join(ls).encode()
    ),
    st.binary(max_size=200).map(lambda b: b"\x93NUMPY\x01\x00" + b),
)


@settings(
    max_examples=250,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(content_type=_content_types, body=_bodies)
def test_fuzz_malformed_bodies_never_5xx(client: httpx.Client, content_type: str, body: bytes) -> None:
    response = client.post("/invocations", content=body, headers={"content-type": content_type})
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    if response.status_code >= 400:
        assert response.json()["error"]


def test_server_survives_fuzzing(client: httpx.Client) -> None:
    assert client.get("/ping").status_code == 200


def _wait_healthy(process: subprocess.Popen, port: int, timeout: float = 60) -> None:
    """Poll /ping until 200; fail with the server's output if it exits or the timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        assert time.monotonic() < deadline, "server did not become healthy"
        time.sleep(0.2)


def test_mlops_serve_cli_with_two_workers(model_dir: Path) -> None:
    """The CLI path: `mlops serve` with 2 worker processes answers the contract."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlops_cli.main",
            "serve",
            "--model-dir",
            str(model_dir),
            "--port",
            str(port),
            "--workers",
            "2",
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_healthy(process, port)
        response = httpx.post(
            f"http://127.0.0.1:{port}/invocations",
            content=b"1,2,3,basic,north",
            headers={"content-type": "text/csv", "accept": "text/csv"},
        )
        assert response.status_code == 200
        assert len(response.text.strip().split(",")) == 3
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_mlops_serve_single_worker_stops_cleanly_on_sigterm(model_dir: Path) -> None:
    """SIGTERM is a graceful stop (exit 0, 'stopped' logged), not the default kill (exit -15)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mlops_cli.main", "serve", "--model-dir", str(model_dir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_healthy(process, port)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "stopped" in output
