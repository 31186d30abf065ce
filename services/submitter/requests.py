"""Request/reply over Kafka, the same for every job kind.

``submit_and_wait`` registers a waiter for the job id, records the job, marks its stage
PENDING (so its status answers at once), emits the request and waits for the result up
to a deadline; past it the caller gets the id to poll, and the job still runs. The same
answer is read back later from the job store: ``recorded_outputs`` decodes the events a
stage recorded as its ``outputs``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from schemas import ErrorInfo, Event, decode_event
from schemas.codes import Code
from services.common.errors import TransientError
from services.common.job_store import StageStatus
from services.common.mongo import Doc
from services.common.ports import Emitter, JobRepo
from services.submitter.waiter import Background, ResultWaiter

log = logging.getLogger(__name__)

# Builds the stage's failure event for this request, from the error that stopped it.
FailedEvent = Callable[[ErrorInfo], Event]


@dataclass(frozen=True)
class RequestPorts:
    jobs: JobRepo
    emitter: Emitter
    waiter: ResultWaiter
    background: Background


@dataclass(frozen=True)
class Accepted:
    """No answer by the deadline: the job goes on; its status is read by ``job_id``."""

    job_id: str


class SubmitFailed(TransientError):
    """The request could not be put on Kafka; it is recorded as FAILED."""

    code = Code.SUBMIT_FAILED

    def __init__(self, job_id: str, message: str) -> None:
        super().__init__(message)
        self.job_id = job_id


def deadline_in(seconds: float) -> float:
    """A deadline ``seconds`` from now, on the clock ``submit_and_wait`` reads."""
    return asyncio.get_running_loop().time() + seconds


async def submit_and_wait(
    ports: RequestPorts,
    event: Event,
    *,
    job_id: str,
    stage: str,
    kind: str,
    fields: Mapping[str, Any],
    deadline: float,
    failed: FailedEvent,
) -> Event | Accepted:
    """The result event for ``event``, or ``Accepted`` when none came by ``deadline``
    (from ``deadline_in``). Raises ``SubmitFailed`` when the emit fails and
    ``TooManyPending`` when this process already waits for too many results."""
    loop = asyncio.get_running_loop()
    job_fields = {
        **fields,
        "producer": event.producer,
        "correlation_id": event.correlation_id,
    }
    # Registered before the emit, as the answer may arrive before emit() returns; and
    # before the job is recorded, so a full waiter leaves no job that is never sent.
    with ports.waiter.expect(job_id) as pending:
        await ports.jobs.create_job(job_id, event.tenant_id, kind, job_fields)
        # PENDING before the emit: the stage's RUNNING can then only move it forward.
        await ports.jobs.transition(
            job_id,
            stage,
            StageStatus.PENDING,
            {"tenant_id": event.tenant_id, "correlation_id": event.correlation_id},
        )
        # The emit runs on its own so a slow broker cannot stretch the request past its
        # deadline, and a caller who gives up does not cancel a half-sent request.
        emitting = ports.background.spawn(_emit(ports, event, job_id, stage, failed))
        done, _ = await asyncio.wait({emitting}, timeout=max(deadline - loop.time(), 0))
        if not done:
            return Accepted(job_id)
        emitting.result()
        result = await pending.wait(deadline - loop.time())
    return Accepted(job_id) if result is None else result


async def _emit(
    ports: RequestPorts, event: Event, job_id: str, stage: str, failed: FailedEvent
) -> None:
    try:
        await ports.emitter.emit([event])
    except Exception as exc:
        error = ErrorInfo(
            code=SubmitFailed.code,
            message="the request could not be queued; try again",
            retryable=True,
            attempts=1,
        )
        outputs = [failed(error).model_dump(mode="json")]
        try:
            await ports.jobs.transition(job_id, stage, StageStatus.FAILED, {"outputs": outputs})
        except Exception:
            log.warning("could not record the failed submit of %s", job_id)
        raise SubmitFailed(job_id, f"emit failed: {type(exc).__name__}") from exc


def recorded_outputs(stage: Doc | None) -> list[Event]:
    """The events a stage recorded as its outcome, decoded with their schema models; one
    that no longer decodes (a retired schema version) is skipped and logged."""
    stored = (stage or {}).get("outputs")
    events: list[Event] = []
    for doc in stored if isinstance(stored, list) else []:
        try:
            # Through JSON, as strict models accept UUIDs and datetimes only as JSON text.
            events.append(decode_event(json.dumps(doc, default=str)))
        except Exception as exc:
            log.warning("undecodable output on stage %s: %s", (stage or {}).get("_id"), exc)
    return events
