"""Typed stack configuration: one model, parsed once from the stack's Pulumi config.

Every environment (dev, staging, prod) is the same program with a different
``stacks/Pulumi.<env>.yaml``. The package turns that file's values into a validated
:class:`PlatformConfig` *before any resource is declared*, so a typo or an unsafe value fails
with a message that names the config key, the bad value and the rule, instead of a half-applied
``pulumi up``.

Keys are camelCase in YAML (Pulumi's convention) and snake_case in Python. Nested sections are
Pulumi structured config objects, e.g.::

    config:
      aws:region: eu-west-1
      mlops-platform:environment: prod
      mlops-platform:network:
        cidr: 10.30.0.0/16
        azCount: 3
        natStrategy: per_az

Modules: :mod:`~stacks.config.base` (namespace, :class:`ConfigError`, the section base),
:mod:`~stacks.config.foundation`, :mod:`~stacks.config.compute`, :mod:`~stacks.config.ml` and
:mod:`~stacks.config.data_science` (the sections, one module per layer), :mod:`~stacks.config.platform` (:class:`PlatformConfig` and the
per-environment rules) and :mod:`~stacks.config.load` (parsing). None imports Pulumi or
``components``: the API limits both sides check live in :mod:`platform_contract.limits`.
"""

from stacks.config.base import ENVIRONMENTS, PROJECT, ConfigError
from stacks.config.load import CONFIG_KEYS, load_config, parse_config
from stacks.config.platform import PlatformConfig

__all__ = [
    "CONFIG_KEYS",
    "ENVIRONMENTS",
    "PROJECT",
    "ConfigError",
    "PlatformConfig",
    "load_config",
    "parse_config",
]
