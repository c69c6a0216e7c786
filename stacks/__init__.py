"""Stack composition: config model, ``build()``, per-environment config files and the offline synth."""

# Load the config model first: the section modules (stacks/config_<layer>.py) subclass its base and
# it imports them, so importing a section module before stacks.config would otherwise be circular.
from stacks import config as _config  # noqa: F401
