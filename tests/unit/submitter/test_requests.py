"""Request/reply for any job kind (a merge here), over in-memory ports."""

from __future__ import annotations

import pytest

from schemas import ErrorInfo, Event
from schemas.example_events import EXAMPLES
from schemas.merge import MergeCompleted, MergeFailed, MergeRequested
from schemas.names import Stage
from services.common.job_store import StageStatus
from services.submitter.requests import (
    Accepted,
    RequestPorts,
    SubmitFailed,
    deadline_in,
    recorded_outputs,
    submit_and_wait,
)
from services.submitter.waiter import Background, ResultWaiter, TooManyPending
from tests.support.fakes import MemoryJobs
from tests.support.submitter import AnsweringEmitter, Responder

JOB = "job-merge-1"


def merge_request() -> MergeRequested:
    event = EXAMPLES[("merge.requested", 1)].model_copy(update={"job_id": JOB})
    assert isinstance(event, MergeRequested)
    return event


def completed(event: Event) -> MergeCompleted:
    done = EXAMPLES[("merge.completed", 1)].model_copy(update={"job_id": JOB})
    assert isinstance(done, MergeCompleted)
    return done


def failed(error: ErrorInfo) -> MergeFailed:
    request = merge_request()
    return MergeFailed(
        job_id=JOB,
        tenant_id=request.tenant_id,
        correlation_id=request.correlation_id,
        producer=request.producer,
        error=error,
    )


class Ports:
    def __init__(self, respond: Responder | None = None, max_pending: int = 10) -> None:
        self.jobs = MemoryJobs()
        self.waiter, self.background = ResultWaiter(max_pending), Background()
        self.emitter = AnsweringEmitter(self.waiter, respond)
        self.requests = RequestPorts(self.jobs, self.emitter, self.waiter, self.background)

    async def submit(self, wait_s: float = 1.0) -> Event | Accepted:
        return await submit_and_wait(
            self.requests,
            merge_request(),
            job_id=JOB,
            stage=Stage.MERGE,
            kind="merge",
            fields={"operation": "concat"},
            deadline=deadline_in(wait_s),
            failed=failed,
        )


async def test_an_answer_in_time_is_returned_and_the_job_recorded() -> None:
    ports = Ports(respond=completed)
    result = await ports.submit()
    assert isinstance(result, MergeCompleted) and result.job_id == JOB
    request = merge_request()
    assert ports.emitter.events == [request]
    job = ports.jobs.jobs[JOB]
    assert (job["kind"], job["tenant_id"], job["operation"]) == ("merge", "acme", "concat")
    assert (job["producer"], job["correlation_id"]) == (request.producer, request.correlation_id)
    stage = ports.jobs.stages[f"{JOB}:merge"]
    assert (stage["status"], stage["tenant_id"]) == ("PENDING", "acme")
    assert len(ports.waiter) == 0


async def test_no_answer_by_the_deadline_is_accepted_with_the_id_to_poll() -> None:
    ports = Ports()
    result = await ports.submit(wait_s=0.05)
    assert result == Accepted(JOB)
    assert ports.emitter.events == [merge_request()]
    assert ports.jobs.stages[f"{JOB}:merge"]["status"] == "PENDING"
    assert len(ports.waiter) == 0


async def test_an_emit_failure_is_recorded_failed_with_the_failed_event() -> None:
    ports = Ports()
    ports.emitter.fail_emits = 1
    with pytest.raises(SubmitFailed) as info:
        await ports.submit()
    assert info.value.job_id == JOB and info.value.code == "submit_failed"
    stage = ports.jobs.stages[f"{JOB}:merge"]
    assert stage["status"] == StageStatus.FAILED
    [event] = recorded_outputs(stage)
    assert isinstance(event, MergeFailed) and event.job_id == JOB
    assert (event.error.code, event.error.retryable) == ("submit_failed", True)
    assert len(ports.waiter) == 0 and ports.emitter.events == []


async def test_a_full_waiter_records_nothing() -> None:
    ports = Ports(max_pending=0)
    with pytest.raises(TooManyPending):
        await ports.submit()
    assert ports.jobs.jobs == {} and ports.emitter.events == []


def test_recorded_outputs_decode_with_the_schema_models_and_skip_the_unreadable() -> None:
    done = completed(merge_request())
    stage = {
        "_id": f"{JOB}:merge",
        "outputs": [done.model_dump(mode="json"), {"event_type": "merge.completed"}],
    }
    assert recorded_outputs(stage) == [done]
    assert recorded_outputs({"status": "RUNNING"}) == []
    assert recorded_outputs(None) == []
