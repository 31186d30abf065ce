"""Dead-letter headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from schemas.dlq import DLQ_HEADERS, MAX_ERROR_BYTES, dlq_headers

pytestmark = pytest.mark.unit

FIRST_SEEN = datetime(2025, 1, 15, 14, 0, tzinfo=timezone(timedelta(hours=2)))


def test_headers() -> None:
    headers = dlq_headers(
        error="bad episode id",
        stage="clipper.decode",
        exception=ValueError("x"),
        first_seen=FIRST_SEEN,
        attempts=3,
    )
    assert tuple(name for name, _ in headers) == DLQ_HEADERS
    assert dict(headers) == {
        "error": b"bad episode id",
        "stage": b"clipper.decode",
        "exception_type": b"builtins.ValueError",
        "first_seen": b"2025-01-15T12:00:00+00:00",
        "attempts": b"3",
    }


def test_long_errors_are_cut_on_a_character_boundary() -> None:
    headers = dict(
        dlq_headers(
            error="é" * MAX_ERROR_BYTES,
            stage="s",
            exception="x.Y",
            first_seen=datetime.now(UTC),
            attempts=1,
        )
    )
    assert len(headers["error"]) <= MAX_ERROR_BYTES
    assert headers["error"].decode() == "é" * (MAX_ERROR_BYTES // 2)


@pytest.mark.parametrize(("first_seen", "attempts"), [(datetime(2025, 1, 15), 1), (FIRST_SEEN, 0)])
def test_rejects_bad_input(first_seen: datetime, attempts: int) -> None:
    with pytest.raises(ValueError):
        dlq_headers(error="e", stage="s", exception="x.Y", first_seen=first_seen, attempts=attempts)
