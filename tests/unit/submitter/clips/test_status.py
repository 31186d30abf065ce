"""Clip request status, read from the stage document and its recorded outputs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.clip import ClipRequested
from services.common.job_store import StageStatus
from services.submitter.clips.on_demand import ClipPending, ClipQuery, get_clip
from services.submitter.clips.status import ClipStatus, RequestNotFound, clip_status
from tests.support.fakes import MemoryJobs, MemoryMedia
from tests.support.submitter import ClipWorld, failed_for, ready_for


async def test_status_follows_the_stage_document() -> None:
    world = ClipWorld(wait_s=0)
    pending = await get_clip(world.ports, "acme", ClipQuery("ep-1", 0, 1000))
    assert isinstance(pending, ClipPending)
    rid = pending.request_id

    async def status() -> ClipStatus:
        return await clip_status(world.jobs, world.media, "acme", rid, 3600)

    await world.jobs.transition(rid, "clip", StageStatus.RUNNING, {"tenant_id": "acme"})
    assert (await status()).status == "running"

    await world.background.drain(1)
    [event] = world.emitter.events
    assert isinstance(event, ClipRequested)
    outputs = [ready_for(event).model_dump(mode="json")]
    await world.jobs.transition(rid, "clip", StageStatus.COMPLETED, {"outputs": outputs})
    done = await status()
    assert (done.status, done.clip_url, done.generation_time_ms) == (
        "completed",
        "http://s3.test/cut",
        77,
    )

    # An expired link is signed again rather than handed out dead.
    world.jobs.stages[f"{rid}:clip"]["outputs"][0]["expires_at"] = "2020-01-01T00:00:00Z"
    renewed = await status()
    assert renewed.clip_url == "https://s3.test/audio_clips/ep-1/x.mp3?expires=3600"
    assert renewed.expires_at is not None and renewed.expires_at > datetime.now(UTC)

    for tenant, request_id in (("other", rid), ("acme", "clip-unknown"), ("acme", "../x")):
        with pytest.raises(RequestNotFound):
            await clip_status(world.jobs, world.media, tenant, request_id, 3600)


async def test_a_failure_is_read_from_the_recorded_event() -> None:
    world = ClipWorld(wait_s=0)
    pending = await get_clip(world.ports, "acme", ClipQuery("ep-1", 0, 1000))
    assert isinstance(pending, ClipPending)
    await world.background.drain(1)
    [event] = world.emitter.events
    outputs = [failed_for(event).model_dump(mode="json")]
    await world.jobs.transition(
        pending.request_id, "clip", StageStatus.FAILED, {"outputs": outputs}
    )
    status = await clip_status(world.jobs, world.media, "acme", pending.request_id, 3600)
    assert status.status == "failed"
    assert status.error == {"code": "source_missing", "message": "gone", "retryable": False}


async def test_an_undecodable_output_leaves_the_status_without_details() -> None:
    jobs = MemoryJobs()
    await jobs.transition(
        "clip-x",
        "clip",
        StageStatus.COMPLETED,
        {"tenant_id": "acme", "outputs": [{"event_type": "clip.ready", "schema_version": 99}]},
    )
    status = await clip_status(jobs, MemoryMedia(), "acme", "clip-x", 60)
    assert (status.status, status.clip_url) == ("completed", None)


async def test_a_request_known_only_from_the_clipper_is_owned_by_its_tenant() -> None:
    jobs = MemoryJobs()
    await jobs.transition("clip-x", "clip", StageStatus.RUNNING, {"tenant_id": "acme"})
    status = await clip_status(jobs, MemoryMedia(), "acme", "clip-x", 60)
    assert status.status == "running"
    with pytest.raises(RequestNotFound):
        await clip_status(jobs, MemoryMedia(), "other", "clip-x", 60)
