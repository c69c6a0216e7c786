"""An emulated AWS account: moto's server on a loopback port, extended where moto only records.

moto stores most resources but runs nothing: training jobs are ``Completed`` at once, endpoints are
``InService`` without a model, and some calls the platform makes do not exist. Each
:class:`Extension` makes one service do what AWS does (run the job, serve the model, evaluate the
alarm); :class:`Emulator` starts the server, installs the extensions and, on :meth:`Emulator.stop`,
closes them so that no port or child process outlives it.

moto keeps its state in process-global backends, so one :class:`Emulator` runs per process at a time;
:meth:`Emulator.start` resets that state so every emulator starts as an empty account.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer

ACCOUNT_ID = "123456789012"
"""moto's default account; every ARN the emulator issues is in it."""

LOOPBACK = "127.0.0.1"

_running_lock = threading.Lock()
_running: Emulator | None = None


class EmulatorError(RuntimeError):
    """The emulator could not start, or was used in a way AWS would refuse."""


class RequestGate(Protocol):
    """Sits in front of moto's WSGI app and may answer a request itself (e.g. the IAM authorizer)."""

    def wrap(self, app: Any, emulator: Emulator) -> Any:
        """Return the WSGI app that serves requests instead of ``app``."""
        ...

    def close(self) -> None:
        """Undo what :meth:`wrap` changed; called when the emulator stops. Must be idempotent."""
        ...


class Extension(Protocol):
    """Makes one part of the emulated account behave as AWS does."""

    name: str

    def install(self, emulator: Emulator) -> None:
        """Hook into the running server (patch a moto response class, start a worker, ...)."""
        ...

    def close(self) -> None:
        """Undo :meth:`install`: stop workers and child processes, close ports. Must be idempotent."""
        ...


def free_port() -> int:
    """A TCP port on the loopback address that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


class Emulator:
    """moto's server on ``127.0.0.1`` with the platform's extensions installed.

    Use as a context manager::

        with Emulator(extensions=[...]) as emu:
            s3 = emu.client("s3")
    """

    def __init__(
        self,
        *,
        region: str = "us-east-1",
        extensions: list[Extension] | None = None,
        workdir: Path | None = None,
        port: int | None = None,
        authorizer: RequestGate | None = None,
    ) -> None:
        self.region = region
        self.account_id = ACCOUNT_ID
        self.extensions: list[Extension] = list(extensions or [])
        self._own_workdir = workdir is None
        self.workdir = (
            Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="mlops-emulator-"))
        )
        self.port = port or free_port()
        self._server: ThreadedMotoServer | None = None
        self._installed: list[Extension] = []
        self.moto_app: Any = None
        self.authorizer = authorizer
        """Judges every request before moto serves it (``rehearsal.iam.Authorizer``); None: no IAM."""

    @property
    def endpoint_url(self) -> str:
        """Base URL of the emulated AWS APIs (every service)."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def credentials(self) -> dict[str, str]:
        """Static credentials of the account's root principal (the deployer's identity)."""
        return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for ``service`` against this emulator."""
        import boto3

        return boto3.client(
            service,  # type: ignore[call-overload]
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            **{**self.credentials, **kwargs},
        )

    def extension(self, name: str) -> Extension:
        """The installed extension called ``name``."""
        for ext in self._installed:
            if ext.name == name:
                return ext
        raise EmulatorError(
            f"no extension {name!r} is installed (installed: {[e.name for e in self._installed]})"
        )

    def start(self) -> Emulator:
        """Reset moto's state, start the server and install every extension."""
        global _running
        with _running_lock:
            if _running is not None:
                raise EmulatorError(
                    "an emulator is already running in this process (moto's state is process-global); "
                    "stop it first"
                )
            _running = self
        try:
            self._start_server()
            for ext in self.extensions:
                ext.install(self)
                self._installed.append(ext)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_server(self) -> None:
        from moto.moto_api._internal.models import moto_api_backend
        from moto.server import ThreadedMotoServer

        # An empty account: no state left over from an earlier emulator or a moto test in this process.
        moto_api_backend.reset()
        os.environ.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "false")
        # AWS's managed policies (AmazonEKSClusterPolicy, ...) exist in every account; moto loads them
        # into an account's IAM only when asked, and only when that account's IAM backend first starts.
        os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        from rehearsal.moto_fixes import apply_moto_fixes

        apply_moto_fixes()  # moto crashes and refusals on requests AWS accepts
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request on the terminal
        self._server = ThreadedMotoServer(ip_address=LOOPBACK, port=self.port, verbose=False)
        self._server.start()
        wsgi_server: Any = self._server._server  # pyright: ignore[reportPrivateUsage]
        self.moto_app = wsgi_server.app
        """moto's dispatcher (behind the authorizer): extensions may route requests moto lacks."""
        if self.authorizer is not None:
            wsgi_server.app = self.authorizer.wrap(wsgi_server.app, self)  # werkzeug reads .app per request

    def stop(self) -> None:
        """Close the extensions (last installed first), stop the server, remove an owned workdir."""
        global _running
        errors: list[str] = []
        for ext in reversed(self._installed):
            try:
                ext.close()
            except Exception as exc:  # keep closing the others; report all at the end
                errors.append(f"{ext.name}: {exc}")
        self._installed.clear()
        if self.authorizer is not None:
            self.authorizer.close()
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        with _running_lock:
            if _running is self:
                _running = None
        if errors:
            raise EmulatorError("extensions failed to close: " + "; ".join(errors))

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
