"""What a cache hit is answered from, cached per API process.

- :class:`CachedEpisodes`: episode metadata by (tenant, id). Episodes are written once,
  so this only bounds how long an episode removed out of band is still clipped.
- :class:`StoredClips`: a clip's record *and* its object, checked together: a clip is
  served from here only while a read of its record, and a HEAD of its object, is at most
  ``ttl_s`` old. A clip deleted (record or object) is therefore served at most
  ``CLIP_CACHE_TTL_S`` after the deletion, one round trip to each of MongoDB and S3 per
  clip and TTL (and none on the request path while the clip is asked for steadily: the
  cache refreshes ahead).

Neither caches absence: a new episode or a clip just cut is seen at once.

Each also has an ``in_memory`` view answering from memory only, never waiting on a store,
for the API's fast path (``http/cached_clips.py``): what it does not hold, or holds past
its TTL, is left to the route, whose reads fill the caches again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol

from services.common.clip_rules import ClipPlan
from services.common.episodes import Episode, SeekIndex
from services.common.ports import ClipRepo, EpisodeRepo, MediaPort
from services.submitter.ttl_cache import Clock, TTLCache

log = logging.getLogger(__name__)


class NotInMemory(LookupError):
    """A memory-only view was asked for what it does not hold."""


class CachedEpisodes:
    """An ``EpisodeRepo`` whose ``get`` is cached."""

    def __init__(
        self, store: EpisodeRepo, *, ttl_s: float, max_entries: int, clock: Clock = time.monotonic
    ) -> None:
        self._store = store
        self.cache: TTLCache[tuple[str, str], Episode] = TTLCache(
            "episodes", ttl_s=ttl_s, max_entries=max_entries, clock=clock
        )
        self.in_memory = EpisodesInMemory(self)

    async def get(self, tenant_id: str, episode_id: str) -> Episode | None:
        return await self.cache.get(
            (tenant_id, episode_id), lambda: self._store.get(tenant_id, episode_id)
        )

    def peek(self, tenant_id: str, episode_id: str) -> Episode | None:
        return self.cache.peek(
            (tenant_id, episode_id), lambda: self._store.get(tenant_id, episode_id)
        )

    async def seek_index(self, tenant_id: str, episode_id: str) -> SeekIndex | None:
        return await self._store.seek_index(tenant_id, episode_id)


class EpisodesInMemory:
    """``CachedEpisodes`` from memory only: an episode not held raises ``NotInMemory``
    (it may well exist: only the store can tell)."""

    def __init__(self, episodes: CachedEpisodes) -> None:
        self._episodes = episodes

    async def get(self, tenant_id: str, episode_id: str) -> Episode | None:
        episode = self._episodes.peek(tenant_id, episode_id)
        if episode is None:
            raise NotInMemory(episode_id)
        return episode

    async def seek_index(self, tenant_id: str, episode_id: str) -> SeekIndex | None:
        return await self._episodes.seek_index(tenant_id, episode_id)


@dataclass(frozen=True)
class StoredClip:
    s3_key: str
    size_bytes: int


class StoredClipLookup(Protocol):
    async def find(self, plan: ClipPlan) -> StoredClip | None: ...


async def load_stored(clips: ClipRepo, media: MediaPort, plan: ClipPlan) -> StoredClip | None:
    """The clip of ``plan`` if it is recorded and its object is in the bucket."""
    doc = await clips.find(plan)
    if doc is None:
        return None
    stored = doc.get("s3_key")
    key = stored if isinstance(stored, str) else plan.key
    info = await media.head(key)
    if info is None:
        # Metadata outlived its object: cut it again rather than hand out a dead link.
        log.warning("clip %s is recorded but missing from the bucket", key)
        return None
    return StoredClip(key, info.size)


class StoredClips:
    def __init__(
        self,
        clips: ClipRepo,
        media: MediaPort,
        *,
        ttl_s: float,
        max_entries: int,
        clock: Clock = time.monotonic,
    ) -> None:
        self._clips = clips
        self._media = media
        self.cache: TTLCache[str, StoredClip] = TTLCache(
            "clips", ttl_s=ttl_s, max_entries=max_entries, clock=clock
        )
        self.in_memory = StoredClipsInMemory(self)

    async def find(self, plan: ClipPlan) -> StoredClip | None:
        # The key names tenant, episode, range, format and cut mode: one per plan.
        return await self.cache.get(plan.key, lambda: load_stored(self._clips, self._media, plan))

    def peek(self, plan: ClipPlan) -> StoredClip | None:
        return self.cache.peek(plan.key, lambda: load_stored(self._clips, self._media, plan))


class StoredClipsInMemory:
    """``StoredClips`` from memory only: a clip not held is not a hit *here*."""

    def __init__(self, stored: StoredClips) -> None:
        self._stored = stored

    async def find(self, plan: ClipPlan) -> StoredClip | None:
        return self._stored.peek(plan)
