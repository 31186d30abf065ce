"""The jobs list's filters: parsed strictly, written back into links unchanged."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs

import pytest

from services.submitter.console.filters import BadFilter, JobFilters, parse_time


def test_times_without_a_zone_are_utc_and_others_are_converted() -> None:
    assert parse_time("2025-03-04T10:15", "from") == datetime(2025, 3, 4, 10, 15, tzinfo=UTC)
    assert parse_time("2025-03-04T10:15+01:00", "from") == datetime(2025, 3, 4, 9, 15, tzinfo=UTC)
    assert parse_time(" ", "from") is None


def test_filters_round_trip_through_their_query() -> None:
    filters = JobFilters.parse("FAILED", "audio", "acme", "2025-03-04T10:15", None)
    query = parse_qs(filters.query(cursor="abc"))
    assert query == {
        "status": ["FAILED"],
        "kind": ["audio"],
        "tenant": ["acme"],
        "created_after": ["2025-03-04T10:15"],
        "cursor": ["abc"],
    }
    again = JobFilters.parse(
        *(
            query.get(k, [None])[0]
            for k in ("status", "kind", "tenant", "created_after", "created_before")
        )
    )
    assert again == filters and filters.active and not JobFilters().active


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("done", None, None, None, None), "status must be one of"),
        ((None, "video", None, None, None), "kind must be one of"),
        ((None, None, "../x", None, None), "tenant must be"),
        ((None, None, None, "31/01/2025", None), "from must be a time"),
        ((None, None, None, "2025-02-01T00:00", "2025-01-01T00:00"), "before"),
    ],
)
def test_bad_filters_say_what_is_wrong(args: tuple[str | None, ...], says: str) -> None:
    with pytest.raises(BadFilter, match=says):
        JobFilters.parse(*args)
