"""The submitter's ports over the in-memory fakes, for unit tests of the submitter and
of the commands built on it (cache warming)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from schemas import ErrorInfo, Event
from schemas.clip import ClipFailed, ClipReady, ClipRequested
from schemas.names import Producer
from services.common.clip_rules import ClipPlan
from services.common.episodes import Episode
from services.common.keys import clip_key
from services.submitter.clips.on_demand import ClipLimits, ClipPorts
from services.submitter.requests import RequestPorts
from services.submitter.waiter import Background, ResultWaiter
from tests.support.fakes import MemoryClips, MemoryEmitter, MemoryEpisodes, MemoryJobs, MemoryMedia

EPISODE = Episode(
    episode_id="ep-1",
    tenant_id="acme",
    s3_key="episodes/ep-1/source.mp3",
    duration_ms=60_000,
    format_name="mp3",
    codec="mp3",
    size_bytes=1000,
)

# The answer a stage gives a request at once, or None to give none.
Responder = Callable[[Event], Event | None]


class AnsweringEmitter(MemoryEmitter):
    """A MemoryEmitter whose stage answers through the waiter as soon as a request is
    emitted, as a very fast stage would (the answer lands before emit() returns).
    ``gate`` holds every emit until it is set, as a slow broker would."""

    def __init__(
        self,
        waiter: ResultWaiter,
        respond: Responder | None = None,
        gate: asyncio.Event | None = None,
    ) -> None:
        super().__init__()
        self._waiter, self._respond, self._gate = waiter, respond, gate

    async def emit(self, events: Sequence[Event]) -> None:
        if self._gate is not None:
            await self._gate.wait()
        await super().emit(events)
        for event in events:
            result = self._respond(event) if self._respond else None
            if result is not None:
                self._waiter.resolve(result)


def ready_for(event: Event) -> ClipReady:
    assert isinstance(event, ClipRequested)
    return ClipReady(
        request_id=event.request_id,
        tenant_id=event.tenant_id,
        correlation_id=event.correlation_id,
        producer=Producer.CLIPPER,
        episode_id=event.episode_id,
        s3_key="audio_clips/ep-1/x.mp3",
        clip_url="http://s3.test/cut",
        cache_hit=False,
        generation_time_ms=77,
        size_bytes=99,
        start_ms=event.start_ms,
        end_ms=event.start_ms + event.duration_ms,
        format=event.format,
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )


def failed_for(event: Event) -> ClipFailed:
    assert isinstance(event, ClipRequested)
    return ClipFailed(
        request_id=event.request_id,
        tenant_id=event.tenant_id,
        correlation_id=event.correlation_id,
        producer=Producer.CLIPPER,
        episode_id=event.episode_id,
        error=ErrorInfo(code="source_missing", message="gone", retryable=False, attempts=1),
    )


class ClipWorld:
    """Clip ports over fakes holding ``EPISODE``; ``respond``/``gate`` go to the emitter."""

    def __init__(
        self,
        wait_s: float = 1.0,
        respond: Responder | None = None,
        gate: asyncio.Event | None = None,
    ) -> None:
        self.episodes = MemoryEpisodes(EPISODE)
        self.clips, self.media, self.jobs = MemoryClips(), MemoryMedia(), MemoryJobs()
        self.waiter, self.background = ResultWaiter(), Background()
        self.emitter = AnsweringEmitter(self.waiter, respond, gate)
        self.requests = RequestPorts(
            jobs=self.jobs, emitter=self.emitter, waiter=self.waiter, background=self.background
        )
        self.ports = ClipPorts(
            episodes=self.episodes,
            clips=self.clips,
            media=self.media,
            requests=self.requests,
            limits=ClipLimits(max_duration_ms=600_000, url_expiry_s=3600, wait_timeout_s=wait_s),
        )

    def cache(self, start_ms: int, end_ms: int, fmt: str = "mp3") -> ClipPlan:
        """A clip of ``EPISODE`` already cut: recorded and in the bucket (5 bytes)."""
        key = clip_key(EPISODE.tenant_id, "ep-1", start_ms, end_ms, fmt)
        plan = ClipPlan(EPISODE.tenant_id, "ep-1", start_ms, end_ms, fmt, False, key)
        self.clips.docs[plan.key] = {"s3_key": plan.key, "file_size_bytes": 5}
        self.media.put(key, b"x" * 5)
        return plan
