"""Model serving: the SageMaker scikit-learn handler functions and an HTTP server for the same code path.

``pipelines.serving.inference`` is the entry point for the prebuilt SageMaker scikit-learn container
(``model_fn``, ``input_fn``, ``predict_fn``, ``output_fn``); ``pipelines.serving.server`` serves the
same handlers on ``/ping`` and ``/invocations`` (locally through ``mlops serve`` or as a custom
container's entry point, ``python -m pipelines.serving serve``).
"""
