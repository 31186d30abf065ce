"""The result waiter: answers by job or request id, timeouts, cancellation, shutdown and
bounds."""

from __future__ import annotations

import asyncio

import pytest

from schemas import ErrorInfo
from schemas.clip import ClipFailed, ClipReady
from schemas.example_events import EXAMPLES
from schemas.merge import MergeCompleted
from services.submitter.waiter import Background, ResultWaiter, TooManyPending
from tests.support.events import clip_ready

ready = clip_ready


def failed(request_id: str) -> ClipFailed:
    error = ErrorInfo(code="ffmpeg_failed", message="x", retryable=False, attempts=1)
    return ClipFailed(
        request_id=request_id, tenant_id="acme", producer="clipper", episode_id="ep", error=error
    )


async def test_a_result_resolves_only_its_own_request() -> None:
    waiter = ResultWaiter()
    with waiter.expect("r1") as p1, waiter.expect("r2") as p2:
        assert not waiter.resolve(ready("someone-elses"))
        assert waiter.resolve(failed("r2"))
        assert not waiter.resolve(failed("r2"))  # a redelivered result changes nothing
        result = await p2.wait(1)
        assert isinstance(result, ClipFailed) and result.request_id == "r2"
        assert await p1.wait(0.01) is None
    assert len(waiter) == 0


async def test_job_results_resolve_by_job_id_or_the_key_given() -> None:
    merged = EXAMPLES[("merge.completed", 1)].model_copy(update={"job_id": "job-1"})
    waiter = ResultWaiter()
    with waiter.expect("job-1") as by_default, waiter.expect("other") as by_key:
        assert waiter.resolve(merged)
        assert waiter.resolve(merged, "other")
        assert isinstance(await by_default.wait(1), MergeCompleted)
        assert await by_key.wait(1) is merged
    assert len(waiter) == 0


async def test_a_result_that_arrives_before_the_wait_is_kept() -> None:
    waiter = ResultWaiter()
    with waiter.expect("r1") as pending:
        waiter.resolve(ready("r1"))
        result = await pending.wait(0)
    assert isinstance(result, ClipReady) and result.request_id == "r1"


async def test_timeout_and_late_result_leave_nothing_behind() -> None:
    waiter = ResultWaiter()
    with waiter.expect("r1") as pending:
        assert await pending.wait(0.01) is None
        assert len(waiter) == 1  # still registered until the block ends
    assert len(waiter) == 0
    assert not waiter.resolve(ready("r1"))


async def test_a_cancelled_caller_is_cleaned_up() -> None:
    waiter = ResultWaiter()

    async def caller() -> None:
        with waiter.expect("r1") as pending:
            await pending.wait(60)

    task = asyncio.create_task(caller())
    await asyncio.sleep(0.01)
    assert len(waiter) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(waiter) == 0


async def test_shutdown_wakes_waiters_as_if_timed_out() -> None:
    waiter = ResultWaiter()

    async def caller() -> object:
        with waiter.expect("r1") as pending:
            return await pending.wait(60)

    task = asyncio.create_task(caller())
    await asyncio.sleep(0.01)
    waiter.cancel_all()
    assert await asyncio.wait_for(task, 1) is None
    assert len(waiter) == 0


async def test_the_table_is_bounded_and_ids_are_unique() -> None:
    waiter = ResultWaiter(max_pending=2)
    with waiter.expect("a"), waiter.expect("b"):
        with pytest.raises(TooManyPending):
            waiter.expect("c")
        with pytest.raises(ValueError):
            waiter.expect("a")
    with waiter.expect("c"):
        assert len(waiter) == 1


async def test_background_keeps_tasks_until_done_and_drains() -> None:
    background = Background()
    gate = asyncio.Event()

    async def work() -> str:
        await gate.wait()
        return "done"

    task = background.spawn(work())
    assert len(background) == 1
    gate.set()
    assert await task == "done"
    await asyncio.sleep(0)
    assert len(background) == 0

    stuck = background.spawn(asyncio.sleep(60))
    await background.drain(0.01)
    assert stuck.cancelled() and len(background) == 0
