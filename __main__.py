"""Pulumi entry point: read the stack config, build the platform, export its outputs."""

import pulumi

from stacks.config import load_config
from stacks.platform import build

platform = build(load_config())
for key, value in platform.outputs.items():
    pulumi.export(key, value)
