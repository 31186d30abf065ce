"""Clip requests, their status and cache warming, with in-memory ports."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas import ErrorInfo, Event
from schemas.clip import ClipFailed, ClipReady, ClipRequested
from services.common.clips import ClipPlan, ClipRejected, EpisodeNotFound
from services.common.episodes import Episode
from services.common.job_store import StageStatus, can_move
from services.common.media_store import ObjectInfo
from services.submitter.clip_requests import (
    ClipAnswer,
    ClipLimits,
    ClipPending,
    ClipPorts,
    ClipQuery,
    ClipRequestFailed,
    SubmitFailed,
    get_clip,
)
from services.submitter.clip_status import RequestNotFound, clip_status
from services.submitter.waiter import Background, ResultWaiter
from services.submitter.warming import summary, warm

Doc = dict[str, Any]
EPISODE = Episode(
    episode_id="ep-1",
    tenant_id="acme",
    s3_key="episodes/ep-1/source.mp3",
    duration_ms=60_000,
    format_name="mp3",
    codec="mp3",
    size_bytes=1000,
)


class Episodes:
    def __init__(self, *episodes: Episode) -> None:
        self.by_id = {e.episode_id: e for e in episodes}
        self.calls = 0

    async def get(self, episode_id: str) -> Episode | None:
        self.calls += 1
        return self.by_id.get(episode_id)


class Clips:
    def __init__(self) -> None:
        self.docs: dict[tuple[str, int, int, str], Doc] = {}
        self.log: list[tuple[str, str, bool]] = []

    def add(self, plan: ClipPlan) -> None:
        key = (plan.episode_id, plan.start_ms, plan.end_ms, plan.format)
        self.docs[key] = {"s3_key": plan.key, "file_size_bytes": 5}

    async def find(self, plan: ClipPlan) -> Doc | None:
        return self.docs.get((plan.episode_id, plan.start_ms, plan.end_ms, plan.format))

    async def log_request(self, plan: ClipPlan, tenant_id: str, cache_hit: bool) -> None:
        self.log.append((plan.key, tenant_id, cache_hit))


class Objects:
    def __init__(self) -> None:
        self.sizes: dict[str, int] = {}

    async def head(self, key: str) -> ObjectInfo | None:
        size = self.sizes.get(key)
        return None if size is None else ObjectInfo(key, size, "audio/mpeg", None, None)

    async def presign_get(self, key: str, expires_s: int) -> str:
        return f"http://s3.test/{key}?expires={expires_s}"


class Jobs:
    def __init__(self) -> None:
        self.jobs: dict[str, Doc] = {}
        self.stages: dict[str, Doc] = {}

    async def create_job(
        self, job_id: str, tenant_id: str, kind: str, fields: Mapping[str, Any]
    ) -> bool:
        if job_id in self.jobs:
            return False
        self.jobs[job_id] = {"_id": job_id, "tenant_id": tenant_id, "kind": kind, **fields}
        return True

    async def transition(
        self, job_id: str, stage: str, target: StageStatus, fields: Mapping[str, Any] | None = None
    ) -> bool:
        doc = self.stages.setdefault(f"{job_id}:{stage}", {"job_id": job_id, "stage": stage})
        current = StageStatus(doc["status"]) if "status" in doc else None
        if not can_move(current, target):
            return False
        doc.update({"status": target.value, **(fields or {})})
        return True

    async def job(self, job_id: str) -> Doc | None:
        stages = {d["stage"]: d for d in self.stages.values() if d["job_id"] == job_id}
        if job_id not in self.jobs and not stages:
            return None
        return {**self.jobs.get(job_id, {"_id": job_id}), "stages": stages}


Responder = Callable[[ClipRequested], Event | None]


class Emitter:
    """Records events; optionally answers each at once, as a very fast clipper would
    (the answer lands before emit() returns), or fails, or blocks."""

    def __init__(
        self,
        waiter: ResultWaiter,
        respond: Responder | None = None,
        fail: bool = False,
        gate: asyncio.Event | None = None,
    ) -> None:
        self.events: list[Event] = []
        self._waiter, self._respond, self._fail, self._gate = waiter, respond, fail, gate

    async def emit(self, events: Sequence[Event]) -> None:
        if self._gate is not None:
            await self._gate.wait()
        if self._fail:
            raise ConnectionError("broker down")
        self.events.extend(events)
        for event in events:
            assert isinstance(event, ClipRequested)
            result = self._respond(event) if self._respond else None
            if result is not None:
                self._waiter.resolve(result)


def ready_for(event: ClipRequested) -> ClipReady:
    return ClipReady(
        request_id=event.request_id,
        tenant_id=event.tenant_id,
        correlation_id=event.correlation_id,
        producer="clipper",
        episode_id=event.episode_id,
        s3_key="audio_clips/ep-1/x.mp3",
        clip_url="http://s3.test/cut",
        cache_hit=False,
        generation_time_ms=77,
        size_bytes=99,
        start_ms=event.start_ms,
        end_ms=event.start_ms + event.duration_ms,
        format=event.format,
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )


def failed_for(event: ClipRequested) -> ClipFailed:
    return ClipFailed(
        request_id=event.request_id,
        tenant_id=event.tenant_id,
        producer="clipper",
        episode_id=event.episode_id,
        error=ErrorInfo(code="source_missing", message="gone", retryable=False, attempts=1),
    )


class World:
    def __init__(self, wait_s: float = 1.0, **emitter: Any) -> None:
        self.episodes = Episodes(EPISODE)
        self.clips, self.objects, self.jobs = Clips(), Objects(), Jobs()
        self.waiter, self.background = ResultWaiter(), Background()
        self.emitter = Emitter(self.waiter, **emitter)
        self.ports = ClipPorts(
            episodes=self.episodes,
            clips=self.clips,
            media=self.objects,
            jobs=self.jobs,
            emitter=self.emitter,
            waiter=self.waiter,
            background=self.background,
            limits=ClipLimits(max_duration_ms=600_000, url_expiry_s=3600, wait_timeout_s=wait_s),
        )

    def cache(self, start_ms: int, end_ms: int, fmt: str = "mp3") -> ClipPlan:
        key = f"audio_clips/ep-1/{start_ms}-{end_ms}.{fmt}"
        plan = ClipPlan("ep-1", start_ms, end_ms, fmt, False, key)
        self.clips.add(plan)
        self.objects.sizes[key] = 5
        return plan


async def test_a_hit_is_answered_from_the_cache_and_counted() -> None:
    world = World()
    plan = world.cache(1000, 3000)
    answer = await get_clip(world.ports, "acme", ClipQuery("ep-1", 1000, 2000))
    assert isinstance(answer, ClipAnswer)
    assert answer.cache_hit and answer.request_id is None
    assert answer.clip_url == f"http://s3.test/{plan.key}?expires=3600"
    assert (answer.s3_key, answer.size_bytes, answer.end_ms) == (plan.key, 5, 3000)
    assert world.clips.log == [(plan.key, "acme", True)]
    assert world.emitter.events == [] and world.jobs.jobs == {}


async def test_a_clamped_range_hits_the_clamped_clip() -> None:
    world = World()
    world.cache(59_000, 60_000)
    answer = await get_clip(world.ports, "acme", ClipQuery("ep-1", 59_000, 5000))
    assert isinstance(answer, ClipAnswer) and answer.cache_hit


async def test_a_miss_waits_for_the_result_even_one_faster_than_the_emit() -> None:
    world = World(respond=ready_for)
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
    assert world.clips.log == []  # the clipper counts the requests it serves
    assert len(world.waiter) == 0


async def test_a_failed_result_is_raised_with_its_code() -> None:
    world = World(respond=failed_for)
    with pytest.raises(ClipRequestFailed) as info:
        await get_clip(world.ports, "acme", ClipQuery("ep-1", 0, 1000))
    assert info.value.error.code == "source_missing"
    assert len(world.waiter) == 0


async def test_no_answer_in_time_is_pending_and_says_so_in_the_status() -> None:
    world = World(wait_s=0.05)
    pending = await get_clip(world.ports, "acme", ClipQuery("ep-1", 0, 1000))
    assert isinstance(pending, ClipPending)
    assert len(world.waiter) == 0
    status = await clip_status(world.jobs, world.objects, "acme", pending.request_id, 3600)
    assert (status.status, status.episode_id) == ("pending", "ep-1")


async def test_a_slow_broker_does_not_hold_the_caller_and_the_emit_still_lands() -> None:
    gate = asyncio.Event()
    world = World(wait_s=0.05, gate=gate)
    pending = await get_clip(world.ports, "acme", ClipQuery("ep-1", 0, 1000))
    assert isinstance(pending, ClipPending)
    assert world.emitter.events == [] and len(world.background) == 1
    gate.set()
    await world.background.drain(1)
    [event] = world.emitter.events
    assert isinstance(event, ClipRequested) and event.request_id == pending.request_id


async def test_an_emit_failure_is_recorded_and_raised() -> None:
    world = World(fail=True)
    with pytest.raises(SubmitFailed) as info:
        await get_clip(world.ports, "acme", ClipQuery("ep-1", 0, 1000))
    status = await clip_status(world.jobs, world.objects, "acme", info.value.request_id, 3600)
    assert status.status == "failed"
    assert status.error is not None and status.error["code"] == "submit_failed"
    assert len(world.waiter) == 0


async def test_rejections_come_before_any_lookup_and_tenants_are_isolated() -> None:
    world = World()
    for query in (ClipQuery("../x", 0, 10), ClipQuery("ep-1", -1, 10), ClipQuery("ep-1", 0, 0)):
        with pytest.raises(ClipRejected):
            await get_clip(world.ports, "acme", query)
    assert world.episodes.calls == 0
    with pytest.raises(ClipRejected) as info:
        await get_clip(world.ports, "acme", ClipQuery("ep-1", 60_000, 10))
    assert info.value.code == "start_past_end"
    with pytest.raises(EpisodeNotFound):
        await get_clip(world.ports, "someone-else", ClipQuery("ep-1", 0, 10))
    assert world.emitter.events == []


async def test_status_follows_the_stage_document() -> None:
    world = World(wait_s=0)
    pending = await get_clip(world.ports, "acme", ClipQuery("ep-1", 0, 1000))
    assert isinstance(pending, ClipPending)
    rid = pending.request_id

    async def status() -> Any:
        return await clip_status(world.jobs, world.objects, "acme", rid, 3600)

    await world.jobs.transition(rid, "clip", StageStatus.RUNNING, {"tenant_id": "acme"})
    assert (await status()).status == "running"

    [event] = world.emitter.events
    assert isinstance(event, ClipRequested)
    ready = ready_for(event)
    result = ready.model_dump(mode="json")
    await world.jobs.transition(rid, "clip", StageStatus.COMPLETED, {"result": result})
    done = await status()
    assert (done.status, done.clip_url, done.generation_time_ms) == (
        "completed",
        "http://s3.test/cut",
        77,
    )

    # An expired link is signed again rather than handed out dead.
    world.jobs.stages[f"{rid}:clip"]["result"]["expires_at"] = "2020-01-01T00:00:00Z"
    renewed = await status()
    assert renewed.clip_url == "http://s3.test/audio_clips/ep-1/x.mp3?expires=3600"
    assert renewed.expires_at is not None and renewed.expires_at > datetime.now(UTC)

    for tenant, request_id in (("other", rid), ("acme", "clip-unknown"), ("acme", "../x")):
        with pytest.raises(RequestNotFound):
            await clip_status(world.jobs, world.objects, tenant, request_id, 3600)


async def test_a_request_known_only_from_the_clipper_is_owned_by_its_tenant() -> None:
    jobs = Jobs()
    await jobs.transition("clip-x", "clip", StageStatus.RUNNING, {"tenant_id": "acme"})
    status = await clip_status(jobs, Objects(), "acme", "clip-x", 60)
    assert status.status == "running"
    with pytest.raises(RequestNotFound):
        await clip_status(jobs, Objects(), "other", "clip-x", 60)


async def test_warming_requests_only_what_is_missing() -> None:
    world = World(respond=lambda e: ready_for(e) if e.start_ms == 1000 else None)
    world.cache(0, 1000)
    ranges = [
        {"episode_id": "ep-1", "start_ms": 1000, "duration_ms": 2000, "format": "mp3", "count": 9},
        {"episode_id": "ep-1", "start_ms": 0, "duration_ms": 1000, "format": "mp3", "count": 5},
        {"episode_id": "ep-1", "start_ms": 5000, "duration_ms": 1000, "format": "wav", "count": 4},
        {"episode_id": "ep-gone", "start_ms": 0, "duration_ms": 1000, "format": "mp3", "count": 3},
        {"episode_id": "ep-1", "start_ms": "x", "duration_ms": 1000, "format": "mp3", "count": 2},
        {"episode_id": "ep-1", "start_ms": 0, "duration_ms": 1000, "format": "flac", "count": 1},
    ]
    results = await warm(world.ports, ranges, wait_s=0.1)
    assert [(r.outcome, r.detail.split(" ")[0]) for r in results] == [
        ("warmed", "77"),
        ("cached", ""),
        ("pending", "requested"),
        ("failed", "episode_not_found"),
        ("failed", "invalid_time"),
        ("failed", "invalid_format"),
    ]
    assert len(world.emitter.events) == 2
    assert all(isinstance(e, ClipRequested) and e.producer == "cli" for e in world.emitter.events)
    assert results[0].line() == "ep-1 1000+2000ms mp3 x9: warmed (77 ms)"
    assert summary(results) == ("total 6: 1 warmed, 1 already cached, 3 failed, 1 still pending")
    assert len(world.waiter) == 0
