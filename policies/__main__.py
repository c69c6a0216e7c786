"""Entry point of the policy pack: ``pulumi preview --policy-pack policies`` runs this file.

Building the ``PolicyPack`` starts pulumi-policy's analyzer server, so nothing here runs on import
of the ``policies`` package; only the Pulumi CLI executes this module.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The pack runs from its own folder: make the repository importable when the venv lacks the project.
_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from pulumi_policy import PolicyPack  # noqa: E402

from policies.pack import PACK_NAME, pack_environment, policies_for  # noqa: E402

PolicyPack(
    name=PACK_NAME,
    policies=list(policies_for(pack_environment())),
    description="MLOps platform guardrails; levels for the stack's environment (MLOPS_ENVIRONMENT or the stack name).",
)
