"""Pulumi entry point: read the stack config, build the platform, export its outputs."""

import pulumi

from stacks.config import load_config
from stacks.outputs import stack_outputs
from stacks.platform import build

for key, value in stack_outputs(build(load_config())).items():
    pulumi.export(key, value)
