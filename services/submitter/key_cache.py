"""Key records cached per process, so authenticating a request needs no round trip.

What is cached is the stored record of a key id, exactly as the store returned it, never
anything derived from a presented key: every request still hashes the key it presents
and compares that with the record's hash (``authenticate_record``), so a wrong secret for
a cached key id is refused like any other, and a record is only ever the store's.

A revocation made through this process (:meth:`CachedKeys.revoke`) holds at once; one
made elsewhere (the CLI, another API process) is honoured by this process at most
``ttl_s`` (``KEY_CACHE_TTL_S``) after it was written. Unknown key ids are not cached.
"""

from __future__ import annotations

import time
from typing import Protocol

from services.submitter.keys import KeyRecord
from services.submitter.ttl_cache import Clock, TTLCache


class KeyStorePort(Protocol):
    async def get(self, key_id: str) -> KeyRecord | None: ...

    async def add(self, record: KeyRecord) -> None: ...

    async def list(self, tenant_id: str | None = None) -> list[KeyRecord]: ...

    async def revoke(self, key_id: str) -> bool: ...


class CachedKeys:
    """A key store whose ``get`` is cached; everything else goes straight through."""

    def __init__(
        self, store: KeyStorePort, *, ttl_s: float, max_entries: int, clock: Clock = time.monotonic
    ) -> None:
        self.store = store
        self.cache: TTLCache[str, KeyRecord] = TTLCache(
            "api_keys", ttl_s=ttl_s, max_entries=max_entries, clock=clock
        )
        self.in_memory = KeysInMemory(self)

    async def get(self, key_id: str) -> KeyRecord | None:
        return await self.cache.get(key_id, lambda: self.store.get(key_id))

    def peek(self, key_id: str) -> KeyRecord | None:
        return self.cache.peek(key_id, lambda: self.store.get(key_id))

    async def add(self, record: KeyRecord) -> None:
        await self.store.add(record)

    async def list(self, tenant_id: str | None = None) -> list[KeyRecord]:
        return await self.store.list(tenant_id)

    async def revoke(self, key_id: str) -> bool:
        self.cache.invalidate(key_id)
        try:
            return await self.store.revoke(key_id)
        finally:
            # Again once written: a load that raced the write may have kept the live record.
            self.cache.invalidate(key_id)


class KeysInMemory:
    """The same keys answered from memory only, never waiting on the store: a key id not
    cached (or past its TTL) reads as unknown. For the cached-clip fast path, which
    leaves such a request to the route (and its ``CachedKeys.get``)."""

    def __init__(self, keys: CachedKeys) -> None:
        self._keys = keys

    async def get(self, key_id: str) -> KeyRecord | None:
        return self._keys.peek(key_id)

    async def add(self, record: KeyRecord) -> None:
        await self._keys.add(record)
