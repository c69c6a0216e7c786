"""Composition: build one environment's platform from its validated config.

``pulumi up`` runs ``__main__.py`` -> :func:`build`; the offline synth runs the same function
under the mock engine. Environments differ only through :class:`~stacks.config.PlatformConfig`.
Each layer is a function that takes the config and the records of earlier layers and returns a
frozen record of its own components; nothing is mutated after it is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stacks.compute import Compute, build_compute
from stacks.config import PlatformConfig
from stacks.config.placeholders import placeholder_paths, refuse_placeholders
from stacks.data_science import DataScience, build_data_science
from stacks.foundation import Foundation, build_foundation
from stacks.ml_services import MlServices, build_ml_services
from stacks.outputs import OUTPUT_KEYS, stack_outputs

__all__ = ["OUTPUT_KEYS", "Platform", "build"]


@dataclass(frozen=True)
class Platform:
    """The built platform: the config and each layer's record."""

    config: PlatformConfig
    """The validated stack config it was built from."""
    foundation: Foundation
    """Keys, network, lake, account and partition."""
    compute: Compute
    """Cluster, Spark, Studio and analytics."""
    ml: MlServices
    """Registry, observability, endpoint, MWAA and delivery."""
    data_science: DataScience
    """Studio, managed MLflow and the feature store."""

    @property
    def outputs(self) -> dict[str, Any]:
        """The stack outputs by key (declared in :mod:`stacks.outputs`)."""
        return stack_outputs(self)


def build(config: PlatformConfig) -> Platform:
    """Declare the whole platform for one environment and return its layer records."""
    foundation = build_foundation(config)
    placeholders = placeholder_paths(config)
    if placeholders:
        # Fails the preview or update in any account but the documentation one (the offline synth and the
        # rehearsal), before an access entry or key grant names a role or key that does not exist.
        foundation.account_id.apply(lambda acct: refuse_placeholders(config.environment, acct, placeholders))
    compute = build_compute(config, foundation)
    ml = build_ml_services(config, foundation, compute)
    data_science = build_data_science(config, foundation, compute, ml)
    return Platform(config=config, foundation=foundation, compute=compute, ml=ml, data_science=data_science)
