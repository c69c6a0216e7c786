"""The SageMaker serving contract over HTTP: ``GET /ping`` and ``POST /invocations`` on port 8080.

:class:`InferenceApp` routes the contract's paths to the same handler functions the prebuilt
SageMaker scikit-learn container calls (:mod:`pipelines.serving.inference`); the HTTP layer is
:mod:`pipelines.serving.http` (httptools on uvloop), one process per worker.

Error behaviour: a client mistake is a 4xx JSON body ``{"error", "status", "request_id"}`` naming
the problem; anything else is a 500 with the same shape and the request id logged with the
traceback (the traceback never reaches the client). A model that fails verification at start-up
keeps ``/ping`` at 503, so SageMaker never routes traffic to it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import signal
import socket
import uuid
from pathlib import Path
from typing import Any

from pipelines.serving.artifact import ArtifactError, ModelArtifact
from pipelines.serving.codec import InputError
from pipelines.serving.http import DEFAULT_KEEP_ALIVE_TIMEOUT, HttpServer, Request, Response, new_event_loop
from pipelines.serving.inference import model_fn, transform

logger = logging.getLogger(__name__)

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


class InferenceApp:
    """The contract's routes for one model directory, independent of the HTTP layer.

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

    def handle(self, request: Request) -> Response:
        """Route one request: ``/invocations``, ``/ping``, ``/execution-parameters``; 404/405 otherwise."""
        path = request.path
        method = request.method
        if path == "/invocations":
            if method != "POST":
                return _error(405, "use POST /invocations", None, allow=b"POST")
            return self._invocations(request)
        if path == "/ping":
            if method not in ("GET", "HEAD"):
                return _error(405, "use GET /ping", None, allow=b"GET")
            return self._ping()
        if path == "/execution-parameters" and method == "GET":
            params = {
                "MaxConcurrentTransforms": self.workers,
                "BatchStrategy": "MULTI_RECORD",
                "MaxPayloadInMB": 6,
            }
            return Response(200, json.dumps(params).encode())
        return _error(404, f"no route {method} {path}: use GET /ping or POST /invocations", None)

    def too_large(self) -> Response:
        """413 for a body over ``max_body_bytes`` (the connection is closed after it)."""
        message = (
            f"request body larger than {self.max_body_bytes} bytes: split the batch into smaller requests"
        )
        return _error(413, message, self._request_id())

    def bad_request(self, status: int, message: str) -> Response:
        """The answer to a request the HTTP layer rejected before routing (malformed, head too large)."""
        return _error(status, message, None)

    def _request_id(self) -> str:
        return f"{self._boot}-{next(self._counter):x}"

    def _ping(self) -> Response:
        if self.artifact is None and self.load_error is None:
            self.load()
        if self.artifact is not None:
            return Response(200, b"{}")
        return _error(503, f"model not loaded: {self.load_error}", None)

    def _invocations(self, request: Request) -> Response:
        request_id = self._request_id()
        artifact = self.artifact
        if artifact is None:
            message = f"model not loaded: {self.load_error or 'start-up has not finished'}"
            return _error(503, message, request_id)
        try:
            payload, response_type = transform(artifact, request.body, request.content_type, request.accept)
        except InputError as error:
            return _error(error.status_code, error.message, request_id)
        except Exception:
            logger.exception("request %s failed with an internal error", request_id)
            return _error(500, "internal server error; quote the request id to the operator", request_id)
        return Response(200, payload, response_type.encode(), ((b"x-request-id", request_id.encode()),))


def _error(status: int, message: str, request_id: str | None, *, allow: bytes | None = None) -> Response:
    body = json.dumps({"error": message, "status": status, "request_id": request_id}).encode()
    headers: list[tuple[bytes, bytes]] = []
    if request_id is not None:
        headers.append((b"x-request-id", request_id.encode()))
    if allow is not None:
        headers.append((b"allow", allow))
    return Response(status, body, _JSON, tuple(headers))


def app_from_env() -> InferenceApp:
    """The application a worker process serves (reads :data:`MODEL_DIR_ENV` and :data:`MAX_BODY_ENV`)."""
    model_dir = os.environ.get(MODEL_DIR_ENV, SAGEMAKER_MODEL_DIR)
    max_body = int(os.environ.get(MAX_BODY_ENV, str(DEFAULT_MAX_BODY_BYTES)))
    workers = int(os.environ.get("SERVING_WORKERS", "1"))
    return InferenceApp(model_dir, max_body_bytes=max_body, workers=workers)


def listening_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A bound, listening TCP socket; with ``reuse_port`` each worker binds its own (``SO_REUSEPORT``)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def _configure_logging(log_level: str) -> None:
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s",
    )


def run_worker(
    app: InferenceApp,
    sock: socket.socket,
    *,
    keep_alive_timeout: float = DEFAULT_KEEP_ALIVE_TIMEOUT,
) -> None:
    """Load the model, then serve ``app`` on ``sock`` until SIGTERM or SIGINT (blocking)."""
    if app.artifact is None:
        app.load()
    server = HttpServer(app, keep_alive_timeout=keep_alive_timeout)

    async def main() -> None:
        # installed from inside the running loop, the way asyncio's documentation does it
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, server.request_stop)
        host, port = sock.getsockname()[:2]
        status = "ready" if app.artifact is not None else f"UNHEALTHY ({app.load_error})"
        logger.info(
            "worker %d serving %s on http://%s:%s: %s", os.getpid(), app.model_dir, host, port, status
        )
        await server.serve([sock])
        logger.info("worker %d stopped", os.getpid())

    loop = new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
        sock.close()


def _worker_main(host: str, port: int, log_level: str) -> None:
    """One worker process: its own SO_REUSEPORT socket, so the kernel spreads connections evenly."""
    _configure_logging(log_level)
    run_worker(app_from_env(), listening_socket(host, port, reuse_port=True))


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
    _configure_logging(log_level)
    if workers <= 1 or not hasattr(socket, "SO_REUSEPORT"):
        run_worker(app_from_env(), listening_socket(host, port))
        return
    import multiprocessing
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
