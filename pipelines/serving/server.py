"""The SageMaker serving contract over HTTP: ``GET /ping`` and ``POST /invocations`` on port 8080.

A raw ASGI application (no web framework: routing two paths does not need one) served by uvicorn
with uvloop and httptools, one process per worker. Every request goes through the same handler
functions the prebuilt SageMaker scikit-learn container calls (:mod:`pipelines.serving.inference`).

Error behaviour: a client mistake is a 4xx JSON body ``{"error", "status", "request_id"}`` naming
the problem; anything else is a 500 with the same shape and the request id logged with the
traceback (the traceback never reaches the client). A model that fails verification at start-up
keeps ``/ping`` at 503, so SageMaker never routes traffic to it.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from pipelines.serving.artifact import ArtifactError, ModelArtifact
from pipelines.serving.codec import InputError
from pipelines.serving.inference import model_fn, transform

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_PORT = 8080
"""Port of the SageMaker serving contract."""

SAGEMAKER_MODEL_DIR = "/opt/ml/model"
"""Where SageMaker unpacks ``model.tar.gz`` in a serving container (the only place this path lives)."""

DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024
"""SageMaker real-time endpoints cap a request payload at 6 MB; larger bodies get 413."""

MODEL_DIR_ENV = "SERVING_MODEL_DIR"
"""Environment variable the worker processes read the model directory from."""

MAX_BODY_ENV = "SERVING_MAX_BODY_BYTES"
"""Environment variable the worker processes read the body size limit from."""

_JSON = b"application/json"


class _BodyTooLargeError(Exception):
    """The request body grew past ``max_body_bytes`` while it was being read (answered with 413)."""


class InferenceApp:
    """ASGI application serving one model directory.

    Args:
        model_dir: directory holding ``metadata.json`` and the model file.
        max_body_bytes: larger request bodies are refused with 413 before they are read in full.
        workers: advertised to batch transform through ``/execution-parameters``.
    """

    def __init__(
        self, model_dir: str | Path, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, workers: int = 1
    ) -> None:
        self.model_dir = Path(model_dir)
        self.max_body_bytes = max_body_bytes
        self.workers = workers
        self.artifact: ModelArtifact | None = None
        self.load_error: str | None = None
        self._boot = uuid.uuid4().hex[:8]
        self._counter = itertools.count(1)

    def load(self) -> None:
        """Load and verify the model; on failure remember why and stay unhealthy (``/ping`` 503)."""
        try:
            self.artifact = model_fn(self.model_dir)
            self.load_error = None
        except ArtifactError as error:
            self.artifact = None
            self.load_error = str(error)
        except Exception as error:  # the endpoint must stay up and say why it is unhealthy
            logger.exception("unexpected failure loading the model from %s", self.model_dir)
            self.artifact = None
            self.load_error = f"{type(error).__name__}: {error}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.artifact is None:
                    self.load()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        method = scope["method"]
        if path == "/invocations":
            if method != "POST":
                await _respond(
                    send, 405, _error_body("use POST /invocations", 405, None), _JSON, allow=b"POST"
                )
                return
            await self._invocations(scope, receive, send)
        elif path == "/ping":
            if method not in ("GET", "HEAD"):
                await _respond(send, 405, _error_body("use GET /ping", 405, None), _JSON, allow=b"GET")
                return
            await self._ping(send)
        elif path == "/execution-parameters" and method == "GET":
            params = {
                "MaxConcurrentTransforms": self.workers,
                "BatchStrategy": "MULTI_RECORD",
                "MaxPayloadInMB": 6,
            }
            await _respond(send, 200, json.dumps(params).encode(), _JSON)
        else:
            message = f"no route {method} {path}: use GET /ping or POST /invocations"
            await _respond(send, 404, _error_body(message, 404, None), _JSON)

    async def _ping(self, send: Send) -> None:
        if self.artifact is None and self.load_error is None:
            self.load()
        if self.artifact is not None:
            await _respond(send, 200, b"{}", _JSON)
        else:
            await _respond(send, 503, _error_body(f"model not loaded: {self.load_error}", 503, None), _JSON)

    async def _invocations(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = f"{self._boot}-{next(self._counter):x}"
        content_type: str | None = None
        accept: str | None = None
        declared_length = -1
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"accept":
                accept = value.decode("latin-1")
            elif name == b"content-length":
                try:
                    declared_length = int(value)
                except ValueError:
                    declared_length = -1
        if declared_length > self.max_body_bytes:
            await self._too_large(send, request_id)
            return
        try:
            body = await _read_body(receive, self.max_body_bytes)
        except _BodyTooLargeError:
            await self._too_large(send, request_id)
            return
        if body is None:  # client went away
            return
        artifact = self.artifact
        if artifact is None:
            message = f"model not loaded: {self.load_error or 'start-up has not finished'}"
            await _respond(send, 503, _error_body(message, 503, request_id), _JSON, request_id=request_id)
            return
        try:
            payload, response_type = transform(artifact, body, content_type, accept)
        except InputError as error:
            body_out = _error_body(error.message, error.status_code, request_id)
            await _respond(send, error.status_code, body_out, _JSON, request_id=request_id)
            return
        except Exception:
            logger.exception("request %s failed with an internal error", request_id)
            body_out = _error_body(
                "internal server error; quote the request id to the operator", 500, request_id
            )
            await _respond(send, 500, body_out, _JSON, request_id=request_id)
            return
        await _respond(send, 200, payload, response_type.encode(), request_id=request_id)

    async def _too_large(self, send: Send, request_id: str) -> None:
        message = (
            f"request body larger than {self.max_body_bytes} bytes: split the batch into smaller requests"
        )
        await _respond(send, 413, _error_body(message, 413, request_id), _JSON, request_id=request_id)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise _BodyTooLargeError
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _error_body(message: str, status: int, request_id: str | None) -> bytes:
    return json.dumps({"error": message, "status": status, "request_id": request_id}).encode()


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    *,
    request_id: str | None = None,
    allow: bytes | None = None,
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if request_id is not None:
        headers.append((b"x-request-id", request_id.encode()))
    if allow is not None:
        headers.append((b"allow", allow))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def app_from_env() -> InferenceApp:
    """Application factory for uvicorn worker processes (reads :data:`MODEL_DIR_ENV`)."""
    model_dir = os.environ.get(MODEL_DIR_ENV, SAGEMAKER_MODEL_DIR)
    max_body = int(os.environ.get(MAX_BODY_ENV, str(DEFAULT_MAX_BODY_BYTES)))
    workers = int(os.environ.get("SERVING_WORKERS", "1"))
    return InferenceApp(model_dir, max_body_bytes=max_body, workers=workers)


def _fast_impl(module: str, name: str) -> str:
    try:
        __import__(module)
    except ImportError:
        logger.warning("%s is not installed; uvicorn falls back to its pure-Python %s", module, name)
        return "auto"
    return module


def _reuse_port_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _uvicorn_config(app: Any, host: str, port: int, log_level: str) -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop=_fast_impl("uvloop", "asyncio loop"),
        http=_fast_impl("httptools", "HTTP parser (h11)"),
        lifespan="on",
        access_log=False,
        log_level=log_level,
        timeout_keep_alive=65,  # above the 60 s idle timeout of SageMaker's front end
    )


def _worker_main(host: str, port: int, log_level: str) -> None:
    """One worker process: its own SO_REUSEPORT socket, so the kernel spreads connections evenly."""
    import uvicorn

    sock = _reuse_port_socket(host, port)
    uvicorn.Server(_uvicorn_config(app_from_env(), host, port, log_level)).run(sockets=[sock])


def serve(
    model_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    workers: int = 1,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    log_level: str = "info",
) -> None:
    """Run the server until interrupted (blocking).

    ``workers`` processes each load and verify the model and listen on the port with
    ``SO_REUSEPORT``: the kernel balances connections across them (a shared accept socket lets one
    worker take most keep-alive connections), and a worker that dies is restarted.
    """
    os.environ[MODEL_DIR_ENV] = str(Path(model_dir).resolve())
    os.environ[MAX_BODY_ENV] = str(max_body_bytes)
    os.environ["SERVING_WORKERS"] = str(workers)
    if workers <= 1 or not hasattr(socket, "SO_REUSEPORT"):
        import uvicorn

        uvicorn.Server(_uvicorn_config(app_from_env(), host, port, log_level)).run()
        return
    import multiprocessing
    import signal
    import time

    context = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> Any:
        process = context.Process(target=_worker_main, args=(host, port, log_level), daemon=False)
        process.start()
        return process

    def shut_down(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, shut_down) for sig in (signal.SIGTERM, signal.SIGINT)}
    processes = [start() for _ in range(workers)]
    restarts = 0
    try:
        while not stopping:
            time.sleep(0.5)
            for index, process in enumerate(processes):
                if not process.is_alive() and not stopping:
                    restarts += 1
                    logger.error(
                        "worker %s exited with %s; restarting (%d restarts)",
                        process.pid,
                        process.exitcode,
                        restarts,
                    )
                    processes[index] = start()
    finally:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        for process in processes:
            process.join(timeout=30)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
