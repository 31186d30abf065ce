"""The clip stage: ``clip.requested`` in, ``clip.ready`` out (failures raise and become
``clip.failed`` in the stage runner). Pure logic on typed events and ports.

The answer goes out as soon as the clip is in storage: its record and the request's log
entry are written after it (:meth:`ClipHandler.settle` waits for them). The record only
lets later requests skip the storage check; one lost with the process is rewritten by
the next request for the clip, which finds the object without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
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

logger = logging.getLogger(__name__)

# Records and log entries being written after their answers went out, at most: past it,
# a request waits for its own, so a slow database holds the stage back, not memory.
MAX_AFTER_REPLY = 256


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
        self._after: set[asyncio.Task[None]] = set()

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
            await self._after_reply(self._heal(plan, cached.size), _logged(log, True))
            return Produced(cached.size, cache_hit=True)
        t0 = self._clock()
        cut_made = False
        try:
            async with self._cutter.cut(episode, plan) as cut:
                cut_made = True
                size = await self._media.upload_file(plan.key, cut.path, CONTENT_TYPES[plan.format])
        except BaseException as exc:
            if cut_made:
                with contextlib.suppress(Exception):
                    await _logged(log, False)  # a failed upload was still asked for
            # Whatever the cut made of it, a source that is gone is the answer. Checked
            # only when a cut fails: a cut reads the source, so it fails without one.
            if isinstance(exc, Exception) and await self._media.head(episode.s3_key) is None:
                raise ClipRejected(
                    Code.SOURCE_MISSING, f"the source audio of {episode.episode_id!r} is missing"
                ) from exc
            raise
        took_ms = round((self._clock() - t0) * 1000)
        await self._after_reply(self._clips.insert(plan, size, took_ms), _logged(log, False))
        return Produced(size, cache_hit=False)

    async def _after_reply(self, *writes: Awaitable[object]) -> None:
        """Write these once the answer is out; now, when too many are still going."""
        if len(self._after) >= MAX_AFTER_REPLY:
            await _written(writes)
            return
        task = asyncio.create_task(_written(writes))
        self._after.add(task)
        task.add_done_callback(self._after.discard)

    async def settle(self) -> None:
        """Wait for the records and log entries still being written (on the way out)."""
        while self._after:
            await asyncio.gather(*self._after, return_exceptions=True)

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


async def _written(writes: Sequence[Awaitable[object]]) -> None:
    for result in await asyncio.gather(*writes, return_exceptions=True):
        if isinstance(result, Exception):
            # The clip is in storage and answered for: a later request rewrites a record
            # this lost. Only the kind of error: its text may name hosts or keys.
            logger.warning(
                "a clip's record or request log was not written: %s", type(result).__name__
            )


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
