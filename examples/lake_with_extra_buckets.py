"""A data lake with an extra bucket and a custom key set: a fourth key domain for a research team.

Run as a Pulumi program's body (``main()``) or under the shared mock (``tests/unit/test_examples.py``).
"""

from __future__ import annotations

from typing import Any

from components.datalake import BucketSpec, DataLake, DataLakeArgs, default_bucket_specs
from components.encryption import Encryption, EncryptionArgs, KeySpec, default_key_specs


def main() -> dict[str, Any]:
    """Declare keys and a lake with a ``research`` bucket kept for 180 days; return names and ARNs."""
    # --8<-- [start:lake]
    keys = Encryption(
        "research",
        EncryptionArgs(
            name_prefix="research",
            region="eu-west-1",
            keys=[*default_key_specs(), KeySpec(domain="research", description="Research team scratch data")],
            deletion_window_days=7,  # a sandbox: deleted keys go quickly
            tags={"team": "research"},
        ),
    )
    lake = DataLake(
        "research",
        DataLakeArgs(
            key_arns={
                "datalake": keys.key_arn("datalake"),
                "ml": keys.key_arn("ml"),
            },
            buckets=[
                *default_bucket_specs(capture_days=30),
                BucketSpec(
                    role="scratch",
                    purpose="Ad-hoc research extracts",
                    key_domain="datalake",
                    expire_after_days=180,
                ),
            ],
            noncurrent_version_days=7,
            protect=False,
            force_destroy=True,  # a sandbox: `pulumi destroy` may empty the buckets
            tags={"team": "research"},
        ),
    )
    # --8<-- [end:lake]
    return {
        "buckets": lake.bucket_names,
        "research_key": keys.key_arn("research"),
    }
