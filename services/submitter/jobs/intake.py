"""Accepting a production job: checked, remembered, stored, then handed to the lifecycle
as ``job.requested`` (the same event a producer may write to the topic itself)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from schemas.codes import Code
from schemas.job import JobRequested, ProductionJobSpec
from schemas.names import Producer
from schemas.production import UpstreamVideo
from services.common.callbacks import check_callback_url
from services.common.errors import PermanentError
from services.common.keys import ingest_prefix, is_under
from services.common.obs import trace
from services.common.obs.logs import annotate
from services.common.ports import Emitter, MediaPort
from services.lifecycle.plan import new_job_fields
from services.lifecycle.store import ProductionJobs
from services.submitter.jobs.guard import JobGuard, body_hash
from services.submitter.requests import SubmitFailed

EMIT_TIMEOUT_S = 10.0

MEDIA_PREFIX = "media/"


def media_prefix(tenant_id: str) -> str:
    """``media/{tenant}/``: where ``POST /v1/media`` puts a tenant's uploads."""
    return f"{MEDIA_PREFIX}{ingest_prefix(tenant_id).removeprefix('ingest/')}"


class ForeignVideo(PermanentError):
    public = True
    code = Code.FORBIDDEN_S3_KEY


class MissingVideo(PermanentError):
    public = True
    code = Code.INVALID_S3_KEY


@dataclass(frozen=True)
class IntakePorts:
    jobs: ProductionJobs
    guard: JobGuard
    media: MediaPort
    emitter: Emitter
    allow_http_callbacks: bool = False
    allow_private_callbacks: bool = False


@dataclass(frozen=True)
class Submitted:
    job_id: str
    created: bool  # False: an idempotent retry got the job it created before


def new_job_id() -> str:
    return f"job-{uuid.uuid4().hex}"


async def submit_production(
    ports: IntakePorts,
    tenant_id: str,
    spec: ProductionJobSpec,
    *,
    idempotency_key: str | None = None,
    body: Any = None,
) -> Submitted:
    digest = body_hash(body if body is not None else spec.model_dump(mode="json"))
    if idempotency_key is not None:
        earlier = await ports.guard.remembered(tenant_id, idempotency_key, digest)
        if earlier is not None:
            return Submitted(earlier, created=False)
    if spec.callback_url is not None:
        await check_callback_url(spec.callback_url, allow_http=ports.allow_http_callbacks,
                                 allow_private=ports.allow_private_callbacks)  # fmt: skip
    await _check_videos(ports.media, tenant_id, spec)
    await ports.guard.admit(tenant_id)
    job_id = new_job_id()
    annotate(job_id=job_id)
    if idempotency_key is not None:
        winner = await ports.guard.remember(tenant_id, idempotency_key, digest, job_id)
        if winner != job_id:
            return Submitted(winner, created=False)  # a concurrent retry got there first
    event = JobRequested(job_id=job_id, tenant_id=tenant_id, producer=Producer.SUBMITTER,
                         spec=spec, idempotency_key=idempotency_key)  # fmt: skip
    fields = new_job_fields(spec, event.correlation_id)
    # The trace id finds every log line and event of the job, e.g. from the console.
    fields.update(callback_url=spec.callback_url, idempotency_key=idempotency_key,
                  trace_id=trace.current_trace_id())  # fmt: skip
    await ports.jobs.create(job_id, tenant_id, fields)
    try:
        # Bounded: a broker that does not answer must not hold the HTTP request open.
        async with asyncio.timeout(EMIT_TIMEOUT_S):
            await ports.emitter.emit([event])
    except Exception as exc:
        await ports.jobs.fail_submission(job_id, "the job could not be queued")
        if idempotency_key is not None:
            await ports.guard.forget(tenant_id, idempotency_key, job_id)
        raise SubmitFailed(job_id, f"emit failed: {type(exc).__name__}") from exc
    return Submitted(job_id, created=True)


async def _check_videos(media: MediaPort, tenant_id: str, spec: ProductionJobSpec) -> None:
    keys = {f"scenes[{i}].video": s.video for i, s in enumerate(spec.scenes) if s.video}
    if isinstance(spec.video, str):
        keys["video"] = spec.video
    allowed = (ingest_prefix(tenant_id), media_prefix(tenant_id))
    for where, key in keys.items():
        if not any(is_under(key, prefix) for prefix in allowed):
            raise ForeignVideo(f"{where} must be under {allowed[0]!r} or {allowed[1]!r}")
    found = await asyncio.gather(*(media.head(key) for key in keys.values()))
    for (where, _), info in zip(keys.items(), found, strict=True):
        if info is None:
            raise MissingVideo(f"{where}: no such object")


def is_upstream(spec: ProductionJobSpec) -> bool:
    return isinstance(spec.video, UpstreamVideo)
