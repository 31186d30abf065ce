"""The lifecycle stage: job requests and every stage's outcomes in; the events each job
needs next out. Pure logic over the job store and the emitter.

The handler emits its own events (rather than returning them to the stage runner) so
it can confirm each one in the job's outbox once the broker has it; a worker that dies
between claiming an action and emitting it leaves it in the outbox, and the relay
(:meth:`LifecycleHandler.relay`) sends it again with the same event id.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Protocol

from schemas import ErrorInfo, Event, decode_event
from schemas.audio import AudioFailed, AudioRendered
from schemas.job import JobFailed, JobRequested, ProductionJobSpec
from schemas.merge import MergeCompleted, MergeFailed
from schemas.names import Producer, parent_job_id
from schemas.video import VideoRendered
from services.common.context import StageContext
from services.common.obs import trace
from services.common.obs.logs import bind
from services.common.ports import Emitter
from services.lifecycle.plan import (
    Action,
    Doc,
    Outcome,
    VideoOverdue,
    new_job_fields,
    next_actions,
)

log = logging.getLogger(__name__)

OUTCOMES = (VideoRendered, AudioRendered, AudioFailed, MergeCompleted, MergeFailed)


class JobBook(Protocol):
    async def create(self, job_id: str, tenant_id: str, fields: dict[str, object]) -> bool: ...

    async def get(self, job_id: str) -> Doc | None: ...

    async def record(self, job_id: str, event: Outcome, key: str) -> bool: ...

    async def state(self, job_id: str, job: Doc | None = None) -> tuple[Doc, list[str]] | None: ...

    async def claim(self, job_id: str, action: Action, version: int = 1) -> bool: ...

    async def sent(self, job_id: str, name: str) -> None: ...

    async def stale_outbox(
        self, older_than: timedelta, limit: int = 100
    ) -> list[tuple[str, str, Doc]]: ...

    async def upstream_jobs(self, older_than: timedelta, limit: int = 100) -> list[str]: ...


class LifecycleHandler:
    def __init__(self, *, jobs: JobBook, emitter: Emitter, video_timeout_s: float) -> None:
        self._jobs = jobs
        self._emitter = emitter
        self._video_timeout = timedelta(seconds=video_timeout_s)

    async def __call__(self, event: Event, ctx: StageContext) -> Sequence[Event]:
        if isinstance(event, JobRequested):
            return await self._requested(event)
        if isinstance(event, OUTCOMES):
            job_id = parent_job_id(event.job_id)
            job = await self._jobs.get(job_id)
            if job is None or job.get("kind") != "production":
                return []  # a stage's own job, not one this lifecycle drives
            await self._jobs.record(job_id, event, str(event.event_id))
            await self.advance(job_id)
        return []

    async def _requested(self, event: JobRequested) -> Sequence[Event]:
        spec = event.spec
        if not isinstance(spec, ProductionJobSpec):
            return []  # the other kinds go to their stage directly
        # The HTTP intake stores the job before producing this; a producer writing
        # job.requested straight onto the topic gets it stored here. For a known job it is
        # a nudge (after a retry): send what the job needs now.
        fields = new_job_fields(spec, event.correlation_id)
        if event.idempotency_key is not None:
            fields["idempotency_key"] = event.idempotency_key
        fields["trace_id"] = trace.current_trace_id()
        await self._jobs.create(event.job_id, event.tenant_id, fields)
        await self.advance(event.job_id)
        return []

    async def advance(self, job_id: str) -> None:
        """Claim and send whatever the job needs now. Safe to call any number of times,
        from any number of workers: each action is claimed once."""
        found = await self._jobs.state(job_id)
        if found is None:
            return
        state, _ = found
        version = int(state.get("audio", {}).get("attempt", 1))
        for action in next_actions(state):
            if not await self._jobs.claim(job_id, action, version):
                continue
            if action.event is not None:
                await self._emitter.emit([action.event])
                await self._jobs.sent(job_id, action.name)

    async def relay(self, older_than_s: float = 30.0) -> int:
        """Send again what a dead worker claimed but never confirmed; returns how many."""
        stale = await self._jobs.stale_outbox(timedelta(seconds=older_than_s))
        for job_id, name, doc in stale:
            event = decode_event(json.dumps(doc).encode())
            async with self._in_trace_of(job_id):
                log.warning("job %s: re-sending %s (%s) from the outbox",
                            job_id, name, event.event_id)  # fmt: skip
                await self._emitter.emit([event])
            await self._jobs.sent(job_id, name)
        return len(stale)

    async def expire_videos(self) -> int:
        """Jobs whose upstream video never arrived within the configured time fail."""
        seconds = int(self._video_timeout.total_seconds())
        expired = 0
        for job_id in await self._jobs.upstream_jobs(self._video_timeout):
            async with self._in_trace_of(job_id):
                if await self._jobs.record(job_id, VideoOverdue(seconds), "video-overdue"):
                    expired += 1
                await self.advance(job_id)
        return expired

    @asynccontextmanager
    async def _in_trace_of(self, job_id: str) -> AsyncIterator[None]:
        """For work a timer does on a job: its lines and events join the job's trace
        (recorded at submission), as if a stage had handled one of its events."""
        job = await self._jobs.get(job_id)
        ctx = trace.resume(job.get("trace_id") if job is not None else None)
        with trace.use(ctx), bind(job_id=job_id, tenant=job.get("tenant_id") if job else None):
            yield


def job_failed(event: Event, error: ErrorInfo) -> Event:
    """The lifecycle's own failure answer: driving the job hit a bug or a lasting outage."""
    return JobFailed(
        job_id=parent_job_id(str(getattr(event, "job_id", "unknown"))),
        tenant_id=event.tenant_id,
        correlation_id=event.correlation_id,
        producer=Producer.LIFECYCLE,
        job_kind="production",
        error=error,
    )
