"""The end-to-end bench's wall time ends when the job's record turned COMPLETED."""

from __future__ import annotations

from datetime import UTC, datetime

from bench.e2e_job import ended_after

T0 = datetime(2026, 12, 5, 9, 0, 0, tzinfo=UTC).timestamp()


def test_the_wall_time_ends_at_the_records_update_not_at_the_poll() -> None:
    job = {"status": "COMPLETED", "updated_at": "2026-12-05T09:00:05.250000Z"}
    assert ended_after(job, T0, seen_s=5.31) == 5.25


def test_a_time_without_a_zone_is_utc() -> None:
    job = {"updated_at": "2026-12-05T09:00:04.500000"}
    assert ended_after(job, T0, seen_s=4.6) == 4.5


def test_the_poll_time_stands_when_the_record_time_is_missing_or_impossible() -> None:
    assert ended_after({}, T0, seen_s=5.0) == 5.0
    assert ended_after({"updated_at": "soon"}, T0, seen_s=5.0) == 5.0
    # Before the submission, or after the poll that saw it: not the ending update.
    assert ended_after({"updated_at": "2026-12-05T08:59:59Z"}, T0, seen_s=5.0) == 5.0
    assert ended_after({"updated_at": "2026-12-05T09:00:06Z"}, T0, seen_s=5.0) == 5.0
