"""The pipeline's error base: every step error is a :class:`PipelineError` with an exit code.

The CLI catches :class:`PipelineError` once and prints its message (and hint) without a traceback;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import ClassVar


class PipelineError(Exception):
    """A step failed for a reason the user can act on; the message says what and what to do."""

    exit_code: ClassVar[int] = 1
    """Process exit code the CLI uses for this error (1: the step failed)."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint
        """Optional extra line naming the setting or command that fixes it."""
