"""The HTTP/1.1 layer (``pipelines.serving.http``) over raw sockets: what httpx would hide.

Keep-alive, pipelining, bodies split across packets, chunked bodies, ``Expect: 100-continue``,
``HEAD``, HTTP/1.0, malformed and oversized requests, idle timeouts and a graceful stop.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipelines.serving.server import InferenceApp
from tests.unit.serving.conftest import RunningServer

ROW = b"1,2,3,basic,north"


def _post(body: bytes, *, extra: bytes = b"", version: bytes = b"1.1") -> bytes:
    return (
        b"POST /invocations HTTP/" + version + b"\r\nHost: t\r\nContent-Type: text/csv\r\n"
        b"Accept: text/csv\r\nContent-Length: " + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body
    )


class _Reader:
    """Reads HTTP/1.1 responses (Content-Length framed) from a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def response(self, *, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                raise ConnectionError(f"connection closed mid-head: {self.buffer!r}")
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        length = 0 if head_only else int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            if not self._fill():
                raise ConnectionError("connection closed mid-body")
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, headers, body

    def closed(self, timeout: float = 5.0) -> bool:
        """True when the server closes the connection (EOF) within ``timeout`` with nothing else sent."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False


@pytest.fixture
def connect(server: RunningServer) -> Iterator[Callable[..., tuple[socket.socket, _Reader]]]:
    opened: list[socket.socket] = []

    def open_connection(target: RunningServer = server) -> tuple[socket.socket, _Reader]:
        sock = socket.create_connection(("127.0.0.1", target.port), timeout=10)
        opened.append(sock)
        return sock, _Reader(sock)

    yield open_connection
    for sock in opened:
        sock.close()


def test_keep_alive_serves_many_requests_on_one_connection(connect) -> None:
    sock, reader = connect()
    for _ in range(20):
        sock.sendall(_post(ROW))
        status, headers, body = reader.response()
        assert status == 200
        assert "connection" not in headers
        assert len(body.decode().strip().split(",")) == 3
        assert headers["x-request-id"]
        assert headers["date"].endswith("GMT")


def test_pipelined_requests_are_answered_in_order(connect) -> None:
    sock, reader = connect()
    bodies = [ROW, b"oops", ROW + b"\n" + ROW, b""]
    sock.sendall(b"".join(_post(body) for body in bodies) + b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n")
    statuses = [reader.response()[0] for _ in range(len(bodies) + 1)]
    assert statuses == [200, 400, 200, 400, 200]
    ids = []
    sock.sendall(_post(ROW) + _post(ROW))
    for _ in range(2):
        ids.append(reader.response()[1]["x-request-id"])
    assert int(ids[1].split("-")[1], 16) == int(ids[0].split("-")[1], 16) + 1


def test_request_split_byte_by_byte(connect) -> None:
    sock, reader = connect()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for byte in _post(ROW):
        sock.send(bytes([byte]))
    status, _, body = reader.response()
    assert status == 200
    assert body.count(b",") == 2


def test_chunked_request_body(connect) -> None:
    sock, reader = connect()
    first, second = ROW[:5], ROW[5:] + b"\n" + ROW
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (first, second)) + b"0\r\n\r\n"
    sock.sendall(
        b"POST /invocations HTTP/1.1\r\nHost: t\r\nContent-Type: text/csv\r\nAccept: text/csv\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + chunked
    )
    status, _, body = reader.response()
    assert status == 200
    assert len(body.decode().strip().splitlines()) == 2


def test_expect_100_continue(connect) -> None:
    sock, reader = connect()
    request = _post(ROW, extra=b"Expect: 100-continue\r\n")
    head, body = request.split(b"\r\n\r\n", 1)
    sock.sendall(head + b"\r\n\r\n")
    status, _, _ = reader.response()
    assert status == 100
    sock.sendall(body)
    assert reader.response()[0] == 200


def test_expect_100_continue_with_oversized_length_is_413_without_continue(connect) -> None:
    sock, reader = connect()
    sock.sendall(
        b"POST /invocations HTTP/1.1\r\nHost: t\r\nContent-Type: text/csv\r\n"
        b"Content-Length: 99999999\r\nExpect: 100-continue\r\n\r\n"
    )
    status, headers, body = reader.response()
    assert status == 413
    assert headers["connection"] == "close"
    assert "split the batch" in json.loads(body)["error"]
    assert reader.closed()


def test_head_ping_has_no_body(connect) -> None:
    sock, reader = connect()
    sock.sendall(b"HEAD /ping HTTP/1.1\r\nHost: t\r\n\r\nGET /ping HTTP/1.1\r\nHost: t\r\n\r\n")
    head_status, head_headers, _ = reader.response(head_only=True)
    assert head_status == 200
    assert head_headers["content-length"] == "2"
    while len(reader.buffer) < 8:
        reader._fill()
    assert reader.buffer.startswith(b"HTTP/1.1 200")  # no body bytes after the HEAD response
    status, _, body = reader.response()
    assert (status, body) == (200, b"{}")


@pytest.mark.parametrize("extra", [b"", b"Connection: keep-alive\r\n"], ids=["plain", "keep-alive-asked"])
def test_http_1_0_closes_after_the_response(connect, extra: bytes) -> None:
    sock, reader = connect()
    sock.sendall(_post(ROW, version=b"1.0", extra=extra))
    status, headers, _ = reader.response()
    assert status == 200
    assert headers["connection"] == "close"
    assert reader.closed()


def test_connection_close_header_is_honoured(connect) -> None:
    sock, reader = connect()
    sock.sendall(_post(ROW, extra=b"Connection: close\r\n"))
    assert reader.response()[1]["connection"] == "close"
    assert reader.closed()


MALFORMED = "malformed HTTP request"
UPGRADE = "protocol upgrades are not supported"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"NOT HTTP AT ALL\r\n\r\n", MALFORMED),
        (b"POST /invocations HTTP/1.1\r\nContent-Length: abc\r\n\r\n", MALFORMED),
        (b"POST /invocations HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", MALFORMED),
        (b"GET /ping HTTP/1.1\r\nBad Header Without Colon\r\n\r\n", MALFORMED),
        (b"GET /ping HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", UPGRADE),
        (
            _post(
                ROW,
                extra=b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n",
            ),
            UPGRADE,
        ),
    ],
    ids=["garbage", "bad-length", "bad-chunk", "bad-header", "websocket-upgrade", "h2c-upgrade-with-body"],
)
def test_malformed_or_upgrade_request_is_400_once_and_closes(connect, raw: bytes, message: str) -> None:
    sock, reader = connect()
    sock.sendall(raw)
    status, headers, body = reader.response()
    assert status == 400
    assert headers["connection"] == "close"
    assert message in json.loads(body)["error"]
    assert reader.closed()
    assert reader.buffer == b""  # exactly one response


def test_oversized_head_is_431(connect) -> None:
    sock, reader = connect()
    sock.sendall(b"GET /ping HTTP/1.1\r\nHost: t\r\n" + b"X-Pad: " + b"a" * 70_000 + b"\r\n\r\n")
    status, _, body = reader.response()
    assert status == 431
    assert "larger than 65536 bytes" in json.loads(body)["error"]
    assert reader.closed()


def test_server_still_serves_after_abuse(connect) -> None:
    sock, reader = connect()
    sock.sendall(_post(ROW))
    assert reader.response()[0] == 200


def test_idle_connection_is_closed_after_the_keep_alive_timeout(model_dir: Path, connect) -> None:
    with RunningServer(InferenceApp(model_dir), keep_alive_timeout=0.3) as quick:
        sock, reader = connect(quick)
        sock.sendall(_post(ROW))
        assert reader.response()[0] == 200
        started = time.monotonic()
        assert reader.closed(timeout=5)
        assert 0.2 < time.monotonic() - started < 3
        # a request that never finishes arriving is cut off too
        stuck, stuck_reader = connect(quick)
        stuck.sendall(b"POST /invocations HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n1,2")
        assert stuck_reader.closed(timeout=5)


def test_graceful_stop_finishes_the_request_in_flight(model_dir: Path, connect) -> None:
    running = RunningServer(InferenceApp(model_dir)).__enter__()
    idle, idle_reader = connect(running)
    busy, busy_reader = connect(running)
    idle.sendall(_post(ROW))
    assert idle_reader.response()[0] == 200
    request = _post(ROW)
    busy.sendall(request[:-3])  # the head and part of the body
    time.sleep(0.1)
    running.loop.call_soon_threadsafe(running.server.request_stop)
    assert idle_reader.closed()  # idle connections close at once
    busy.sendall(request[-3:])
    status, headers, _ = busy_reader.response()
    assert status == 200
    assert headers["connection"] == "close"
    assert busy_reader.closed()
    running.thread.join(timeout=10)
    assert not running.thread.is_alive()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", running.port), timeout=2)
