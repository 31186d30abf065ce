"""Cache warming over in-memory ports: only what is missing is requested, as the CLI."""

from __future__ import annotations

from schemas import Event
from schemas.clip import ClipRequested
from services.cli.warming import as_json, summary, warm
from tests.support.submitter import ClipWorld, ready_for


def ready_for_1000(event: Event) -> Event | None:
    assert isinstance(event, ClipRequested)
    return ready_for(event) if event.start_ms == 1000 else None


async def test_warming_requests_only_what_is_missing() -> None:
    world = ClipWorld(respond=ready_for_1000)
    world.cache(0, 1000)
    ranges = [
        {
            "tenant_id": "acme",
            "episode_id": "ep-1",
            "start_ms": 1000,
            "duration_ms": 2000,
            "format": "mp3",
            "count": 9,
        },
        {
            "tenant_id": "acme",
            "episode_id": "ep-1",
            "start_ms": 0,
            "duration_ms": 1000,
            "format": "mp3",
            "count": 5,
        },
        {
            "tenant_id": "acme",
            "episode_id": "ep-1",
            "start_ms": 5000,
            "duration_ms": 1000,
            "format": "wav",
            "count": 4,
        },
        {
            "tenant_id": "acme",
            "episode_id": "ep-gone",
            "start_ms": 0,
            "duration_ms": 1000,
            "format": "mp3",
            "count": 3,
        },
        {
            "tenant_id": "acme",
            "episode_id": "ep-1",
            "start_ms": "x",
            "duration_ms": 1000,
            "format": "mp3",
            "count": 2,
        },
        {
            "tenant_id": "acme",
            "episode_id": "ep-1",
            "start_ms": 0,
            "duration_ms": 1000,
            "format": "flac",
            "count": 1,
        },
        # Requests are logged per tenant: another tenant's log never warms acme's clips.
        {"tenant_id": "other", "episode_id": "ep-1", "start_ms": 0, "duration_ms": 9, "count": 1},
    ]
    results = await warm(world.ports, ranges, wait_s=0.1)
    assert [(r.outcome, r.detail.split(" ")[0]) for r in results] == [
        ("warmed", "77"),
        ("cached", ""),
        ("pending", "requested"),
        ("failed", "episode_not_found"),
        ("failed", "invalid_time"),
        ("failed", "invalid_format"),
        ("failed", "episode_not_found"),
    ]
    assert len(world.emitter.events) == 2
    assert all(isinstance(e, ClipRequested) and e.producer == "cli" for e in world.emitter.events)
    assert results[0].line() == "ep-1 1000+2000ms mp3 x9: warmed (77 ms)"
    assert as_json(results[0]) == {
        "episode_id": "ep-1",
        "start_ms": 1000,
        "duration_ms": 2000,
        "format": "mp3",
        "count": 9,
        "outcome": "warmed",
        "detail": "77 ms",
        "request_id": results[0].request_id,
    }
    assert results[0].request_id
    assert summary(results) == ("total 7: 1 warmed, 1 already cached, 4 failed, 1 still pending")
    assert len(world.waiter) == 0


async def test_a_failed_submit_is_reported_with_its_request_id() -> None:
    world = ClipWorld()
    world.emitter.fail_emits = 1
    range_ = {
        "tenant_id": "acme",
        "episode_id": "ep-1",
        "start_ms": 0,
        "duration_ms": 1000,
        "count": 1,
    }
    [result] = await warm(world.ports, [range_], wait_s=1)
    assert (result.outcome, result.detail) == ("failed", "submit_failed")
    assert result.request_id is not None and result.request_id in world.jobs.jobs
