"""An oversized body gets its 413 even when a plain HTTP client is still sending it (issue 13)."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

from pipelines.serving.server import InferenceApp
from tests.unit.serving.conftest import RunningServer

LIMIT = 1024


def _post_with_http_client(port: int, body: bytes) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.request("POST", "/invocations", body=body, headers={"Content-Type": "text/csv"})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_http_client_still_sending_reads_the_413(model_dir: Path) -> None:
    # 8 MiB: far more than the kernel's socket buffers hold, so the client is still in sendall()
    # when the server answers; without draining, it gets ECONNRESET/EPIPE instead of the 413.
    body = b"1,2,3\n" * (8 * 1024 * 1024 // 6)
    with RunningServer(InferenceApp(model_dir, max_body_bytes=LIMIT)) as server:
        for _ in range(3):
            status, headers, payload = _post_with_http_client(server.port, body)
            assert status == 413
            assert headers["connection"] == "close"
            assert "split the batch" in json.loads(payload)["error"]
        small = _post_with_http_client(server.port, b"")  # the server still serves afterwards
        assert small[0] != 413


def test_chunked_oversized_body_is_drained_too(model_dir: Path) -> None:
    chunks = (b"9,9,9\n" * 20_000 for _ in range(60))  # ~7 MiB, chunked (no Content-Length)
    with RunningServer(InferenceApp(model_dir, max_body_bytes=LIMIT)) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
        try:
            connection.request(
                "POST", "/invocations", body=chunks, headers={"Content-Type": "text/csv"}, encode_chunked=True
            )
            assert connection.getresponse().status == 413
        finally:
            connection.close()
