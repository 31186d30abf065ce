"""The operator API: every tenant's jobs (read, retry, cancel), the dead-letter topics
(read, replay, discard), the pipeline's recent figures and the topics' offsets and lag.
Operator keys only: no key is 401, a tenant's key 403."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Body, Path, Query

from schemas.codes import Code
from services.common.errors import TransientError
from services.common.mongo import database
from services.ops import topics as ops_topics
from services.ops.job_detail import RetryableStage
from services.ops.pipeline import pipeline_stats
from services.submitter.http.deps import OperatorDep, RuntimeDep
from services.submitter.http.errors import ApiError
from services.submitter.http.models import ErrorResponse
from services.submitter.http.ops_models import (
    DeadLetterListOut,
    DeadLetterOut,
    DeadLetterSummaryOut,
    DlqTopicListOut,
    DlqTopicOut,
    OpsJobListOut,
    OpsJobOut,
    OpsJobRowOut,
    PipelineOut,
    ReplayIn,
    TopicListOut,
)
from services.submitter.http.routes.jobs import Kind, Status
from services.submitter.http.routes.jobs import _instant as instant

router = APIRouter(prefix="/v1/ops", tags=["operations"])

DAY_S = 24 * 3600


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


COMMON: dict[int | str, dict[str, Any]] = {
    401: _error("Missing, invalid or revoked API key (unauthorized)."),
    403: _error("A tenant's key: this needs an operator key (forbidden)."),
    503: _error("A backing service (MongoDB, Kafka) is unavailable; retry."),
}
JOB: dict[int | str, dict[str, Any]] = {**COMMON, 404: _error("No such job (job_not_found).")}
DLQ: dict[int | str, dict[str, Any]] = {
    **COMMON,
    404: _error("No such dead-letter topic, or no such dead letter on it (not_found)."),
}
SETTLE: dict[int | str, dict[str, Any]] = {
    **DLQ,
    409: _error("The dead letter was already replayed or discarded (dead_letter_settled)."),
}

TopicPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=249,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="The dead-letter topic as named on the cluster",
        examples=["tapedeck.clip.requests.dlq"],
    ),
]
PartitionPath = Annotated[int, Path(ge=0, le=100_000)]
OffsetPath = Annotated[int, Path(ge=0)]


@asynccontextmanager
async def _kafka() -> AsyncIterator[None]:
    """A broker that does not answer is a 503 like any backing service, not a 500."""
    try:
        yield
    except KafkaError as exc:
        raise TransientError(f"kafka: {exc!r}") from exc


@router.get("/jobs", response_model=OpsJobListOut, responses=COMMON)
async def list_jobs(
    runtime: RuntimeDep,
    _: OperatorDep,
    status: Status | None = None,
    kind: Kind | None = None,
    tenant: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    created_after: Annotated[str | None, Query(json_schema_extra={"format": "date-time"})] = None,
    created_before: Annotated[str | None, Query(json_schema_extra={"format": "date-time"})] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> OpsJobListOut:
    """Every tenant's jobs (or one tenant's), newest first, a page at a time."""
    page = await runtime.ops_jobs.list(
        status=status,
        kind=kind,
        tenant=tenant,
        created_after=instant("created_after", created_after),
        created_before=instant("created_before", created_before),
        limit=limit,
        cursor=cursor,
    )
    return OpsJobListOut(jobs=[OpsJobRowOut.of(j) for j in page.jobs], next_cursor=page.next_cursor)


@router.get("/jobs/{job_id}", response_model=OpsJobOut, responses=JOB)
async def get_job(runtime: RuntimeDep, _: OperatorDep, job_id: str) -> OpsJobOut:
    """Any tenant's job in full: stages with operator detail, timeline, webhook attempts,
    media links, and what may be done to it now."""
    detail = await runtime.ops_jobs.detail(job_id)
    if detail is None:
        raise ApiError(Code.JOB_NOT_FOUND, f"no job {job_id!r}")
    return OpsJobOut.of_detail(detail)


@router.post(
    "/jobs/{job_id}/retry",
    status_code=202,
    response_model=OpsJobOut,
    responses={
        **JOB,
        409: _error("Nothing to retry now (job_finished)."),
        422: _error("A stage that cannot be retried (invalid_request)."),
    },
)
async def retry_job(
    runtime: RuntimeDep,
    actor: OperatorDep,
    job_id: str,
    stage: Annotated[RetryableStage, Query(description="What the job API retries")] = "audio",
) -> OpsJobOut:
    """Retry a stage of any tenant's job, as the tenant's own retry would (today: the audio
    of a completed production job); recorded with the operator's name."""
    return OpsJobOut.of_detail(await runtime.ops_jobs.retry(job_id, stage, actor))


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=OpsJobOut,
    responses={
        **JOB,
        409: _error("The job already ended (job_finished)."),
    },
)
async def cancel_job(runtime: RuntimeDep, actor: OperatorDep, job_id: str) -> OpsJobOut:
    """Cancel any tenant's job; recorded with the operator's name."""
    return OpsJobOut.of_detail(await runtime.ops_jobs.cancel(job_id, actor))


