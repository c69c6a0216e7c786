"""CodeBuild, CodePipeline and ECR: encrypted artifacts, no unconfigured privileged builds,
immutable scanned encrypted images."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from policies.core import Context, Level, as_list, is_truthy, resource_rule, tags_of

PROJECT = "aws:codebuild/project:Project"
PIPELINE = "aws:codepipeline/pipeline:Pipeline"
ECR_REPOSITORY = "aws:ecr/repository:Repository"
PRIVILEGED_TAG = "privileged-reason"
"""A build that must run Docker declares why in this tag; privileged mode is refused without it."""


@resource_rule(
    "codebuild-encrypted-artifacts",
    [PROJECT],
    why="Build artifacts are the code that runs on the platform; unencrypted they can be read or swapped.",
    fix="Leave artifacts encryption on and set encryptionKey to the platform's KMS key.",
)
def encrypted_artifacts(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """CodeBuild projects encrypt artifacts with a customer-managed key.

    Mirrors: CKV_AWS_78, CKV_AWS_147
    """
    for artifacts in [props.get("artifacts"), *as_list(props.get("secondaryArtifacts"))]:
        if isinstance(artifacts, Mapping) and is_truthy(artifacts.get("encryptionDisabled")):
            yield f"artifact encryption is disabled ({artifacts.get('artifactIdentifier') or 'primary'})"
    if not props.get("encryptionKey"):
        yield "no encryptionKey: artifacts use the AWS-managed S3 key"


@resource_rule(
    "codebuild-no-privileged-mode",
    [PROJECT],
    why="Privileged mode gives the build container root on the host: a poisoned dependency can escape the build.",
    fix=f"Set privilegedMode: false, or tag the project {PRIVILEGED_TAG}=<why it needs Docker>.",
)
def no_privileged(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """CodeBuild projects do not run privileged unless configured so with a reason.

    Mirrors: CKV_AWS_316
    """
    env = props.get("environment") or {}
    if is_truthy(env.get("privilegedMode")) and not tags_of(props).get(PRIVILEGED_TAG):
        yield "privilegedMode is true without a privileged-reason tag"


@resource_rule(
    "codepipeline-artifact-kms",
    [PIPELINE],
    why="The artifact store holds every stage's input and output, packaged code included.",
    fix="Set artifactStores[].encryptionKey {type: KMS, id: <key ARN>}.",
)
def pipeline_kms(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """CodePipeline artifact stores are encrypted with a customer-managed key.

    Mirrors: CKV_AWS_219
    """
    stores = [s for s in as_list(props.get("artifactStores")) if isinstance(s, Mapping)]
    if not stores:
        yield "no artifact store"
    for store in stores:
        if not (store.get("encryptionKey") or {}).get("id"):
            yield f"artifact store {store.get('location')!r} has no customer encryption key"


@resource_rule(
    "ecr-immutable-tags",
    [ECR_REPOSITORY],
    why="Mutable tags let a pushed image silently replace the one a model or job was tested with.",
    fix="Set imageTagMutability: IMMUTABLE.",
)
def ecr_immutable(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """ECR repositories have immutable tags.

    Mirrors: CKV_AWS_51
    """
    if props.get("imageTagMutability") not in ("IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION"):
        yield f"imageTagMutability is {props.get('imageTagMutability') or 'MUTABLE (default)'!r}"


@resource_rule(
    "ecr-scan-on-push",
    [ECR_REPOSITORY],
    level=Level.ADVISORY,
    why="Scanning on push finds known CVEs in serving and training images before they are deployed.",
    fix="Set imageScanningConfiguration.scanOnPush: true.",
)
def ecr_scan(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """ECR repositories scan images on push.

    Mirrors: CKV_AWS_163
    """
    if not is_truthy((props.get("imageScanningConfiguration") or {}).get("scanOnPush")):
        yield "scanOnPush is not enabled"


@resource_rule(
    "ecr-kms",
    [ECR_REPOSITORY],
    why="Images contain the model server and sometimes the model; a customer key keeps pulls under the key policy.",
    fix="Set encryptionConfigurations [{encryptionType: KMS, kmsKey: <key ARN>}].",
)
def ecr_kms(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """ECR repositories are encrypted with a customer-managed KMS key.

    Mirrors: CKV_AWS_136
    """
    configs = [c for c in as_list(props.get("encryptionConfigurations")) if isinstance(c, Mapping)]
    if not any(c.get("encryptionType") == "KMS" and c.get("kmsKey") for c in configs):
        yield "not encrypted with a customer KMS key"
