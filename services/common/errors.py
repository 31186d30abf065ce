"""Error taxonomy shared by every service.

Stages retry :class:`TransientError` (network trouble, 5xx, timeouts) and fail fast on
:class:`PermanentError`, whose ``code`` is a short machine-readable reason recorded with the job.
"""

from __future__ import annotations


class TapedeckError(Exception):
    """Base class for errors raised on purpose by Tapedeck code."""


class TransientError(TapedeckError):
    """A failure worth retrying: the same call may succeed later."""


class PermanentError(TapedeckError):
    """A failure that retrying will not fix; ``code`` names the reason."""

    code: str = "permanent"

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"
