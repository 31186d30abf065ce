"""The merger's own refusals: a request that cannot be merged as sent, said in plain words
(inputs named by position, never by key or URL) with a stable code from ``schemas.codes``."""

from __future__ import annotations

from services.common.errors import PermanentError


class MergeRejected(PermanentError):
    public = True

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)