@router.get("/dlq", response_model=DlqTopicListOut, responses=COMMON)
async def list_dlq_topics(runtime: RuntimeDep, _: OperatorDep) -> DlqTopicListOut:
    """Every dead-letter topic on the cluster, with how many messages wait in it."""
    async with _kafka():
        found = await runtime.dead_letters.topics()
    return DlqTopicListOut(topics=[DlqTopicOut.of(t) for t in found])


@router.get("/dlq/{topic}", response_model=DeadLetterListOut, responses=DLQ)
async def list_dead_letters(
    runtime: RuntimeDep,
    _: OperatorDep,
    topic: TopicPath,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeadLetterListOut:
    """The oldest dead letters of a topic, with their state."""
    async with _kafka():
        letters = await runtime.dead_letters.list(topic, limit=limit)
    return DeadLetterListOut(
        topic=topic, dead_letters=[DeadLetterSummaryOut.of(d) for d in letters]
    )


@router.get("/dlq/{topic}/{partition}/{offset}", response_model=DeadLetterOut, responses=DLQ)
async def get_dead_letter(
    runtime: RuntimeDep,
    _: OperatorDep,
    topic: TopicPath,
    partition: PartitionPath,
    offset: OffsetPath,
) -> DeadLetterOut:
    """One dead letter: its body, headers, error and what operators did with it."""
    async with _kafka():
        letter = await runtime.dead_letters.get(topic, partition, offset)
    if letter is None:
        raise ApiError(Code.NOT_FOUND, f"no dead letter {partition}-{offset} on {topic!r}")
    return DeadLetterOut.of_letter(letter)


@router.post(
    "/dlq/{topic}/{partition}/{offset}/replay",
    response_model=DeadLetterOut,
    responses={
        **SETTLE,
        422: _error(
            "The edited event is not valid for the original topic, or the dead letter "
            "is truncated and needs an edited body (invalid_replay); nothing is sent."
        ),
    },
)
async def replay_dead_letter(
    runtime: RuntimeDep,
    actor: OperatorDep,
    topic: TopicPath,
    partition: PartitionPath,
    offset: OffsetPath,
    body: Annotated[ReplayIn | None, Body()] = None,
) -> DeadLetterOut:
    """Send the message back to its original topic with its original key (edited, when
    ``value`` is given)."""
    edited = body.value.encode() if body is not None and body.value is not None else None
    async with _kafka():
        letter = await runtime.dead_letters.replay(topic, partition, offset, actor, edited)
    return DeadLetterOut.of_letter(letter)


@router.post(
    "/dlq/{topic}/{partition}/{offset}/discard", response_model=DeadLetterOut, responses=SETTLE
)
async def discard_dead_letter(
    runtime: RuntimeDep,
    actor: OperatorDep,
    topic: TopicPath,
    partition: PartitionPath,
    offset: OffsetPath,
) -> DeadLetterOut:
    """Mark a dead letter as dealt with, without sending it anywhere."""
    async with _kafka():
        letter = await runtime.dead_letters.discard(topic, partition, offset, actor)
    return DeadLetterOut.of_letter(letter)


@router.get("/pipeline", response_model=PipelineOut, responses=COMMON)
async def pipeline(
    runtime: RuntimeDep,
    _: OperatorDep,
    window_s: Annotated[int, Query(ge=60, le=3 * DAY_S)] = 3600,
) -> PipelineOut:
    """Per stage events in, out and failed with latency over the window; consumer lag;
    provider calls, cache hits and the most requested clips."""
    db = database(runtime.mongo, runtime.settings)
    stats = await pipeline_stats(db, runtime.settings, window=timedelta(seconds=window_s))
    return PipelineOut.of(stats)


@router.get("/topics", response_model=TopicListOut, responses=COMMON)
async def topics(runtime: RuntimeDep, _: OperatorDep) -> TopicListOut:
    """Every registry topic and dead-letter topic on the cluster: partitions' earliest and
    latest offsets, and each consumer group's committed offset and lag."""
    async with _kafka():
        found = await ops_topics.describe(runtime.settings)
    return TopicListOut.of(found)
