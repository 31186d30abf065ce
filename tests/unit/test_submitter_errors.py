"""Domain failures -> HTTP status and the one error body shape."""

from __future__ import annotations

import pytest

from services.common.clips import ClipRejected, EpisodeNotFound, check_request
from services.submitter.errors import (
    ApiError,
    clip_error_status,
    error_body,
    from_rejection,
    from_validation,
)


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
        ("source_missing", 502),
        ("ffmpeg_failed", 502),
        ("not_audio", 502),
        ("submit_failed", 503),
        ("transient_exhausted", 500),
        ("internal_error", 500),
        ("something_new", 500),
    ],
)
def test_clip_error_status(code: str, status: int) -> None:
    assert clip_error_status(code) == status


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
            "invalid_time",
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
    api = ApiError(401, "unauthorized", "no", headers={"WWW-Authenticate": "Bearer"})
    assert api.body() == {"error": {"code": "unauthorized", "message": "no"}}
    assert api.headers == {"WWW-Authenticate": "Bearer"}
