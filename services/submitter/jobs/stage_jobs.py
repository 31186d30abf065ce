"""Jobs of a single stage's kind (audio, clip, merge): stored, then sent straight to their
stage; their status is their stage's record."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from schemas import Event
from schemas.audio import AudioJobSubmitted
from schemas.clip import ClipRequested
from schemas.job import AudioJobSpec, ClipJobSpec, MergeJobSpec
from schemas.merge import MergeRequested
from schemas.names import Producer, Stage
from services.common.job_store import StageStatus
from services.common.obs import trace
from services.common.obs.logs import annotate
from services.common.ports import Emitter, JobRepo
from services.submitter.jobs.guard import JobGuard, body_hash
from services.submitter.jobs.intake import EMIT_TIMEOUT_S, new_job_id
from services.submitter.requests import SubmitFailed

StageSpec = AudioJobSpec | ClipJobSpec | MergeJobSpec


@dataclass(frozen=True)
class StageJobPorts:
    jobs: JobRepo
    emitter: Emitter
    # Idempotency-Key bookkeeping (the production intake's); None: keys are not honoured.
    guard: JobGuard | None = None


def stage_event(job_id: str, tenant_id: str, spec: StageSpec) -> tuple[str, Event]:
    """The stage a spec goes to and the event that asks it."""
    common: dict[str, Any] = {"tenant_id": tenant_id, "producer": Producer.SUBMITTER}
    if isinstance(spec, AudioJobSpec):
        return Stage.AUDIO, AudioJobSubmitted(job_id=job_id, **common, **spec.payload())
    if isinstance(spec, MergeJobSpec):
        return Stage.MERGE, MergeRequested(job_id=job_id, **common, **spec.payload())
    return Stage.CLIP, ClipRequested(request_id=job_id, **common, **spec.payload())


async def submit_stage_job(
    ports: StageJobPorts, tenant_id: str, spec: StageSpec, idempotency_key: str | None = None
) -> str:
    """The new job's id; with an ``idempotency_key`` seen in the last 24 h (same body),
    the job that submission made: a retried request is not run twice."""
    guard = ports.guard if idempotency_key is not None else None
    digest = ""
    if guard is not None and idempotency_key is not None:
        digest = body_hash(spec.model_dump(mode="json"))
        earlier = await guard.remembered(tenant_id, idempotency_key, digest)
        if earlier is not None:
            return earlier
    job_id = new_job_id()
    if guard is not None and idempotency_key is not None:
        winner = await guard.remember(tenant_id, idempotency_key, digest, job_id)
        if winner != job_id:
            return winner  # a concurrent retry got there first
    annotate(job_id=job_id)
    stage, event = stage_event(job_id, tenant_id, spec)
    await ports.jobs.create_job(job_id, tenant_id, spec.job_kind,
                                {"spec": spec.model_dump(mode="json"),
                                 "correlation_id": event.correlation_id,
                                 "trace_id": trace.current_trace_id()})  # fmt: skip
    await ports.jobs.transition(job_id, stage, StageStatus.PENDING, {"tenant_id": tenant_id})
    try:
        # Bounded: a broker that does not answer must not hold the HTTP request open.
        async with asyncio.timeout(EMIT_TIMEOUT_S):
            await ports.emitter.emit([event])
    except Exception as exc:
        await ports.jobs.transition(job_id, stage, StageStatus.FAILED,
                                    {"error": "the job could not be queued"})  # fmt: skip
        if guard is not None and idempotency_key is not None:
            await guard.forget(tenant_id, idempotency_key, job_id)  # the retry makes a new one
        raise SubmitFailed(job_id, f"emit failed: {type(exc).__name__}") from exc
    return job_id
