"""Key records cached per process: no read per request, revocation within the TTL, and
never a key whose hash does not match."""

from __future__ import annotations

from services.submitter.key_cache import CachedKeys
from services.submitter.keys import KeyRecord, authenticate, authenticate_record, create_key
from tests.support.fakes import FakeClock, MemoryKeys

TTL_S = 30.0


class CountingKeys(MemoryKeys):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def get(self, key_id: str) -> KeyRecord | None:
        self.reads += 1
        return await super().get(key_id)


def world() -> tuple[CountingKeys, CachedKeys, FakeClock]:
    store, clock = CountingKeys(), FakeClock()
    return store, CachedKeys(store, ttl_s=TTL_S, max_entries=100, clock=clock), clock


async def test_a_live_key_is_read_once_per_ttl() -> None:
    store, keys, clock = world()
    _, key = await create_key(keys, "acme")
    for _ in range(5):
        assert await authenticate(keys, key) == "acme"
    assert store.reads == 1
    clock.advance(TTL_S)
    assert await authenticate(keys, key) == "acme"
    assert store.reads == 2


async def test_a_wrong_key_is_never_accepted_from_the_cache() -> None:
    store, keys, _ = world()
    record, key = await create_key(keys, "acme")
    assert await authenticate(keys, key) == "acme"  # the record is cached now
    key_id, secret = record.key_id, key.split("_", 2)[2]
    wrong_secret = f"td_{key_id}_{'A' * 43}"
    flipped = f"td_{key_id}_{secret[:-1]}{'B' if secret[-1] != 'B' else 'C'}"
    other_id = f"td_{'0' * 12}_{secret}"
    for bad in (wrong_secret, flipped, other_id, key[:-1], key + "x", f"td_{key_id}_", ""):
        assert await authenticate_record(keys, bad) is None, bad
    assert await authenticate(keys, key) == "acme"
    assert store.reads == 2  # the unknown id was asked for; the cached one was not


async def test_a_revocation_elsewhere_holds_within_the_ttl() -> None:
    store, keys, clock = world()
    record, key = await create_key(keys, "acme")
    assert await authenticate(keys, key) == "acme"
    clock.advance(1)
    assert await store.revoke(record.key_id)  # the CLI, or another API process
    clock.advance(TTL_S - 1 - 0.001)
    assert await authenticate(keys, key) == "acme"  # the stated bound, not beyond it
    clock.advance(0.001)
    assert await authenticate(keys, key) is None
    clock.advance(TTL_S * 10)
    assert await authenticate(keys, key) is None


async def test_a_revocation_through_this_process_holds_at_once() -> None:
    _, keys, _ = world()
    record, key = await create_key(keys, "acme")
    assert await authenticate(keys, key) == "acme"
    assert await keys.revoke(record.key_id)
    assert await authenticate(keys, key) is None
    assert not await keys.revoke(record.key_id)


async def test_an_unknown_key_id_is_not_cached() -> None:
    store, keys, _ = world()
    record, key = await create_key(MemoryKeys(), "acme")  # not in this store yet
    assert await authenticate(keys, key) is None
    await store.add(record)  # created elsewhere a moment later
    assert await authenticate(keys, key) == "acme"
    assert await keys.list("acme") == [record]


async def test_in_memory_keys_never_read_the_store_and_still_check_the_hash() -> None:
    store, keys, clock = world()
    record, key = await create_key(keys, "acme")
    assert await authenticate(keys.in_memory, key) is None  # not cached yet: unknown here
    assert store.reads == 0
    assert await authenticate(keys, key) == "acme"
    assert await authenticate(keys.in_memory, key) == "acme"
    wrong = f"td_{record.key_id}_{'A' * 43}"
    assert await authenticate(keys.in_memory, wrong) is None
    clock.advance(TTL_S)
    assert await authenticate(keys.in_memory, key) is None  # past its TTL
    assert store.reads == 1
