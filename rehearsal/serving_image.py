"""The emulated scikit-learn serving image: its web stack, run inside :mod:`rehearsal.container`.

In AWS the prebuilt SageMaker scikit-learn image serves a model with gunicorn + Flask
(``sagemaker_sklearn_container.serving`` over ``sagemaker_containers``,
https://github.com/aws/sagemaker-scikit-learn-container/blob/master/src/sagemaker_sklearn_container/serving.py):
it imports the user module named by ``SAGEMAKER_PROGRAM`` from the submit directory, calls its
``model_fn(model_dir)`` once, then answers ``GET /ping`` and ``POST /invocations`` with the module's
``input_fn`` / ``predict_fn`` / ``output_fn`` (or ``transform_fn``).

This file stands in for that web stack. It is copied into the container's own folder and run by the
emulator with ``python -I -S`` (so it sees the submitted code and the image's libraries, never the
repository), and it uses the standard library only: ``http.server.ThreadingHTTPServer`` instead of
gunicorn + Flask, bound to ``127.0.0.1`` on the port the emulator passes.

Behaviour kept from ``sagemaker_containers`` (``_worker.py`` / ``_transformer.py``):

- the request content type is the ``ContentType`` or ``Content-Type`` header, else
  ``application/json``; ``Accept`` missing or ``*/*`` means ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``
  (default ``application/json``); a body of a UTF-8 type (JSON, CSV) is passed as ``str``;
- missing ``input_fn``/``output_fn`` fall back to a JSON/CSV decoder/encoder; a module without
  ``model_fn`` or ``predict_fn`` cannot serve (the image raises ``NotImplementedError``);
- an exception from a user handler is not a client error: the answer is HTTP 500 (Flask's unhandled
  exception page), whatever the exception carries (``_functions.error_wrapper`` re-raises it as
  ``ClientError``; the ``sagemaker_inference`` toolkit's status-carrying errors belong to the
  multi-model server, which a single-model endpoint does not run);
- what the handler *returns* decides the answer (``_transformer.Transformer.transform``, then Flask): a
  ``(body, content_type)`` tuple is a 200 of that type; a Flask/Werkzeug response is sent as it is,
  with its status (how a handler answers 4xx); a bare ``str``/``bytes`` is a 200 ``text/html``.

Differences: the model is loaded before the port opens, and a module that fails to import or a
``model_fn`` that raises makes the process exit with status 3 (the real server keeps answering
``/ping`` with 500 until SageMaker gives up), so the emulator reports the failure at once.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any

EXIT_LOAD_FAILED = 3
"""Exit status when the user module cannot be imported or ``model_fn`` fails."""

UTF8_TYPES = ("application/json", "text/csv")
JSON = "application/json"

logger = logging.getLogger("sagemaker-emulated-serving")


class Handlers:
    """The user module's handlers, with the image's defaults where the module has none."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module
        self.model_fn = getattr(module, "model_fn", None)
        self.input_fn = getattr(module, "input_fn", None) or _default_input_fn
        self.predict_fn = getattr(module, "predict_fn", None)
        self.output_fn = getattr(module, "output_fn", None) or _default_output_fn
        self.transform_fn = getattr(module, "transform_fn", None)
        has_steps = any(hasattr(module, n) for n in ("input_fn", "predict_fn", "output_fn"))
        if self.transform_fn is not None and has_steps:
            raise ValueError(
                "Cannot use transform_fn implementation with input_fn, predict_fn, and/or output_fn"
            )
        if self.model_fn is None:
            raise NotImplementedError(
                f"{module.__name__} has no model_fn: please provide a model_fn implementation"
            )
        if self.transform_fn is None and self.predict_fn is None:
            raise NotImplementedError(
                f"{module.__name__} has no predict_fn: please provide a predict_fn implementation"
            )

    def transform(
        self, model: Any, body: bytes | str, content_type: str, accept: str
    ) -> tuple[int, bytes, str]:
        """Run the request through the handlers; returns ``(status, body, content_type)``."""
        if self.transform_fn is not None:
            result = self.transform_fn(model, body, content_type, accept)
        else:
            data = self.input_fn(body, content_type)
            prediction = self.predict_fn(data, model)  # type: ignore[misc]
            result = self.output_fn(prediction, accept)
        return _response(result)


def _response(result: Any) -> tuple[int, bytes, str]:
    """``(status, body, content_type)`` of what a handler returned, as the image's Flask app sends it."""
    if isinstance(result, tuple):
        # Transformer.transform: Response(response=result[0], mimetype=result[1]), status 200
        payload, mimetype, status = result[0], str(result[1]), 200
    elif callable(getattr(result, "get_data", None)) and isinstance(
        getattr(result, "status_code", None), int
    ):
        # a Flask/Werkzeug response (duck-typed: this file uses the standard library only)
        payload, status = result.get_data(), int(result.status_code)
        mimetype = str(result.headers.get("Content-Type") or result.mimetype or "text/html; charset=utf-8")
    elif isinstance(result, str | bytes | bytearray):
        payload, mimetype, status = result, "text/html; charset=utf-8", 200  # Flask's default response
    else:
        raise TypeError(
            f"the handler returned {type(result).__name__}; return (body, content_type) or a Flask response"
        )
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    return status, bytes(payload), mimetype


