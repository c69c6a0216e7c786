"""SageMaker scikit-learn container entry point: ``model_fn``, ``input_fn``, ``predict_fn``, ``output_fn``.

The prebuilt SageMaker scikit-learn image imports this module (``entry_point="inference.py"``,
``source_dir`` holding the ``pipelines`` package) and calls, per request::

    model = model_fn(model_dir)                      # once per worker
    data = input_fn(request_body, content_type)      # bytes/str + Content-Type
    prediction = predict_fn(data, model)
    body, content_type = output_fn(prediction, accept)

Our own server (:mod:`pipelines.serving.server`) calls the same four functions, so local serving,
the custom container and the prebuilt container share one code path. Client mistakes raise
:class:`~pipelines.serving.codec.InputError` (a ``ValueError`` with a 4xx ``status_code``).

**Status codes on the prebuilt image.** A single-model endpoint of the scikit-learn image serves with
gunicorn + Flask over ``sagemaker_containers`` (``sagemaker_sklearn_container.serving:main``; the
multi-model server and its ``sagemaker_inference`` toolkit only run with ``SAGEMAKER_MULTI_MODEL``).
There every exception a user handler raises is re-raised as ``ClientError`` and Flask answers it with
500 (``sagemaker_containers._functions.error_wrapper``), whatever status it carries; the toolkit's
``BaseInferenceToolkitError`` status mapping does not exist on that path. What a handler *returns* is
kept: ``Transformer.transform`` hands a returned Flask response to Flask as is. On SageMaker a 500
counts in ``Invocation5XXErrors`` and can trip the rollback alarm, so the shipped ``inference.py``
exports :func:`model_fn` and :func:`transform_fn`, which answers an :class:`InputError` with a Flask
response of its 4xx status (``Invocation4XXErrors``); server faults still raise and answer 500.
Sources: https://github.com/aws/sagemaker-scikit-learn-container (``serving.py``) and
https://github.com/aws/sagemaker-containers (``_transformer.py``, ``_functions.py``, ``_worker.py``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.serving.artifact import ArtifactError, ClassLayout, ModelArtifact, load_artifact
from pipelines.serving.codec import (
    InputError,
    Prediction,
    RawTable,
    align_to_features,
    decode_body,
    encode_prediction,
    negotiate_accept,
)

logger = logging.getLogger(__name__)

FAST_PATH_ENV = "SERVING_FAST_PATH"
"""Set to ``0`` to serve through scikit-learn even when the NumPy fast path verifies."""

__all__ = ["input_fn", "model_fn", "output_fn", "predict_fn", "transform", "transform_fn"]


def model_fn(model_dir: str | Path) -> ModelArtifact:
    """Load and verify the artifact in ``model_dir`` (checksum and metadata schema checked first).

    When the fitted pipeline is one :mod:`pipelines.serving.fastpath` implements and its output
    matches scikit-learn's on probe rows, requests are served through that NumPy runtime.

    Raises:
        ArtifactError: logged at ERROR with the reason; the container's health check then fails.
    """
    try:
        artifact = load_artifact(model_dir)
    except ArtifactError as error:
        logger.error("refusing to serve the model in %s: %s", model_dir, error)
        raise
    if os.environ.get(FAST_PATH_ENV, "1") != "0":
        from pipelines.serving.fastpath import build_verified

        artifact = dataclasses.replace(artifact, fast=build_verified(artifact.model, artifact.features))
    _ = artifact.class_layout  # computed once here rather than on the first request
    logger.info(
        "loaded model %s (run %s, %d features) from %s",
        artifact.metadata.get("model_name", "?"),
        artifact.metadata.get("run_id", "?"),
        len(artifact.features),
        model_dir,
    )
    return artifact


def input_fn(input_data: bytes | bytearray | str, content_type: str | None) -> RawTable:
    """Parse the request body (``text/csv``, ``application/json`` or ``application/x-npy``).

    Raises:
        InputError: 415 for an unsupported type, 400 for an empty or malformed body.
    """
    return decode_body(input_data, content_type)


def predict_fn(input_data: RawTable, model: ModelArtifact) -> Prediction:
    """Align the parsed rows with the model's features and predict.

    Raises:
        InputError: 400 when the columns do not match the model's features or a numeric value is
            not a number, or when the model itself rejects the values (e.g. NaN without an imputer).
    """
    columns = align_to_features(input_data, model.features)
    estimator = model.model
    fast = model.fast
    try:
        if model.is_classification:
            if fast is not None:
                probabilities = fast.predict(columns)
            else:
                probabilities = np.asarray(
                    estimator.predict_proba(_model_input(columns, model)), dtype=np.float64
                )
            layout = model.class_layout or ClassLayout.of(range(probabilities.shape[1]), model.positive_class)
            return Prediction(
                labels=layout.labels[probabilities.argmax(axis=1)],
                scores=probabilities[:, layout.positive_index],
                probabilities=probabilities,
                classes=layout.classes,
            )
        raw = fast.predict(columns) if fast is not None else estimator.predict(_model_input(columns, model))
        values = np.asarray(raw, dtype=np.float64).reshape(-1)
        return Prediction(labels=values, scores=values, probabilities=None, classes=())
    except ValueError as error:
        # scikit-learn validates its input with ValueError (NaN without an imputer, unknown category
        # with handle_unknown="error"): the request is at fault, not the server.
        message = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
        raise InputError(f"the model rejected the input: {message}") from None


def _model_input(columns: dict[str, np.ndarray], model: ModelArtifact) -> Any:
    estimator = model.model
    if not hasattr(estimator, "feature_names_in_") and all(f.kind == "numeric" for f in model.features):
        # fitted on a plain array: skip the DataFrame (faster, and no feature-name warning)
        return np.column_stack([columns[f.name] for f in model.features])
    import pandas as pd

    return pd.DataFrame(columns, copy=False)


def output_fn(prediction: Prediction, accept: str | None) -> tuple[bytes, str]:
    """Encode the prediction for the ``Accept`` header; returns ``(body, content_type)``.

    Raises:
        InputError: 406 when the client accepts neither JSON nor CSV.
    """
    chosen = negotiate_accept(accept)
    return encode_prediction(prediction, chosen), chosen


def transform(
    model: ModelArtifact, body: bytes | bytearray | str, content_type: str | None, accept: str | None
) -> tuple[bytes, str]:
    """The whole request path: negotiate ``Accept`` first (406 before any work), then the four handlers."""
    chosen = negotiate_accept(accept)
    prediction = predict_fn(input_fn(body, content_type), model)
    return encode_prediction(prediction, chosen), chosen


def error_body(error: InputError) -> bytes:
    """The JSON body of a 4xx answer: ``{"error": <message>, "status": <code>}`` (the platform server's shape)."""
    import json

    return json.dumps({"error": error.message, "status": error.status_code}).encode()


def transform_fn(
    model: ModelArtifact, input_data: bytes | bytearray | str, content_type: str | None, accept: str | None
) -> Any:
    """The scikit-learn image's whole-request handler (used instead of the four): ``(body, content_type)``
    for a prediction, or a Flask response with the 4xx status of an :class:`InputError`.

    The image raises every handler exception as a 500 and keeps only a *returned* response's status
    (see the module docs), so client mistakes are returned, not raised. Flask is imported here, on
    the error path only: it is part of the image, and the platform's own server never calls this.
    """
    try:
        return transform(model, input_data, content_type, accept)
    except InputError as error:
        from flask import Response

        logger.info("answering %d: %s", error.status_code, error.message)
        return Response(error_body(error), status=error.status_code, mimetype="application/json")


def is_input_error(error: BaseException) -> bool:
    """True when an exception is the client's fault (answer 4xx), False for a server fault (5xx)."""
    return isinstance(error, InputError)
