"""Domain failures -> HTTP status (from the code table) and the one error body shape."""

from __future__ import annotations

import pytest

from schemas import ErrorInfo
from schemas.codes import CLIP_PARAM_CODES, KIND, Code, Kind
from services.common.clip_rules import ClipRejected, EpisodeNotFound, check_request
from services.submitter.http.errors import (
    ELLIPSIS,
    EPISODE_ID_RULE,
    MESSAGE_MAX,
    PARAM_CODES,
    QUOTE_MAX,
    STATUS,
    ApiError,
    bounded,
    error_body,
    from_failure,
    from_rejection,
    from_validation,
    status_for,
)


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (Kind.INVALID, 422),
        (Kind.UNAUTHORIZED, 401),
        (Kind.FORBIDDEN, 403),
        (Kind.NOT_FOUND, 404),
        (Kind.CONFLICT, 409),
        (Kind.TOO_LARGE, 413),
        (Kind.UNSUPPORTED, 415),
        (Kind.TOO_MANY, 429),
        (Kind.SOURCE, 502),
        (Kind.UNAVAILABLE, 503),
        (Kind.INTERNAL, 500),
    ],
)
def test_each_kind_has_its_status(kind: Kind, status: int) -> None:
    assert STATUS[kind] == status


def test_every_code_has_a_status() -> None:
    assert set(STATUS) == set(Kind)
    for code in Code:
        assert status_for(code) == STATUS[KIND[code]]


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("episode_not_found", 404),
        ("invalid_time", 422),
        ("invalid_duration", 422),
        ("invalid_episode_id", 422),
        ("invalid_format", 422),
        ("duration_too_long", 422),
        ("start_past_end", 422),
        ("not_audio", 422),
        ("source_missing", 502),
        ("ffmpeg_failed", 502),
        ("submit_failed", 503),
        ("transient_exhausted", 503),
        ("internal_error", 500),
        ("something_new", 500),
    ],
)
def test_clip_failure_codes(code: str, status: int) -> None:
    assert status_for(code) == status
    error = from_failure("clip-1", ErrorInfo(code=code, message="m", retryable=False, attempts=1))
    assert (error.status, error.code) == (status, code)
    assert error.body()["error"] == {
        "code": code,
        "message": "m",
        "request_id": "clip-1",
        "retryable": False,
    }


@pytest.mark.parametrize(
    ("args", "param", "code"),
    [
        (("ep", -1, 10), "start_time_ms", "invalid_time"),
        (("ep", 0, 0), "duration_ms", "invalid_duration"),
        (("ep", 0, 10**9), "duration_ms", "duration_too_long"),
        (("../x", 0, 10), "episode_id", "invalid_episode_id"),
    ],
)
def test_rejections_use_the_public_parameter_names(
    args: tuple[str, int, int], param: str, code: str
) -> None:
    with pytest.raises(ClipRejected) as info:
        check_request(*args, max_duration_ms=600_000)
    error = from_rejection(info.value)
    assert (error.status, error.code, error.param) == (422, code, param)
    assert error.body()["error"]["message"]


def test_unknown_episode_is_a_404() -> None:
    error = from_rejection(EpisodeNotFound("ep-x"))
    assert (error.status, error.code, error.param) == (404, "episode_not_found", "episode_id")


def test_parameter_codes_are_the_clip_rules_codes() -> None:
    assert PARAM_CODES["start_time_ms"] == CLIP_PARAM_CODES["start_ms"]
    for name in ("episode_id", "duration_ms", "format", "accurate"):
        assert PARAM_CODES[name] == CLIP_PARAM_CODES[name]


