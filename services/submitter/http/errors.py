"""HTTP errors: one JSON shape, ``{"error": {"code", "message", "param"?}}``, with the
status taken from the code's kind in the one code table (``schemas.codes``). Pure, so
every mapping is unit-tested.

Messages never echo unbounded input: whatever an error quotes (an id, a key, a number) is
cut to ``QUOTE_MAX`` characters, so a 10,000-character id is not sent back whole."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from schemas import ErrorInfo
from schemas.codes import CLIP_PARAM_CODES, Code, Kind, kind_of
from services.common.clip_rules import ClipRejected

STATUS: Mapping[Kind, int] = MappingProxyType(
    {
        Kind.INVALID: 422,
        Kind.UNAUTHORIZED: 401,
        Kind.FORBIDDEN: 403,
        Kind.NOT_FOUND: 404,
        Kind.CONFLICT: 409,
        Kind.TOO_LARGE: 413,
        Kind.UNSUPPORTED: 415,
        Kind.TOO_MANY: 429,
        # A stored source the pipeline cannot use: our side, not the caller's.
        Kind.SOURCE: 502,
        Kind.UNAVAILABLE: 503,
        Kind.INTERNAL: 500,
    }
)

# The public query names of the old clip API, for params the clip rules call otherwise.
PUBLIC_PARAM = {"start_ms": "start_time_ms"}

# Codes for parameters the framework rejects before our rules run (wrong type, missing):
# what the clip rules, and the ``clip.requested`` path, say about the same parameter.
PARAM_CODES: Mapping[str, Code] = MappingProxyType(
    {
        **{PUBLIC_PARAM.get(name, name): code for name, code in CLIP_PARAM_CODES.items()},
        "s3_key": Code.INVALID_S3_KEY,
    }
)


# What an error quotes of the request: longer is cut, with an ellipsis.
QUOTE_MAX = 64
# Past this a message is cut whatever it holds.
MESSAGE_MAX = 512
ELLIPSIS = "\u2026"
# A quoted run (Python repr style, either quote) or an unbroken run of non-blanks past the
# limit (a long number, a key quoted without quotes).
_QUOTED_OR_LONG = re.compile(
    rf"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\S{{{QUOTE_MAX + 1},}}", re.DOTALL
)

# Messages of rules the framework checks before ours run, where its own words would only
# restate a pattern: what the id rules say instead.
EPISODE_ID_RULE = (
    "episode_id must be 1-128 letters, digits, '.', '_' or '-', start with a letter or "
    "digit and not contain '..'"
)
PARAM_MESSAGES: Mapping[str, str] = MappingProxyType({"episode_id": EPISODE_ID_RULE})


def clip_text(text: str, limit: int = QUOTE_MAX) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when it was longer."""
    return text if len(text) <= limit else text[:limit] + ELLIPSIS


def bounded(message: str) -> str:
    """``message`` with every quoted value or long token cut to ``QUOTE_MAX`` characters
    and the whole to ``MESSAGE_MAX``: errors quote input, and input has no length limit."""

    def cut(match: re.Match[str]) -> str:
        text = match.group()
        quote = text[0]
        if quote in "'\"" and len(text) >= 2 and text[-1] == quote:
            inner = text[1:-1]
            return text if len(inner) <= QUOTE_MAX else f"{quote}{clip_text(inner)}{quote}"
        return clip_text(text)

    return clip_text(_QUOTED_OR_LONG.sub(cut, message), MESSAGE_MAX)


def status_for(code: str) -> int:
    return STATUS[kind_of(code)]


class ApiError(Exception):
    """An answer in the one error shape; the status follows from ``code`` unless given
    (framework statuses such as 405 that have no code of their own)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
        status: int | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status_for(code) if status is None else status
        self.code = code
        self.message = message
        self.param = param
        self.headers = dict(headers or {})
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.param, **self.extra)


def error_body(code: str, message: str, param: str | None = None, **extra: Any) -> dict[str, Any]:
    # Every error answer is built here, so this is where quoted input is bounded.
    error: dict[str, Any] = {"code": str(code), "message": bounded(message or str(code))}
    if param is not None:
        error["param"] = clip_text(param)
    error.update({k: v for k, v in extra.items() if v is not None})
    return {"error": error}


def from_rejection(exc: ClipRejected) -> ApiError:
    param = PUBLIC_PARAM.get(exc.param, exc.param) if exc.param else None
    return ApiError(exc.code, exc.message, param=param)


def from_failure(request_id: str, error: ErrorInfo) -> ApiError:
    """The answer for a request a stage answered with a ``*.failed`` event."""
    return ApiError(error.code, error.message, request_id=request_id, retryable=error.retryable)


def from_validation(errors: Sequence[Mapping[str, Any]]) -> ApiError:
    """A 422 naming the first offending parameter, from pydantic/FastAPI error dicts."""
    if not errors:
        return ApiError(Code.INVALID_REQUEST, "the request is invalid")
    first = errors[0]
    if first.get("type") == "json_invalid":
        # Its location is a character offset, not a parameter a caller could act on.
        return ApiError(Code.INVALID_JSON, "the body is not valid JSON")
    loc = [str(p) for p in first.get("loc", ())]
    where = loc[0] if loc else ""
    path = loc[1:] if where in {"query", "path", "header", "body", "cookie"} else loc
    param = ".".join(path) or None
    code = PARAM_CODES.get(path[0] if path else "", Code.INVALID_REQUEST)
    if first.get("type") == "value_error" and code == Code.INVALID_REQUEST:
        # A rule between fields (a model's own check), which no schema can state.
        code = Code.INVALID_SPEC
    if first.get("type") == "missing":
        message = f"{param} is required" if param else "a required value is missing"
    elif param is not None and param in PARAM_MESSAGES:
        message = PARAM_MESSAGES[param]
    else:
        message = f"{param}: {first.get('msg', 'invalid value')}" if param else "invalid request"
    return ApiError(code, message, param=param)


def status_message(status: int) -> tuple[Code, str]:
    """Code and message for framework-level HTTP errors (unknown route, bad method)."""
    return {
        404: (Code.NOT_FOUND, "no such resource"),
        405: (Code.METHOD_NOT_ALLOWED, "method not allowed on this resource"),
        413: (Code.TOO_LARGE, "the request body is too large"),
        415: (Code.UNSUPPORTED_MEDIA_TYPE, "unsupported content type"),
    }.get(status, (Code.HTTP_ERROR, "the request could not be served"))
