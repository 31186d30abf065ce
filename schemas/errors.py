"""Failure payload shared by every ``*.failed`` event."""

from __future__ import annotations

from pydantic import Field

from schemas.envelope import StrictModel


class ErrorInfo(StrictModel):
    """What went wrong, and whether trying again could help."""

    code: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    # Unbounded and may be empty: this is filled from exceptions in the failure
    # path, where a validation error of its own would lose the original one.
    message: str
    retryable: bool
    attempts: int = Field(ge=1)
