"""A minimal HTTP/1.1 server for the inference endpoint: httptools' parser on an asyncio (uvloop) loop.

Why not an ASGI server: every request here is a short, CPU-bound call into the handlers with no
``await`` in it. An ASGI server wraps each one in a task, an event, a dict per message and two
``send`` round trips; measured on the benchmark machine that costs about 65 µs per request with
uvicorn, as much as the model's whole request path for one row (``docs/benchmarks.md``). This
module parses with `httptools <https://github.com/MagicStack/httptools>`_ (llhttp, the parser
uvicorn and Node.js use) and answers each request inline from the parser's "message complete"
callback, so pipelined requests are answered in order without queues.

What it implements, and nothing more:

* keep-alive (HTTP/1.1 default; HTTP/1.0 connections close after the response), pipelining,
  ``Content-Length`` and chunked request bodies, ``Expect: 100-continue``, ``HEAD``;
* limits: a request body larger than ``max_body_bytes`` is answered with 413 and the connection is
  closed, either from ``Content-Length`` before the body is read or as soon as a chunked body
  passes the limit. Before closing, the server half-closes (FIN after the 413) and reads and
  discards up to :data:`MAX_DRAIN_BYTES` more for at most :data:`DRAIN_TIMEOUT` seconds: closing a
  socket with unread data makes the kernel send a reset, and a client still sending its body
  (Python's ``http.client`` reads the response only after sending everything) would see
  "connection reset" instead of the 413; request heads over :data:`MAX_HEAD_BYTES` get 431; a connection idle (or stuck
  in one request) for ``keep_alive_timeout`` seconds is closed, 65 s by default, above the 60 s
  idle timeout of SageMaker's front end;
* a malformed request or a protocol upgrade request (``Connection: Upgrade``, e.g. ``h2c``) gets
  400 and the connection is closed;
* back-pressure: a client that does not read its responses stops being read from;
* graceful stop: stop accepting, close idle connections, let the others finish their request.

The application is any object with the :class:`Handler` interface; the inference server's is
:class:`pipelines.serving.server.InferenceApp`.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import socket
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import NamedTuple, Protocol, cast

import httptools

logger = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
"""Largest accepted request line plus headers; larger heads get 431 and the connection is closed."""

MAX_DRAIN_BYTES = 64 * 1024 * 1024
"""Most bytes of a refused (413) body read and discarded before the connection is closed."""

DRAIN_TIMEOUT = 10.0
"""Most seconds spent draining a refused body before the connection is closed."""

DEFAULT_KEEP_ALIVE_TIMEOUT = 65.0
"""Seconds a connection may stay idle (or spend receiving one request) before it is closed."""


class Request(NamedTuple):
    """One parsed request: what the inference routes need, nothing more."""

    method: str
    path: str
    content_type: str | None
    accept: str | None
    body: bytes


class Response(NamedTuple):
    """One response; ``headers`` are extra ``(name, value)`` pairs, already lower-case bytes."""

    status: int
    body: bytes
    content_type: bytes = b"application/json"
    headers: tuple[tuple[bytes, bytes], ...] = ()


class Handler(Protocol):
    """What the server calls: ``handle`` per request and ``too_large`` when a body passes the limit."""

    max_body_bytes: int

    def handle(self, request: Request) -> Response:
        """Answer one request (must not raise: a server fault is a 500 :class:`Response`)."""
        ...

    def too_large(self) -> Response:
        """The 413 response for a body over ``max_body_bytes``."""
        ...

    def bad_request(self, status: int, message: str) -> Response:
        """The response for a request the HTTP layer rejects (400 malformed, 431 head too large)."""
        ...


_STATUS_LINES = {
    status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode("ascii") for status in HTTPStatus
}


class _Clock:
    """The ``Date`` header value, formatted at most once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._header = b""

    def date_header(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._header = b"date: " + email.utils.formatdate(now, usegmt=True).encode("ascii") + b"\r\n"
        return self._header


class _Connection(asyncio.Protocol):
    """One client connection: parse requests, answer each inline, enforce limits and timeouts."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.app = server.app
        self.loop = server.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.closing = False
        self.draining = 0  # bytes still to discard after a 413 (0: not draining)
        self.drain_timer: asyncio.TimerHandle | None = None
        self.in_request = False
        self.last_activity = self.loop.time()
        self.timer: asyncio.TimerHandle | None = None
        # the request being parsed (reset by on_message_begin)
        self.head_bytes = 0
        self.url = b""
        self.content_type: str | None = None
        self.accept: str | None = None
        self.expect_continue = False
        self.declared_length = -1
        self.chunks: list[bytes] = []
        self.body_size = 0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's do not subclass asyncio's
        self.server.connections.add(self)
        self.timer = self.loop.call_later(self.server.keep_alive_timeout, self._check_idle)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.draining = 0
        self.server.connections.discard(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.drain_timer is not None:
            self.drain_timer.cancel()
            self.drain_timer = None

    def data_received(self, data: bytes) -> None:
        if self.draining:
            self.draining -= min(len(data), self.draining)
            if not self.draining:
                self._close()
            return
        if self.closing:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._close()  # already refused in on_headers_complete
        except httptools.HttpParserError as error:
            if not self.closing:
                logger.info("malformed HTTP request: %s", error)
                self._reject(400, f"malformed HTTP request: {error}")

    def eof_received(self) -> bool:
        return False  # close our side too; every complete request has been answered already

    def pause_writing(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.closing:
            self.transport.resume_reading()

    # httptools callbacks

    def on_message_begin(self) -> None:
        self.in_request = True
        self.last_activity = self.loop.time()
        self.head_bytes = 0
        self.url = b""
        self.content_type = None
        self.accept = None
        self.expect_continue = False
        self.declared_length = -1
        self.chunks = []
        self.body_size = 0

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.head_bytes += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.closing:
            return
        self.head_bytes += len(name) + len(value) + 4
        if self.head_bytes > MAX_HEAD_BYTES:
            self._reject(431, f"request line and headers larger than {MAX_HEAD_BYTES} bytes")
            return
        name = name.lower()
        if name == b"content-type":
            self.content_type = value.decode("latin-1")
        elif name == b"accept":
            self.accept = value.decode("latin-1")
        elif name == b"content-length":
            with contextlib.suppress(ValueError):
                self.declared_length = int(value)
        elif name == b"expect" and value.lower() == b"100-continue":
            self.expect_continue = True

    def on_headers_complete(self) -> None:
        if self.closing:
            return
        if self.parser.should_upgrade():
            # llhttp hands everything after an upgrade request's head to the new protocol, so the
            # request cannot be answered as plain HTTP (its body would be lost): refuse it.
            self._reject(
                400, "protocol upgrades are not supported: send the request without 'Connection: Upgrade'"
            )
            return
        if self.declared_length > self.app.max_body_bytes:
            self._refuse_body()
            return
        if self.expect_continue and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        if self.closing:
            return
        self.body_size += len(body)
        if self.body_size > self.app.max_body_bytes:
            self._refuse_body()
            return
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.closing:
            return
        parser = self.parser
        method = parser.get_method().decode("ascii", "replace")
        keep_alive = parser.should_keep_alive() and parser.get_http_version() == "1.1"
        url = self.url
        query = url.find(b"?")
        path = (url if query < 0 else url[:query]).decode("latin-1")
        chunks = self.chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        try:
            response = self.app.handle(Request(method, path, self.content_type, self.accept, body))
        except Exception:  # the application answers its own faults; this is the last line of defence
            logger.exception("unhandled error answering %s %s", method, path)
            response = Response(500, b'{"error": "internal server error", "status": 500}')
        self._write(response, keep_alive=keep_alive, head=method == "HEAD")

    # internals

    def _write(
        self, response: Response, *, keep_alive: bool, head: bool = False, drain: bool = False
    ) -> None:
        transport = self.transport
        if transport is None or self.closing:
            return
        status, body, content_type, extra = response
        parts = [
            _STATUS_LINES.get(status) or f"HTTP/1.1 {status} Unknown\r\n".encode("ascii"),
            self.server.clock.date_header(),
            b"content-type: ",
            content_type,
            b"\r\ncontent-length: ",
            str(len(body)).encode("ascii"),
            b"\r\n",
        ]
        for name, value in extra:
            parts += (name, b": ", value, b"\r\n")
        if not keep_alive or self.server.stopping:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        if not head:
            parts.append(body)
        transport.write(b"".join(parts))
        self.in_request = False
        self.last_activity = self.loop.time()
        if drain:
            self._start_draining()
        elif not keep_alive or self.server.stopping:
            self._close()

    def _refuse_body(self) -> None:
        """Answer 413, then drain (a bounded amount of) the rest of the body before closing."""
        self._write(self.app.too_large(), keep_alive=False, drain=True)

    def _start_draining(self) -> None:
        transport = self.transport
        if transport is None:
            return
        self.closing = True  # the parser's callbacks ignore whatever else this feed holds
        remaining = self.declared_length - self.body_size if self.declared_length >= 0 else MAX_DRAIN_BYTES
        if remaining <= 0:
            self._close()
            return
        self.draining = min(remaining, MAX_DRAIN_BYTES)
        if transport.can_write_eof():
            transport.write_eof()  # the client reads the 413, then end of stream
        self.drain_timer = self.loop.call_later(DRAIN_TIMEOUT, self._close)

    def _reject(self, status: int, message: str) -> None:
        self._write(self.app.bad_request(status, message), keep_alive=False)
        self._close()

    def _close(self) -> None:
        self.closing = True
        self.draining = 0
        if self.drain_timer is not None:
            self.drain_timer.cancel()
            self.drain_timer = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _check_idle(self) -> None:
        self.timer = None
        if self.closing:
            return
        waited = self.loop.time() - self.last_activity
        timeout = self.server.keep_alive_timeout
        if waited >= timeout:
            self._close()
        else:
            self.timer = self.loop.call_later(timeout - waited, self._check_idle)

    def shut_down(self) -> None:
        """Close now when between requests; otherwise after the current request's response."""
        if not self.in_request:
            self._close()


class HttpServer:
    """Serve one :class:`Handler` on listening sockets until :meth:`request_stop`.

    Args:
        app: the request handler.
        keep_alive_timeout: seconds before an idle connection is closed.
        grace_period: seconds :meth:`serve` waits for connections in the middle of a request when
            stopping, before closing them.
    """

    def __init__(
        self,
        app: Handler,
        *,
        keep_alive_timeout: float = DEFAULT_KEEP_ALIVE_TIMEOUT,
        grace_period: float = 10.0,
    ) -> None:
        self.app = app
        self.keep_alive_timeout = keep_alive_timeout
        self.grace_period = grace_period
        self.connections: set[_Connection] = set()
        self.clock = _Clock()
        self.stopping = False
        self.started = False
        self._stop: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop  # set by serve(), before any connection exists

    async def serve(self, sockets: list[socket.socket], on_started: Callable[[], None] | None = None) -> None:
        """Accept connections on ``sockets`` (already bound and listening) until asked to stop."""
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        servers = [await self.loop.create_server(lambda: _Connection(self), sock=sock) for sock in sockets]
        self.started = True
        if on_started is not None:
            on_started()
        await self._stop.wait()
        self.stopping = True
        for server in servers:
            server.close()
        for connection in list(self.connections):
            connection.shut_down()
        deadline = self.loop.time() + self.grace_period
        while self.connections and self.loop.time() < deadline:
            await asyncio.sleep(0.05)
        for connection in list(self.connections):
            connection._close()
        await asyncio.sleep(0)  # let the transports run their close callbacks

    def request_stop(self) -> None:
        """Begin a graceful stop (call on the server's loop; use ``call_soon_threadsafe`` elsewhere)."""
        if self._stop is not None:
            self._stop.set()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop when uvloop is installed (it is on Linux and macOS), else asyncio's default."""
    try:
        import uvloop
    except ImportError:
        logger.warning("uvloop is not installed; serving on asyncio's default event loop (slower)")
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
