"""Error taxonomy shared by every service.

Stages retry :class:`TransientError` (network trouble, 5xx, timeouts) and fail fast on
:class:`PermanentError`, whose ``code`` is a short machine-readable reason recorded with the job.

An error's message is for operators unless its class says ``public = True`` (messages
written for the caller, such as a clip rule's): public answers otherwise carry the code's
plain message from ``schemas.codes``, and the detail goes to logs and the job record.
"""

from __future__ import annotations

from schemas.codes import public_message
from services.common.redact import redact


class TapedeckError(Exception):
    """Base class for errors raised on purpose by Tapedeck code."""

    public = False


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


def public_text(exc: BaseException, code: str) -> str:
    """What may be said about ``exc`` outside: its message if written for the caller,
    else the code's plain message."""
    if isinstance(exc, PermanentError) and exc.public and exc.message:
        return exc.message
    return public_message(code)


def operator_detail(exc: BaseException) -> str:
    """The full story for operators, without credentials or signed URLs: the exception,
    what caused it, and a provider's own words where an error carries them."""
    parts: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(parts) < 5:
        text = f"{type(current).__name__}: {current}"
        said = getattr(current, "provider_message", "")
        if said:
            text += f" (provider said: {said})"
        parts.append(text)
        current = current.__cause__
    return redact(" <- caused by ".join(parts))
