"""Clips on demand: answer from the cache, or ask the clipper and wait for its result.

A hit never touches Kafka. A miss goes through ``submit_and_wait`` as ``clip.requested``
and is answered by the matching ``clip.ready``/``clip.failed``, or past the deadline by
the request id to poll; the clip is still cut and cached.

In the API a hit is answered from per-process caches (``clips/cache.py``: the episode,
the clip's record and object) with a URL signed in process, and counted in memory
(``clips/hit_log.py``): with warm caches it makes no round trip at all.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from schemas import ErrorInfo, Event
from schemas.clip import ClipFailed, ClipFormat, ClipReady, ClipRequested
from schemas.names import Producer, Stage
from services.common.clip_rules import ClipPlan, resolve_clip
from services.common.obs import metrics, stats
from services.common.ports import ClipRepo, EpisodeRepo, MediaPort
from services.submitter.clips.cache import StoredClipLookup, load_stored
from services.submitter.clips.hit_log import HitLog
from services.submitter.requests import Accepted, RequestPorts, deadline_in, submit_and_wait

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipLimits:
    max_duration_ms: int
    url_expiry_s: int
    wait_timeout_s: float


@dataclass(frozen=True)
class ClipPorts:
    episodes: EpisodeRepo
    clips: ClipRepo
    media: MediaPort
    requests: RequestPorts
    limits: ClipLimits
    # The API's per-process fast path; without them (tests, one-shot commands) a hit
    # reads its record and object each time and logs itself at once.
    stored: StoredClipLookup | None = None
    hits: HitLog | None = None


@dataclass(frozen=True)
class ClipQuery:
    episode_id: str
    start_ms: int
    duration_ms: int
    format: ClipFormat = "mp3"
    accurate: bool = False


@dataclass(frozen=True)
class ClipAnswer:
    clip_url: str
    cache_hit: bool
    generation_time_ms: int
    s3_key: str
    size_bytes: int
    start_ms: int
    end_ms: int
    format: str
    expires_at: datetime
    request_id: str | None = None


@dataclass(frozen=True)
class ClipPending:
    request_id: str


class ClipRequestFailed(Exception):
    """The clipper answered ``clip.failed``."""

    def __init__(self, request_id: str, error: ErrorInfo) -> None:
        super().__init__(error.message)
        self.request_id = request_id
        self.error = error


def new_request_id() -> str:
    return f"clip-{uuid.uuid4().hex}"


async def get_clip(ports: ClipPorts, tenant_id: str, query: ClipQuery) -> ClipAnswer | ClipPending:
    """Raises ``ClipRejected`` for a request that can never succeed as asked."""
    started = time.monotonic()
    plan = await _plan(ports, tenant_id, query)
    hit = await cached_clip(ports, plan, started)
    await _count(ports, tenant_id, query, plan, hit is not None)
    if hit is not None:
        return hit
    return await request_clip(
        ports,
        query,
        tenant_id,
        producer=Producer.SUBMITTER,
        deadline=deadline_in(ports.limits.wait_timeout_s),
    )


async def get_cached_clip(ports: ClipPorts, tenant_id: str, query: ClipQuery) -> ClipAnswer | None:
    """The answer :func:`get_clip` gives when the clip is cached, counted the same way;
    None, counting nothing, when it is not (the caller then asks ``get_clip``). Raises
    ``ClipRejected`` like ``get_clip``."""
    started = time.monotonic()
    plan = await _plan(ports, tenant_id, query)
    hit = await cached_clip(ports, plan, started)
    if hit is not None:
        await _count(ports, tenant_id, query, plan, True)
    return hit


async def _plan(ports: ClipPorts, tenant_id: str, query: ClipQuery) -> ClipPlan:
    # Looked up under the caller's tenant: another tenant's episode is not there.
    _, plan = await resolve_clip(
        ports.episodes,
        tenant_id,
        query.episode_id,
        query.start_ms,
        query.duration_ms,
        query.format,
        query.accurate,
        ports.limits.max_duration_ms,
    )
    return plan


async def _count(
    ports: ClipPorts, tenant_id: str, query: ClipQuery, plan: ClipPlan, hit: bool
) -> None:
    metrics.cache("clip", hit)
    stats.count(stats.StatName.CLIP_REQUEST, tenant=tenant_id, episode_id=query.episode_id,
                start_ms=str(query.start_ms), duration_ms=str(query.duration_ms))  # fmt: skip
    if not hit:
        return  # the clipper logs the requests it serves
    if ports.hits is not None:
        ports.hits.record(plan, tenant_id)
        return
    try:
        await ports.clips.log_request(plan, tenant_id, cache_hit=True)
    except Exception:
        # Counts only steer cache warming; losing one must not fail the answer.
        log.warning("could not log a cache hit for %s", plan.key, exc_info=True)


async def cached_clip(ports: ClipPorts, plan: ClipPlan, started: float) -> ClipAnswer | None:
    if ports.stored is not None:
        stored = await ports.stored.find(plan)
    else:
        stored = await load_stored(ports.clips, ports.media, plan)
    if stored is None:
        return None
    expiry = ports.limits.url_expiry_s
    url = await ports.media.presign_get(stored.s3_key, expiry)
    return ClipAnswer(
        clip_url=url,
        cache_hit=True,
        # What this answer took; the cut itself happened earlier for someone else.
        generation_time_ms=int((time.monotonic() - started) * 1000),
        s3_key=stored.s3_key,
        size_bytes=stored.size_bytes,
        start_ms=plan.start_ms,
        end_ms=plan.end_ms,
        format=plan.format,
        expires_at=datetime.now(UTC) + timedelta(seconds=expiry),
    )


async def request_clip(
    ports: ClipPorts, query: ClipQuery, tenant_id: str, *, producer: str, deadline: float
) -> ClipAnswer | ClipPending:
    """Ask the clipper for a clip and wait until ``deadline`` (``deadline_in``) for it."""
    request_id = new_request_id()
    event = ClipRequested(
        request_id=request_id,
        tenant_id=tenant_id,
        producer=producer,
        episode_id=query.episode_id,
        start_ms=query.start_ms,
        duration_ms=query.duration_ms,
        format=query.format,
        accurate=query.accurate,
    )

    def failed(error: ErrorInfo) -> ClipFailed:
        return ClipFailed(
            request_id=request_id,
            tenant_id=tenant_id,
            correlation_id=event.correlation_id,
            producer=producer,
            episode_id=query.episode_id,
            error=error,
        )

    result = await submit_and_wait(
        ports.requests,
        event,
        job_id=request_id,
        stage=Stage.CLIP,
        kind=Stage.CLIP,
        fields={
            "episode_id": query.episode_id,
            "start_ms": query.start_ms,
            "duration_ms": query.duration_ms,
            "format": query.format,
            "accurate": query.accurate,
        },
        deadline=deadline,
        failed=failed,
    )
    if isinstance(result, Accepted):
        return ClipPending(result.job_id)
    return answer_from(result)


def answer_from(result: Event) -> ClipAnswer:
    if isinstance(result, ClipFailed):
        raise ClipRequestFailed(result.request_id, result.error)
    if not isinstance(result, ClipReady):
        raise TypeError(f"not a clip result: {result.event_type}")
    return ClipAnswer(
        clip_url=result.clip_url,
        cache_hit=result.cache_hit,
        generation_time_ms=result.generation_time_ms,
        s3_key=result.s3_key,
        size_bytes=result.size_bytes,
        start_ms=result.start_ms,
        end_ms=result.end_ms,
        format=result.format,
        expires_at=result.expires_at,
        request_id=result.request_id,
    )
