"""The pipeline's error base: every step error is a :class:`PipelineError` with an exit code.

The CLI catches :class:`PipelineError` once (:func:`pipelines.cli_errors.cli_errors`) and prints its
message (and hint) without a traceback; anything else is a bug and keeps its traceback. AWS errors
that a user fixes with a setting (no credentials, a model package group that does not exist) are
translated into :class:`NotConfiguredError` by :func:`from_aws_error` with the setting named.

No third-party imports at module level: the training and inference code shipped to SageMaker
imports this module.
"""

from __future__ import annotations

import re
from enum import IntEnum
from typing import ClassVar


class ExitCode(IntEnum):
    """Process exit codes of ``mlops synth``, ``mlops pipeline``, ``mlops monitor`` and ``mlops serve``."""

    OK = 0
    """The command did what it was asked."""
    STEP_FAILED = 1
    """A step ran and failed (a training job failed, an AWS call was refused, ...)."""
    INPUT_REJECTED = 2
    """An input was rejected before any work: a bad batch, contract, model artifact, option or stack config."""
    NOT_CONFIGURED = 3
    """A setting, credentials or a deployed resource the command needs is missing; the hint names it."""
    GATE_FAILED = 4
    """The model was trained and evaluated but did not pass the quality gate (not registered)."""


class PipelineError(Exception):
    """A step failed for a reason the user can act on; the message says what and what to do."""

    exit_code: ClassVar[int] = ExitCode.STEP_FAILED
    """Process exit code the CLI uses for this error (1: the step failed)."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint
        """Optional extra line naming the setting or command that fixes it."""


class InputRejectedError(PipelineError):
    """An input (file, contract, artifact, option value) was rejected; exit code 2."""

    exit_code: ClassVar[int] = ExitCode.INPUT_REJECTED


class NotConfiguredError(PipelineError):
    """A setting, credentials or a deployed resource is missing; exit code 3."""

    exit_code: ClassVar[int] = ExitCode.NOT_CONFIGURED


CREDENTIALS_HINT = (
    "give the AWS SDK credentials: set AWS_PROFILE (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY); "
    "for the offline rehearsal set MLOPS_ENDPOINT_URL to the emulator's URL; and pass the stack "
    "outputs with --outputs (or MLOPS_OUTPUTS_FILE) so the steps know the platform's names"
)
"""What fixes botocore's ``NoCredentialsError`` ("Unable to locate credentials")."""

GROUP_HINT = (
    "the model package group comes from the stack outputs: the 'models' map "
    "(models.<model>.modelPackageGroupName) or 'modelPackageGroupName' in the file given with "
    "--outputs, or MLOPS_MODEL_PACKAGE_GROUP_NAME; check the name and that the stack that creates "
    "the group is deployed (pulumi up)"
)
"""What fixes SageMaker's "Model Package Group ... does not exist"."""


_GROUP_MISSING = re.compile(r"model ?package ?group\b.*\b(does not exist|not found)", re.IGNORECASE)


def from_aws_error(error: BaseException) -> PipelineError | None:
    """A :class:`PipelineError` with a hint for a botocore error a setting fixes, else None.

    Recognised: ``NoCredentialsError``/``PartialCredentialsError`` ("Unable to locate credentials")
    and SageMaker's ``ValidationException`` "Model Package Group ... does not exist" (also spelt
    ``ModelPackageGroup ... does not exist``).
    """
    try:
        from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError
    except ImportError:  # a SageMaker container without botocore raises none of these
        return None
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return NotConfiguredError(f"AWS: {error}", hint=CREDENTIALS_HINT)
    if isinstance(error, ClientError):
        message = str(error.response.get("Error", {}).get("Message", ""))
        if _GROUP_MISSING.search(message):
            return NotConfiguredError(f"AWS: {message}", hint=GROUP_HINT)
    return None
