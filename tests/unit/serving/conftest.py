"""Fixtures: a trained model artifact and the real server on a free loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from pipelines.serving.server import InferenceApp
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
    """A uvicorn server running an app in a background thread."""

    def __init__(self, app: InferenceApp) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, lifespan="on", log_level="warning", access_log=False,
            loop="uvloop", http="httptools",
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> RunningServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
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
