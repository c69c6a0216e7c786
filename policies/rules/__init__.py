"""Rule modules by area; importing this package registers every rule in :data:`policies.core.REGISTRY`."""

from __future__ import annotations

from policies.rules import (  # noqa: F401 - imported for their registrations
    analytics,
    compute,
    data_science,
    delivery,
    iam,
    kms,
    logs,
    mwaa,
    network,
    s3,
    sagemaker,
    tags,
)
