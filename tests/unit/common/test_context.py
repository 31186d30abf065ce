"""The stage context: progress bounds, checkpoints that cannot record "nothing", and
progress that never fails the work it describes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from schemas import TOPICS, Event
from schemas.example_events import EXAMPLES
from services.common.context import subject_id
from services.common.job_store import StageStatus
from tests.support.events import clip_request
from tests.support.fakes import FakeClock, MemoryCheckpoints, MemoryJobs, context_for


@pytest.mark.parametrize(("done", "total"), [(-1, 3), (4, 3), (0, 0), (1, 0), (0, -1)])
async def test_progress_out_of_range_is_a_bug(done: int, total: int) -> None:
    ctx = context_for(clip_request(), jobs=MemoryJobs())
    with pytest.raises(ValueError, match=f"progress {done}/{total} is out of range"):
        await ctx.progress(done, total)


@pytest.mark.parametrize(
    ("done", "total", "percent"), [(0, 1, 0), (1, 1, 100), (0, 3, 0), (2, 3, 66), (3, 3, 100)]
)
async def test_progress_from_nothing_to_all_is_recorded(
    done: int, total: int, percent: int
) -> None:
    jobs = MemoryJobs()
    ctx = context_for(clip_request(request_id="req-5"), "clip", attempt=2, jobs=jobs)
    await jobs.transition("req-5", "clip", StageStatus.RUNNING)
    await ctx.progress(done, total, "cutting")
    doc = await jobs.stage("req-5", "clip")
    assert doc is not None
    assert doc["progress"] == {"done": done, "total": total, "percent": percent,
                               "note": "cutting", "attempt": 2}  # fmt: skip


async def test_the_deadline_is_reached_at_its_instant_and_time_left_stays_zero() -> None:
    ctx = context_for(clip_request(), deadline_s=10.0)
    clock = ctx.clock
    assert isinstance(clock, FakeClock)
    clock.advance(9.5)
    assert (ctx.remaining_s(), ctx.expired()) == (0.5, False)
    clock.advance(0.5)
    assert (ctx.remaining_s(), ctx.expired()) == (0.0, True)
    clock.advance(30)
    assert (ctx.remaining_s(), ctx.expired()) == (0.0, True)


async def test_a_failing_progress_write_does_not_fail_the_work() -> None:
    class Broken:
        async def started(self, stage: str, event: Event) -> None: ...

        async def finished(self, *args: object) -> None: ...

        async def progress(self, stage: str, event: Event, fields: Mapping[str, Any]) -> None:
            raise ConnectionError("mongo down")

    ctx = context_for(clip_request())
    ctx.status = Broken()
    await ctx.progress(1, 2)  # logged, not raised


async def test_checkpoints_are_read_once_then_remembered() -> None:
    checkpoints = MemoryCheckpoints()
    ctx = context_for(clip_request(), checkpoints=checkpoints)
    assert await ctx.checkpoint("a") is None
    await ctx.save("a", {"k": 1})
    loads = checkpoints.loads
    assert await ctx.checkpoint("a") == {"k": 1}
    assert checkpoints.loads == loads
    with pytest.raises(ValueError, match="cannot be None"):
        await ctx.save("b", None)


async def test_a_step_saved_by_an_earlier_attempt_is_loaded_once() -> None:
    checkpoints, event = MemoryCheckpoints(), clip_request()
    await context_for(event, "clip", checkpoints=checkpoints).save("scene-1", "s3://a")
    retry = context_for(event, "clip", attempt=2, checkpoints=checkpoints)
    assert await retry.checkpoint("scene-1") == "s3://a"
    assert await retry.checkpoint("scene-1") == "s3://a"
    assert checkpoints.loads == 1


async def test_a_step_not_saved_yet_is_asked_for_again() -> None:
    # "Not saved" is not remembered: another attempt may save it in the meantime.
    checkpoints, event = MemoryCheckpoints(), clip_request()
    ctx = context_for(event, "clip", checkpoints=checkpoints)
    assert await ctx.checkpoint("scene-1") is None
    await context_for(event, "clip", checkpoints=checkpoints).save("scene-1", "s3://a")
    assert await ctx.checkpoint("scene-1") == "s3://a"


def test_subject_is_the_job_or_the_request() -> None:
    assert subject_id(clip_request(request_id="req-9")) == "req-9"


@pytest.mark.parametrize("event", list(EXAMPLES.values()), ids=lambda e: e.event_type)
def test_the_subject_is_what_the_events_topic_is_keyed_by(event: Event) -> None:
    # So the stage record of an event and its partition key name the same job or request.
    assert subject_id(event).encode() == TOPICS.for_event(event.event_type).key_for(event)


def test_an_event_about_no_job_or_request_has_an_empty_subject() -> None:
    ping = Event(event_type="ping", schema_version=1, tenant_id="acme", producer="tests")
    assert subject_id(ping) == ""
