"""HTTP errors: one JSON shape, ``{"error": {"code", "message", "param"?}}``, and the
mapping from domain failures to statuses. Pure, so every mapping is unit-tested."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from services.common.clips import ClipRejected

# The public query names of the old clip API, for params the clip rules call otherwise.
PUBLIC_PARAM = {"start_ms": "start_time_ms"}

# Codes for parameters the framework rejects before our rules run (wrong type, missing),
# matching what the clip rules would have said.
PARAM_CODES = {
    "start_time_ms": "invalid_time",
    "duration_ms": "invalid_time",
    "format": "invalid_format",
    "episode_id": "invalid_episode_id",
    "s3_key": "invalid_s3_key",
}

_CLIENT_ERRORS = frozenset({"duration_too_long", "start_past_end", "clip_too_long"})
_UPSTREAM_ERRORS = frozenset({"ffmpeg_failed", "not_audio", "source_missing"})


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.headers = dict(headers or {})
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.param, **self.extra)


def error_body(code: str, message: str, param: str | None = None, **extra: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message or code}
    if param is not None:
        error["param"] = param
    error.update({k: v for k, v in extra.items() if v is not None})
    return {"error": error}


def clip_error_status(code: str) -> int:
    """HTTP status for a clip rejection or a ``clip.failed`` code."""
    if code == "episode_not_found":
        return 404
    if code.startswith("invalid_") or code in _CLIENT_ERRORS:
        return 422
    if code in _UPSTREAM_ERRORS:
        # The source is registered but the clipper cannot use it: our side, not the caller's.
        return 502
    if code == "submit_failed":
        return 503
    return 500


def from_rejection(exc: ClipRejected) -> ApiError:
    param = PUBLIC_PARAM.get(exc.param, exc.param) if exc.param else None
    return ApiError(clip_error_status(exc.code), exc.code, exc.message, param=param)


def from_validation(errors: Sequence[Mapping[str, Any]]) -> ApiError:
    """A 422 naming the first offending parameter, from pydantic/FastAPI error dicts."""
    if not errors:
        return ApiError(422, "invalid_request", "the request is invalid")
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ())]
    where = loc[0] if loc else ""
    path = loc[1:] if where in {"query", "path", "header", "body", "cookie"} else loc
    param = ".".join(path) or None
    code = PARAM_CODES.get(path[0] if path else "", "invalid_request")
    if first.get("type") == "missing":
        message = f"{param} is required" if param else "a required value is missing"
    else:
        message = f"{param}: {first.get('msg', 'invalid value')}" if param else "invalid request"
    return ApiError(422, code, message, param=param)


def status_message(status: int) -> tuple[str, str]:
    """Code and message for framework-level HTTP errors (unknown route, bad method)."""
    return {
        404: ("not_found", "no such resource"),
        405: ("method_not_allowed", "method not allowed on this resource"),
        413: ("too_large", "the request body is too large"),
        415: ("unsupported_media_type", "unsupported content type"),
    }.get(status, ("http_error", "the request could not be served"))
