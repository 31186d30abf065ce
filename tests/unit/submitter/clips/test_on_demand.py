"""Clips on demand over in-memory ports: cache hits, misses answered, pending and failed."""

from __future__ import annotations

import asyncio

import pytest

from schemas.clip import ClipRequested
from services.common.clip_rules import ClipRejected, EpisodeNotFound
from services.submitter.clips.on_demand import (
    ClipAnswer,
    ClipPending,
    ClipQuery,
    ClipRequestFailed,
    get_clip,
)
from services.submitter.clips.status import clip_status
from services.submitter.requests import SubmitFailed
from tests.support.submitter import ClipWorld, failed_for, ready_for


async def test_a_hit_is_answered_from_the_cache_and_counted() -> None:
    world = ClipWorld()
    plan = world.cache(1000, 3000)
    answer = await get_clip(world.ports, "acme", ClipQuery("ep-1", 1000, 2000))
    assert isinstance(answer, ClipAnswer)
    assert answer.cache_hit and answer.request_id is None
    assert answer.clip_url == f"https://s3.test/{plan.key}?expires=3600"
    assert (answer.s3_key, answer.size_bytes, answer.end_ms) == (plan.key, 5, 3000)
    assert world.clips.requests == [(plan.key, "acme", True)]
    assert world.emitter.events == [] and world.jobs.jobs == {}


async def test_a_clamped_range_hits_the_clamped_clip() -> None:
    world = ClipWorld()
    world.cache(59_000, 60_000)
    answer = await get_clip(world.ports, "acme", ClipQuery("ep-1", 59_000, 5000))
    assert isinstance(answer, ClipAnswer) and answer.cache_hit


async def test_a_miss_waits_for_the_result_even_one_faster_than_the_emit() -> None:
    world = ClipWorld(respond=ready_for)
    world.cache(1000, 3000)
    answer = await get_clip(world.ports, "acme", ClipQuery("ep-1", 1000, 2000, "wav", True))
    assert isinstance(answer, ClipAnswer) and not answer.cache_hit
    [event] = world.emitter.events
    assert isinstance(event, ClipRequested)
    assert answer.request_id == event.request_id and event.request_id.startswith("clip-")
    assert (event.tenant_id, event.producer, event.format, event.accurate) == (
        "acme",
        "submitter",
        "wav",
        True,
    )
    job = world.jobs.jobs[event.request_id]
    assert job["tenant_id"] == "acme" and job["kind"] == "clip"
    assert job["correlation_id"] == event.correlation_id
    assert world.jobs.stages[f"{event.request_id}:clip"]["status"] == "PENDING"
    assert world.clips.requests == []  # the clipper counts the requests it serves
    assert len(world.waiter) == 0


async def test_a_failed_result_is_raised_with_its_code() -> None:
    world = ClipWorld(respond=failed_for)
    with pytest.raises(ClipRequestFailed) as info:
        await get_clip(world.ports, "acme", ClipQuery("ep-1", 0, 1000))
    assert info.value.error.code == "source_missing"
    assert len(world.waiter) == 0


async def test_no_answer_in_time_is_pending_and_says_so_in_the_status() -> None:
    world = ClipWorld(wait_s=0.05)
    pending = await get_clip(world.ports, "acme", ClipQuery("ep-1", 0, 1000))
    assert isinstance(pending, ClipPending)
    assert len(world.waiter) == 0
    status = await clip_status(world.jobs, world.media, "acme", pending.request_id, 3600)
    assert (status.status, status.episode_id) == ("pending", "ep-1")


async def test_a_slow_broker_does_not_hold_the_caller_and_the_emit_still_lands() -> None:
    gate = asyncio.Event()
    world = ClipWorld(wait_s=0.05, gate=gate)
    pending = await get_clip(world.ports, "acme", ClipQuery("ep-1", 0, 1000))
    assert isinstance(pending, ClipPending)
    assert world.emitter.events == [] and len(world.background) == 1
    gate.set()
    await world.background.drain(1)
    [event] = world.emitter.events
    assert isinstance(event, ClipRequested) and event.request_id == pending.request_id


async def test_an_emit_failure_is_recorded_and_raised() -> None:
    world = ClipWorld()
    world.emitter.fail_emits = 1
    with pytest.raises(SubmitFailed) as info:
        await get_clip(world.ports, "acme", ClipQuery("ep-1", 0, 1000))
    status = await clip_status(world.jobs, world.media, "acme", info.value.job_id, 3600)
    assert status.status == "failed"
    assert status.error is not None and status.error["code"] == "submit_failed"
    assert len(world.waiter) == 0


async def test_rejections_come_before_any_lookup_and_tenants_are_isolated() -> None:
    world = ClipWorld()
    for query in (ClipQuery("../x", 0, 10), ClipQuery("ep-1", -1, 10), ClipQuery("ep-1", 0, 0)):
        with pytest.raises(ClipRejected):
            await get_clip(world.ports, "acme", query)
    assert world.episodes.gets == 0
    with pytest.raises(ClipRejected) as info:
        await get_clip(world.ports, "acme", ClipQuery("ep-1", 60_000, 10))
    assert info.value.code == "start_past_end"
    with pytest.raises(EpisodeNotFound):
        await get_clip(world.ports, "someone-else", ClipQuery("ep-1", 0, 10))
    assert world.emitter.events == []
