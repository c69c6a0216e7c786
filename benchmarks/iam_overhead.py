"""Per-request cost of the emulator's IAM authorizer: the same S3 calls with and without it.

    python -m benchmarks.iam_overhead [REQUESTS]

Three runs of ``REQUESTS`` PutObject + GetObject (SSE-KMS, so each also authorizes the KMS calls S3
makes): no authorizer (root keys), authorizer attached but root keys (the deploy's and the traffic
loop's calls: let through unparsed), authorizer judging a role session. Prints milliseconds per call.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


def _calls(s3: Any, bucket: str, key_arn: str, n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        s3.put_object(
            Bucket=bucket, Key=f"k/{i}", Body=b"x" * 256, ServerSideEncryption="aws:kms", SSEKMSKeyId=key_arn
        )
        s3.get_object(Bucket=bucket, Key=f"k/{i}")["Body"].read()
    return (time.perf_counter() - started) * 1000 / (2 * n)


def run(n: int, mode: str) -> float:
    """Milliseconds per call in ``mode`` (``none``, ``root``, ``role``)."""
    from rehearsal.emulator import Emulator
    from rehearsal.iam import Authorizer
    from rehearsal.iam.identities import client_as

    authorizer = Authorizer() if mode != "none" else None
    with Emulator(authorizer=authorizer) as emu:
        key_arn = emu.client("kms").create_key()["KeyMetadata"]["Arn"]
        emu.client("s3").create_bucket(Bucket="bench")
        iam = emu.client("iam")
        arn = iam.create_role(RoleName="bench", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
        iam.put_role_policy(
            RoleName="bench",
            PolicyName="main",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["s3:PutObject", "s3:GetObject"],
                            "Resource": "arn:aws:s3:::bench/k/*",
                        },
                        {
                            "Effect": "Allow",
                            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                            "Resource": key_arn,
                        },
                    ],
                }
            ),
        )
        credentials = (
            authorizer.issue_credentials(arn, service="sagemaker.amazonaws.com")
            if authorizer is not None and mode == "role"
            else None
        )
        s3 = client_as(emu, "s3", credentials)
        _calls(s3, "bench", key_arn, 5)  # warm up
        return _calls(s3, "bench", key_arn, n)


def main() -> None:
    """Print the three timings."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    results = {mode: run(n, mode) for mode in ("none", "root", "role")}
    for mode, ms in results.items():
        print(f"{mode:>5}: {ms:.2f} ms per call")
    print(f"role vs none: +{(results['role'] / results['none'] - 1) * 100:.0f} %")


if __name__ == "__main__":
    main()
