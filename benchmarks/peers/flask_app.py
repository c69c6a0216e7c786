"""The SageMaker scikit-learn container's serving stack (gunicorn + gevent workers + Flask) calling
the same handler functions as our server. Run with::

    MODEL_DIR=... PYTHONPATH=<repo> gunicorn -k gevent -w 2 -b 127.0.0.1:8081 benchmarks.peers.flask_app:app
"""

from __future__ import annotations

import os

from flask import Flask, Response, request

from pipelines.serving.codec import InputError
from pipelines.serving.inference import model_fn, transform

app = Flask(__name__)
MODEL = model_fn(os.environ["MODEL_DIR"])


@app.route("/ping", methods=["GET"])
def ping() -> Response:
    return Response("{}", status=200, mimetype="application/json")


@app.route("/invocations", methods=["POST"])
def invocations() -> Response:
    try:
        body, content_type = transform(
            MODEL, request.get_data(), request.content_type, request.headers.get("Accept")
        )
    except InputError as error:
        return Response(error.message, status=error.status_code)
    return Response(body, status=200, mimetype=content_type)
