"""The platform contract: names, limits and metrics that the infrastructure and the pipeline code share.

``components/``, ``stacks/`` and ``pipelines/`` never import each other's code, but they must agree on
how a model's resources are named, which API limits apply and which CloudWatch metrics exist. Those
facts live here, in plain Python with no third-party imports (no Pulumi, no boto3), so every side
imports the same definition and a test can check that they agree.
"""