@pytest.mark.parametrize(
    ("errors", "param", "code"),
    [
        (
            [{"loc": ("query", "start_time_ms"), "type": "int_parsing", "msg": "m"}],
            "start_time_ms",
            "invalid_time",
        ),
        (
            [{"loc": ("query", "duration_ms"), "type": "missing", "msg": "m"}],
            "duration_ms",
            "invalid_duration",
        ),
        (
            [{"loc": ("query", "duration_ms"), "type": "int_from_float", "msg": "m"}],
            "duration_ms",
            "invalid_duration",
        ),
        (
            [{"loc": ("query", "format"), "type": "literal_error", "msg": "m"}],
            "format",
            "invalid_format",
        ),
        (
            [{"loc": ("query", "accurate"), "type": "bool_parsing", "msg": "m"}],
            "accurate",
            "invalid_request",
        ),
        ([{"loc": ("s3_key",), "type": "string_type", "msg": "m"}], "s3_key", "invalid_s3_key"),
        ([{"loc": ("body", "a", 0), "type": "x", "msg": "m"}], "a.0", "invalid_request"),
        ([{"loc": (), "type": "x", "msg": "m"}], None, "invalid_request"),
        ([], None, "invalid_request"),
    ],
)
def test_validation_errors_name_the_first_parameter(
    errors: list[dict[str, object]], param: str | None, code: str
) -> None:
    error = from_validation(errors)
    assert (error.status, error.code, error.param) == (422, code, param)
    assert error.message


def test_missing_parameter_message() -> None:
    error = from_validation([{"loc": ("query", "duration_ms"), "type": "missing", "msg": "x"}])
    assert error.message == "duration_ms is required"


def test_error_body_shape() -> None:
    assert error_body("c", "m") == {"error": {"code": "c", "message": "m"}}
    assert error_body("c", "", "p", request_id="r", retryable=None) == {
        "error": {"code": "c", "message": "c", "param": "p", "request_id": "r"}
    }
    api = ApiError(Code.UNAUTHORIZED, "no", headers={"WWW-Authenticate": "Bearer"})
    assert api.status == 401
    assert api.body() == {"error": {"code": "unauthorized", "message": "no"}}
    assert api.headers == {"WWW-Authenticate": "Bearer"}
    assert ApiError(Code.METHOD_NOT_ALLOWED, "m", status=405).status == 405


def test_bad_episode_ids_get_the_id_rule_whatever_the_framework_says() -> None:
    for kind in ("string_pattern_mismatch", "value_error", "string_too_long"):
        error = from_validation([{"loc": ("path", "episode_id"), "type": kind, "msg": "m"}])
        assert (error.code, error.param, error.message) == (
            "invalid_episode_id",
            "episode_id",
            EPISODE_ID_RULE,
        )


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("unknown episode 'ep-1'", "unknown episode 'ep-1'"),
        (f"unknown episode {'x' * 10_000!r}", f"unknown episode '{'x' * QUOTE_MAX}{ELLIPSIS}'"),
        (f"invalid S3 key {'it' + chr(39) + 's' * 100!r}", None),
        (
            f"start_ms {'9' * 5000} is at or past the end",
            f"start_ms {'9' * QUOTE_MAX}{ELLIPSIS} is",
        ),
        ("the form has no 'file' field", "the form has no 'file' field"),
        ("the episode's end (3000 ms)", "the episode's end (3000 ms)"),
    ],
)
def test_messages_quote_input_briefly(message: str, expected: str | None) -> None:
    out = bounded(message)
    if expected is not None:
        assert out.startswith(expected)
    assert len(out) <= MESSAGE_MAX + 1
    assert "x" * (QUOTE_MAX + 1) not in out and "s" * (QUOTE_MAX + 1) not in out


def test_every_error_body_is_bounded() -> None:
    body = error_body("c", "m " * 1000, "p" * 1000)["error"]
    assert len(body["message"]) == MESSAGE_MAX + 1 and body["message"].endswith(ELLIPSIS)
    assert body["param"] == "p" * QUOTE_MAX + ELLIPSIS
    long_id = "y" * 10_000
    api = ApiError(Code.EPISODE_NOT_FOUND, f"unknown episode {long_id!r}", param="episode_id")
    assert long_id not in api.body()["error"]["message"]
