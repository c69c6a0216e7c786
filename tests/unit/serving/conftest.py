"""Fixtures: a trained model artifact and the real server on a free loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from pipelines.serving.http import HttpServer, new_event_loop
from pipelines.serving.server import InferenceApp, listening_socket
from tests.unit.serving.model_fixture import write_artifact


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A verified artifact directory (model.joblib, metadata.json, baseline files)."""
    return write_artifact(tmp_path_factory.mktemp("model"))


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RunningServer:
    """The real HTTP server running an app on its own event loop in a background thread."""

    def __init__(self, app: InferenceApp, *, keep_alive_timeout: float = 65.0) -> None:
        self.app = app
        self.sock = listening_socket("127.0.0.1", 0)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = HttpServer(app, keep_alive_timeout=keep_alive_timeout, grace_period=2.0)
        self.loop = new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        if self.app.artifact is None and self.app.load_error is None:
            self.app.load()
        self.loop.run_until_complete(self.server.serve([self.sock]))
        self.loop.close()

    def __enter__(self) -> RunningServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.server.request_stop)
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def start_server() -> Iterator[Callable[[InferenceApp], RunningServer]]:
    """Factory: start a server for an app; all are stopped at the end of the session."""
    running: list[RunningServer] = []

    def start(app: InferenceApp) -> RunningServer:
        server = RunningServer(app).__enter__()
        running.append(server)
        return server

    yield start
    for server in running:
        server.__exit__(None, None, None)


@pytest.fixture(scope="session")
def server(model_dir: Path, start_server: Callable[[InferenceApp], RunningServer]) -> RunningServer:
    """The real server for the fixture model, with a 256 KiB body limit so 413 is cheap to test."""
    return start_server(InferenceApp(model_dir, max_body_bytes=256 * 1024))


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    """An HTTP client bound to the session server."""
    with httpx.Client(base_url=server.url, timeout=20) as http:
        yield http
