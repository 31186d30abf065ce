"""Episode records kept in the clipper's memory for a while.

An episode is written once and never changed (a second registration of an id is
refused), so a clip of a recently clipped episode need not read it from MongoDB again.
Entries expire after ``max_age_s`` all the same, so nothing stays stale for long should
episodes ever be removed. Unknown episodes are not remembered: one registered a moment
later is found at once.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from services.common.episodes import Episode, SeekIndex
from services.common.ports import EpisodeRepo


class CachedEpisodes:
    """An :class:`EpisodeRepo` in front of another, with a bounded, expiring LRU of
    episodes by (tenant, episode id)."""

    def __init__(
        self,
        repo: EpisodeRepo,
        *,
        max_entries: int = 4096,
        max_age_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._repo = repo
        self._max = max_entries
        self._max_age_s = max_age_s
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], tuple[float, Episode]] = OrderedDict()

    async def get(self, tenant_id: str, episode_id: str) -> Episode | None:
        key = (tenant_id, episode_id)
        entry = self._entries.get(key)
        now = self._clock()
        if entry is not None and now - entry[0] < self._max_age_s:
            self._entries.move_to_end(key)
            return entry[1]
        episode = await self._repo.get(tenant_id, episode_id)
        if episode is None:
            self._entries.pop(key, None)
            return None
        self._entries[key] = (now, episode)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return episode

    async def seek_index(self, tenant_id: str, episode_id: str) -> SeekIndex | None:
        return await self._repo.seek_index(tenant_id, episode_id)
