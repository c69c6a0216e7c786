"""``python -m stacks.config.live_counts MODELS_JSON PREFIX``: keep autoscaled capacity across a deploy.

A deploy replaces the endpoint config, and ``UpdateEndpoint`` starts every variant at the new config's
``InitialInstanceCount`` unless it is called with ``RetainAllVariantProperties``
(https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling-update.html). pulumi-aws 7.51 (the
bridged Terraform ``aws_sagemaker_endpoint``) cannot pass that flag (hashicorp/terraform-provider-aws
#48990; PR #49069 open), so a promotion during a busy hour would scale a fleet that Application Auto
Scaling had grown back down to ``endpoint.instanceCount`` and make target tracking grow it again.

The promote build (``delivery/buildspecs/promote.yml``) therefore reads each autoscaled variant's live
capacity just before ``pulumi up`` and raises ``models[<i>].endpoint.instanceCount`` of its checkout
to it (clamped to ``[minInstances, maxInstances]``). It never lowers the configured count: the
committed count is the floor a deploy starts from. It prints one ``<config path> <count>`` line per
change for ``pulumi config set --path --type int``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from stacks.config.ml import EndpointConfig

LiveCount = Callable[[str, str], int | None]
"""``(endpoint name, variant name) -> instances it runs now``, None when the endpoint does not exist."""


def retained_counts(models: Sequence[Mapping[str, Any]], prefix: str, live: LiveCount) -> dict[str, int]:
    """Config paths to raise -> the instance count to deploy with, for the autoscaled variants of
    ``models`` (the target stack's ``mlops-platform:models``) in the environment ``prefix``."""
    from platform_contract.naming import model_names

    raised: dict[str, int] = {}
    for index, entry in enumerate(models):
        endpoint = EndpointConfig.model_validate(entry.get("endpoint") or {})
        if not endpoint.has_model or endpoint.serverless is not None or not endpoint.autoscaling:
            continue
        running = live(model_names(prefix, str(entry["name"])).endpoint, endpoint.variant_name)
        if running is None:
            continue
        count = min(max(running, endpoint.min_instances), endpoint.max_instances)
        if count > endpoint.instance_count:
            raised[f"models[{index}].endpoint.instanceCount"] = count
    return raised


def sagemaker_live_count(sm: Any) -> LiveCount:
    """A :data:`LiveCount` reading ``DescribeEndpoint`` (the larger of current and desired counts, so
    a scale-out in progress is kept)."""

    def live(endpoint: str, variant: str) -> int | None:
        try:
            described = sm.describe_endpoint(EndpointName=endpoint)
        except sm.exceptions.ClientError as exc:
            if "Could not find endpoint" in str(exc):
                return None
            raise
        for production in described.get("ProductionVariants", []):
            if production.get("VariantName") == variant:
                counts = [production.get("CurrentInstanceCount"), production.get("DesiredInstanceCount")]
                known = [int(c) for c in counts if c is not None]
                return max(known) if known else None
        return None

    return live


def main(argv: list[str] | None = None) -> int:
    """Print ``<path> <count>`` for each autoscaled variant whose live capacity exceeds its config."""
    import json
    import sys

    import boto3

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(
            "usage: python -m stacks.config.live_counts <models JSON> <name prefix, e.g. mlops-prod>",
            file=sys.stderr,
        )
        return 2
    try:
        models = json.loads(args[0])
    except ValueError as exc:
        print(
            f"models is not JSON ({exc}): pass `pulumi config get models` of the target stack",
            file=sys.stderr,
        )
        return 2
    for path, count in retained_counts(
        models, args[1], sagemaker_live_count(boto3.client("sagemaker"))
    ).items():
        print(path, count)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
