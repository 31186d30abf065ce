"""The cached-clip fast path takes only canonical spellings; the rest goes to the route."""

from __future__ import annotations

import pytest

from services.submitter.clips.on_demand import ClipQuery
from services.submitter.http.app import create_api
from services.submitter.http.cached_clips import find_route, parse_query
from services.submitter.http.routes.clips import ROUTE_NAME
from services.submitter.settings import SubmitterSettings


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"start_time_ms=1000&duration_ms=2000", ClipQuery("ep-1", 1000, 2000)),
        (b"duration_ms=2000&start_time_ms=0", ClipQuery("ep-1", 0, 2000)),
        (b"start_time_ms=007&duration_ms=2000&format=wav&accurate=true",
         ClipQuery("ep-1", 7, 2000, "wav", True)),
        (b"start_time_ms=1&duration_ms=2&format=m4a&accurate=false",
         ClipQuery("ep-1", 1, 2, "m4a", False)),
        # Values the rules refuse are still parsed: the rules refuse them (and the route
        # answers), exactly as the route would.
        (b"start_time_ms=0&duration_ms=0", ClipQuery("ep-1", 0, 0)),
    ],
)  # fmt: skip
def test_canonical_queries_are_parsed(query: bytes, expected: ClipQuery) -> None:
    assert parse_query("ep-1", query) == expected


@pytest.mark.parametrize(
    "query",
    [
        b"",
        b"start_time_ms=1000",
        b"duration_ms=1000",
        b"start_time_ms=1000&duration_ms=2000&start_time_ms=5",  # repeated
        b"start_time_ms=1000&duration_ms=2000&extra=1",  # unknown
        b"start_time_ms=-1&duration_ms=2000",
        b"start_time_ms=+1&duration_ms=2000",
        b"start_time_ms=1e3&duration_ms=2000",
        b"start_time_ms=1.0&duration_ms=2000",
        b"start_time_ms=%31&duration_ms=2000",  # an escape
        b"start_time_ms= 1&duration_ms=2000",
        b"start_time_ms=&duration_ms=2000",
        b"start_time_ms&duration_ms=2000",
        b"start_time_ms=1000&duration_ms=1234567890123456",  # past 15 digits
        b"start_time_ms=1&duration_ms=2&format=MP3",
        b"start_time_ms=1&duration_ms=2&format=ogg",
        b"start_time_ms=1&duration_ms=2&accurate=1",
        b"start_time_ms=1&duration_ms=2&accurate=True",
        b"start_time_ms=1&duration_ms=2&accurate=yes",
        b"start_time_ms=1&duration_ms=2&",
        "start_time_ms=1&duration_ms=2&format=mp3\u00e9".encode(),
    ],
)
def test_anything_else_goes_to_the_route(query: bytes) -> None:
    assert parse_query("ep-1", query) is None


def test_the_clip_route_is_found_in_the_app() -> None:
    app = create_api(SubmitterSettings())
    route = find_route(app.routes, ROUTE_NAME)
    assert route is not None
    assert route.path == "/api/v1/audio_clips/{episode_id:anyid}"
    assert route.methods == {"GET"}
    assert find_route(app.routes, "no-such-route") is None
