"""The clip stage: ``clip.requested`` in, ``clip.ready`` out (failures raise and become
``clip.failed`` in the stage runner). Pure logic on typed events and ports."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from schemas import ErrorInfo, Event
from schemas.clip import ClipFailed, ClipReady, ClipRequested
from schemas.codes import Code
from schemas.names import UNCOUNTED_PRODUCERS, Producer
from services.common.clip_rules import ClipPlan, ClipRejected, resolve_clip
from services.common.context import StageContext
from services.common.episodes import Episode
from services.common.media_types import CONTENT_TYPES
from services.common.ports import ClipRepo, Clock, EpisodeRepo, MediaPort


class CutResult(Protocol):
    @property
    def path(self) -> Path: ...

    @property
    def bytes_read(self) -> int | None: ...


class Cutter(Protocol):
    def cut(self, episode: Episode, plan: ClipPlan) -> AbstractAsyncContextManager[CutResult]: ...


@dataclass(frozen=True)
class ClipConfig:
    max_duration_ms: int
    url_expiry_s: int
    uncounted_producers: frozenset[str] = UNCOUNTED_PRODUCERS


@dataclass(frozen=True)
class Produced:
    size_bytes: int
    cache_hit: bool


class ClipHandler:
    def __init__(
        self,
        *,
        episodes: EpisodeRepo,
        clips: ClipRepo,
        media: MediaPort,
        cutter: Cutter,
        config: ClipConfig,
        clock: Clock = time.monotonic,
    ) -> None:
        self._episodes = episodes
        self._clips = clips
        self._media = media
        self._cutter = cutter
        self._config = config
        self._clock = clock
        # One cut per clip key in this process; the unique index covers other processes.
        self._inflight: dict[str, asyncio.Future[Produced]] = {}

    async def __call__(self, event: Event, ctx: StageContext) -> Sequence[Event]:
        if not isinstance(event, ClipRequested):
            raise TypeError(f"clipper cannot handle {event.event_type}")
        started = self._clock()
        # Looked up under the request's tenant: another tenant's episode is not there.
        episode, plan = await resolve_clip(
            self._episodes,
            event.tenant_id,
            event.episode_id,
            event.start_ms,
            event.duration_ms,
            event.format,
            event.accurate,
            self._config.max_duration_ms,
        )
        produced = await self._single_flight(episode, plan)
        if event.producer not in self._config.uncounted_producers:
            await self._clips.log_request(plan, event.tenant_id, produced.cache_hit)
        url = await self._media.presign_get(plan.key, self._config.url_expiry_s)
        return [
            ClipReady(
                request_id=event.request_id,
                tenant_id=event.tenant_id,
                correlation_id=event.correlation_id,
                producer=Producer.CLIPPER,
                episode_id=plan.episode_id,
                s3_key=plan.key,
                clip_url=url,
                cache_hit=produced.cache_hit,
                generation_time_ms=round((self._clock() - started) * 1000),
                size_bytes=produced.size_bytes,
                start_ms=plan.start_ms,
                end_ms=plan.end_ms,
                format=plan.format,  # type: ignore[arg-type]
                expires_at=datetime.now(UTC) + timedelta(seconds=self._config.url_expiry_s),
            )
        ]

    async def _single_flight(self, episode: Episode, plan: ClipPlan) -> Produced:
        running = self._inflight.get(plan.key)
        if running is not None:
            return await asyncio.shield(running)
        fut: asyncio.Future[Produced] = asyncio.get_running_loop().create_future()
        self._inflight[plan.key] = fut
        try:
            result = await self._produce(episode, plan)
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: followers re-raise it; nobody else must warn
            raise
        else:
            fut.set_result(result)
            return result
        finally:
            del self._inflight[plan.key]

    async def _produce(self, episode: Episode, plan: ClipPlan) -> Produced:
        cached = await self._media.head(plan.key)
        if cached is not None:
            doc = await self._clips.find(plan)
            if doc is None:
                # Object without metadata: a crash between upload and insert. Heal it.
                await self._clips.insert(plan, cached.size, 0)
            return Produced(cached.size, cache_hit=True)
        source = await self._media.head(episode.s3_key)
        if source is None:
            raise ClipRejected(
                Code.SOURCE_MISSING, f"the source audio of {episode.episode_id!r} is missing"
            )
        t0 = self._clock()
        async with self._cutter.cut(episode, plan) as cut:
            size = await self._media.upload_file(plan.key, cut.path, CONTENT_TYPES[plan.format])
        await self._clips.insert(plan, size, round((self._clock() - t0) * 1000))
        return Produced(size, cache_hit=False)


def clip_failed(event: Event, error: ErrorInfo) -> Event:
    """The failure answer for any clip request the stage could not serve."""
    assert isinstance(event, ClipRequested)
    return ClipFailed(
        request_id=event.request_id,
        tenant_id=event.tenant_id,
        correlation_id=event.correlation_id,
        producer=Producer.CLIPPER,
        episode_id=event.episode_id,
        error=error,
    )
