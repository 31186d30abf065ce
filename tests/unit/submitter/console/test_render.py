"""How pages write times, durations and ratios."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from services.submitter.console.render import duration, number, percent, when


def test_times_are_shown_in_utc() -> None:
    assert when(datetime(2025, 3, 4, 10, 0, 5)) == "2025-03-04 10:00:05"  # naive is UTC
    east = timezone(timedelta(hours=2))
    assert when(datetime(2025, 3, 4, 12, 0, 5, tzinfo=east)) == "2025-03-04 10:00:05"
    assert when(None) == "—"
    assert when(datetime(2025, 3, 4, tzinfo=UTC)).endswith("00:00:00")


def test_durations_read_naturally() -> None:
    assert [duration(v) for v in (None, 0, 850, 2400, 61_000, 7_380_000)] == [
        "—",
        "0 ms",
        "850 ms",
        "2.4 s",
        "1 min 1 s",
        "2 h 3 min",
    ]


def test_ratios_and_numbers() -> None:
    assert (percent(0.1), percent(1.0), percent(None)) == ("10.0 %", "100.0 %", "—")
    assert (number(1234), number(2.5), number(None)) == ("1,234", "2.5", "—")
