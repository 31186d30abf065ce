"""The clip stage: ``clip.requested`` in, ``clip.ready`` out (failures raise and become
``clip.failed`` in the stage runner). Pure logic on typed events and ports."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol, runtime_checkable

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


@runtime_checkable
class ReadsAhead(Protocol):
    """A cutter that can start reading what a cut of ``plan`` needs (e.g. its seek-index
    records) while the handler checks the cache; a cache hit wastes only that read."""

    async def prefetch(self, episode: Episode, plan: ClipPlan) -> None: ...


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
        log: _Log | None = None
        if event.producer not in self._config.uncounted_producers:
            log = functools.partial(self._clips.log_request, plan, event.tenant_id)
        produced = await self._single_flight(episode, plan, log)
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

    async def _single_flight(self, episode: Episode, plan: ClipPlan, log: _Log | None) -> Produced:
        """Each request is logged once its clip is there, with whether it was cached."""
        running = self._inflight.get(plan.key)
        if running is not None:
            produced = await asyncio.shield(running)
            if log is not None:
                await log(produced.cache_hit)
            return produced
        fut: asyncio.Future[Produced] = asyncio.get_running_loop().create_future()
        self._inflight[plan.key] = fut
        try:
            result = await self._produce(episode, plan, log)
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: followers re-raise it; nobody else must warn
            raise
        else:
            fut.set_result(result)
            return result
        finally:
            del self._inflight[plan.key]

    async def _produce(self, episode: Episode, plan: ClipPlan, log: _Log | None) -> Produced:
        # The cache check and the cut's first reads go together; the reads are sent
        # first, as they lead to the next (the window), where the check leads nowhere.
        _, cached = await asyncio.gather(
            self._read_ahead(episode, plan), self._media.head(plan.key)
        )
        if cached is not None:
            await asyncio.gather(self._heal(plan, cached.size), _logged(log, True))
            return Produced(cached.size, cache_hit=True)
        t0 = self._clock()
        logged: asyncio.Task[None] | None = None
        try:
            async with self._cutter.cut(episode, plan) as cut:
                # The clip exists: the request is logged while it uploads.
                logged = asyncio.create_task(_logged(log, False))
                size = await self._media.upload_file(plan.key, cut.path, CONTENT_TYPES[plan.format])
        except BaseException as exc:
            if logged is not None:
                with contextlib.suppress(Exception):
                    await logged  # a failed upload was still asked for: its log may stand
            # Whatever the cut made of it, a source that is gone is the answer. Checked
            # only when a cut fails: a cut reads the source, so it fails without one.
            if isinstance(exc, Exception) and await self._media.head(episode.s3_key) is None:
                raise ClipRejected(
                    Code.SOURCE_MISSING, f"the source audio of {episode.episode_id!r} is missing"
                ) from exc
            raise
        took_ms = round((self._clock() - t0) * 1000)
        assert logged is not None  # set once the cut succeeded
        await asyncio.gather(self._clips.insert(plan, size, took_ms), logged)
        return Produced(size, cache_hit=False)

    async def _read_ahead(self, episode: Episode, plan: ClipPlan) -> None:
        if isinstance(self._cutter, ReadsAhead):
            await self._cutter.prefetch(episode, plan)

    async def _heal(self, plan: ClipPlan, size: int) -> None:
        if await self._clips.find(plan) is None:
            # Object without metadata: a crash between upload and insert. Heal it.
            await self._clips.insert(plan, size, 0)


_Log = Callable[[bool], Awaitable[None]]


async def _logged(log: _Log | None, cache_hit: bool) -> None:
    if log is not None:
        await log(cache_hit)


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