def _default_input_fn(input_data: bytes | str, content_type: str) -> Any:
    import numpy as np

    kind = content_type.split(";", 1)[0].strip().lower()
    text = input_data if isinstance(input_data, str) else input_data.decode("utf-8")
    if kind == JSON:
        return np.asarray(json.loads(text))
    if kind == "text/csv":
        import io

        return np.genfromtxt(io.StringIO(text), delimiter=",", dtype=np.float32, ndmin=2)
    raise ValueError(f"Content type {content_type} is not supported by this framework")


def _default_output_fn(prediction: Any, accept: str) -> tuple[bytes, str]:
    import numpy as np

    kind = accept.split(";", 1)[0].strip().lower()
    array = np.asarray(prediction)
    if kind == JSON:
        return json.dumps(array.tolist()).encode("utf-8"), JSON
    if kind == "text/csv":
        rows = array.reshape(len(array), -1) if array.ndim else array.reshape(1, 1)
        return ("\n".join(",".join(str(v) for v in row) for row in rows.tolist()) + "\n").encode(), accept
    raise ValueError(f"Accept type {accept} is not supported by this framework")


def load(program: str, model_dir: str) -> tuple[Handlers, Any]:
    """Import the user module named by ``SAGEMAKER_PROGRAM`` and call its ``model_fn`` once."""
    module_name = program[:-3] if program.endswith(".py") else program
    module = importlib.import_module(module_name)
    handlers = Handlers(module)
    model = handlers.model_fn(model_dir)  # type: ignore[misc]
    return handlers, model


def make_server(handlers: Handlers, model: Any, port: int, default_accept: str) -> ThreadingHTTPServer:
    """The HTTP server answering ``/ping`` and ``/invocations`` on ``127.0.0.1:port``."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

        def log_message(self, format: str, *args: Any) -> None:
            return  # one line per request would flood the container log

        def _send(
            self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] == "/ping":
                self._send(200, b"", JSON)
            else:
                self._send(404, b"Not Found", "text/plain")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if self.path.split("?", 1)[0] != "/invocations":
                self._send(404, b"Not Found", "text/plain")
                return
            content_type = self.headers.get("ContentType") or self.headers.get("Content-Type") or JSON
            accept = self.headers.get("Accept")
            if not accept or accept == "*/*":
                accept = default_accept
            body: bytes | str = raw
            if content_type.split(";", 1)[0].strip().lower() in UTF8_TYPES:
                body = raw.decode("utf-8", errors="replace")
            extra = {}
            attributes = self.headers.get("X-Amzn-SageMaker-Custom-Attributes")
            if attributes is not None:
                extra["X-Amzn-SageMaker-Custom-Attributes"] = attributes
            try:
                status, payload, mimetype = handlers.transform(model, body, content_type, accept)
            except Exception:
                # sagemaker_containers wraps every handler error in ClientError and lets Flask answer
                # it as an unhandled exception: 500, whatever status the exception carries.
                traceback.print_exc()
                self._send(
                    500,
                    b"<!doctype html>\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>\n"
                    b"<p>The server encountered an internal error and was unable to complete your request.</p>\n",
                    "text/html; charset=utf-8",
                )
                return
            self._send(status, payload, mimetype, extra)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


def main(argv: list[str]) -> int:
    """``serve <model_dir> <port>``: load the user module, then serve until terminated."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s - %(name)s - %(message)s")
    if len(argv) != 3 or argv[0] != "serve":
        print(f"usage: serve <model_dir> <port> (got {argv})", file=sys.stderr)
        return 2
    model_dir, port = argv[1], int(argv[2])
    program = os.environ.get("SAGEMAKER_PROGRAM", "")
    started = time.monotonic()
    try:
        handlers, model = load(program, model_dir)
    except BaseException:
        print(f"could not load the user module {program!r}:", file=sys.stderr)
        traceback.print_exc()
        return EXIT_LOAD_FAILED
    logger.info("loaded %s in %.2f s; serving on 127.0.0.1:%d", program, time.monotonic() - started, port)
    server = make_server(handlers, model, port, os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", JSON))
    stop = threading.Event()

    def _terminate(*_: Any) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    import signal

    signal.signal(signal.SIGTERM, _terminate)
    parent = os.getppid()

    def _orphan_watch() -> None:
        # the emulator normally stops this process; if the emulator itself dies, stop with it
        while not stop.wait(1.0):
            if os.getppid() != parent:
                _terminate()

    threading.Thread(target=_orphan_watch, daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
