"""A bounded, per-process cache of values loaded on demand and trusted for a fixed time.

What it guarantees, whatever the load on the process:

- **Staleness**: a value is served at most ``ttl_s`` after the load that produced it
  *started*, so a change made in the store before a load began is seen by every request
  from ``ttl_s`` after the change on. (A change made elsewhere while an entry is cached is
  invisible until then: that is the bound to state.)
- **Size**: at most ``max_entries`` values; the least recently used goes first.
- **One load per key at a time**: concurrent requests for a missing or expired key wait
  for the same load, so an expiry under load costs one round trip, not one per request.
- **Refresh ahead**: a value older than ``refresh_after_s`` is still served, and one
  background load replaces it, so a key in steady use is never waited on after its first
  load. A failed refresh leaves the old value until its hard expiry.
- **Absence is not cached**: a load that finds nothing is asked again next time, so a
  record created elsewhere is seen at once.

``ttl_s <= 0`` disables caching: every ``get`` loads.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
Clock = Callable[[], float]
Loader = Callable[[], Awaitable[V | None]]


@dataclass(frozen=True)
class _Entry(Generic[V]):
    value: V
    loaded_at: float  # when the load that read it started


class TTLCache(Generic[K, V]):
    def __init__(
        self,
        name: str,
        *,
        ttl_s: float,
        max_entries: int,
        refresh_after_s: float | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self.name = name
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        # Half the TTL by default: a key asked for at least that often never expires.
        self.refresh_after_s = ttl_s / 2 if refresh_after_s is None else refresh_after_s
        self._clock = clock
        self._entries: OrderedDict[K, _Entry[V]] = OrderedDict()
        self._loading: dict[K, asyncio.Task[V | None]] = {}
        self._refreshes: set[asyncio.Task[V | None]] = set()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: K, load: Loader[V]) -> V | None:
        """The cached value of ``key``, or what ``load`` returns (cached unless None)."""
        if self.ttl_s <= 0:
            return await load()
        value = self.peek(key, load)
        if value is not None:
            return value
        self._entries.pop(key, None)  # past its TTL, if there at all
        task = self._loading.get(key) or self._start(key, load)
        # Shielded: a caller that gives up (its request cancelled) must not cancel the
        # load the others wait for.
        return await asyncio.shield(task)

    def peek(self, key: K, load: Loader[V]) -> V | None:
        """The cached value of ``key`` if it is within its TTL, else None, never waiting
        for a load (one past ``refresh_after_s`` is refreshed in the background, as by
        :meth:`get`)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        age = self._clock() - entry.loaded_at
        if age >= self.ttl_s:
            return None
        self._entries.move_to_end(key)
        if age >= self.refresh_after_s and key not in self._loading:
            self._refresh(key, load)
        return entry.value

    def invalidate(self, key: K) -> None:
        """Forget ``key``, including a load under way (its result will not be kept)."""
        self._entries.pop(key, None)
        self._loading.pop(key, None)

    async def aclose(self) -> None:
        """Cancel the background refreshes (on the way out)."""
        tasks = list(self._refreshes)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task

    def _start(
        self, key: K, load: Loader[V], context: contextvars.Context | None = None
    ) -> asyncio.Task[V | None]:
        started = self._clock()

        async def run() -> V | None:
            try:
                value = await load()
            finally:
                mine = self._loading.get(key) is task
                if mine:
                    del self._loading[key]
            if mine:
                if value is None:
                    self._entries.pop(key, None)
                else:
                    self._store(key, value, started)
            return value

        task = asyncio.get_running_loop().create_task(
            run(), name=f"cache-load-{self.name}", context=context
        )
        self._loading[key] = task
        task.add_done_callback(_retrieve)
        return task

    def _refresh(self, key: K, load: Loader[V]) -> None:
        # A context of its own: the request that happened to start it is not waiting for
        # it, and its log lines and traces should not claim it.
        task = self._start(key, load, contextvars.Context())
        self._refreshes.add(task)
        task.add_done_callback(self._refreshed)

    def _refreshed(self, task: asyncio.Task[V | None]) -> None:
        self._refreshes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The old value stays until its hard expiry; the next request tries again.
            log.warning("%s cache: refresh failed: %r", self.name, task.exception())

    def _store(self, key: K, value: V, loaded_at: float) -> None:
        self._entries[key] = _Entry(value, loaded_at)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


def _retrieve(task: asyncio.Task[object]) -> None:
    # Whoever awaited the load got its error; when all of them gave up, nobody did, and
    # asyncio would report it as never retrieved.
    if not task.cancelled():
        task.exception()
