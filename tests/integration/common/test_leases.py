"""Event leases on the real MongoDB: one holder at a time; a dead holder's lease is free
after its time, a restarted worker's (same WORKER_ID) at once."""

from __future__ import annotations

import asyncio

from services.common.leases import COLLECTION, MongoLeases
from services.common.mongo import connect, database
from services.common.settings import Settings


async def test_one_holder_at_a_time_and_free_once_let_go_or_expired(settings: Settings) -> None:
    mongo = connect(settings)
    try:
        db = database(mongo, settings)
        a = MongoLeases(db, worker_id="clipper-a", ttl_s=0.5)
        b = MongoLeases(db, worker_id="clipper-b", ttl_s=0.5)
        assert await a.claim("clip", "e1") and await a.claim("clip", "e1")  # re-entrant
        assert not await b.claim("clip", "e1")
        assert await a.renew("clip", "e1") and not await b.renew("clip", "e1")
        await b.release("clip", "e1")  # not b's to release
        assert not await b.claim("clip", "e1")
        await a.release("clip", "e1")
        assert await b.claim("clip", "e1")
        # b dies holding it: free for a once its time has passed, not before.
        assert not await a.claim("clip", "e1")
        await asyncio.sleep(0.6)
        assert await a.claim("clip", "e1") and not await b.renew("clip", "e1")
        assert await db[COLLECTION].count_documents({}) == 1
    finally:
        await mongo.close()


async def test_a_restarted_worker_takes_its_earlier_runs_leases_at_once(
    settings: Settings,
) -> None:
    mongo = connect(settings)
    try:
        db = database(mongo, settings)
        killed = MongoLeases(db, worker_id="merger-0")
        assert await killed.claim("merge", "e2")
        assert not await MongoLeases(db, worker_id="merger-1").claim("merge", "e2")
        restarted = MongoLeases(db, worker_id="merger-0")
        assert await restarted.claim("merge", "e2") and not await killed.renew("merge", "e2")
        # Without a worker id, nobody can tell a restart from another worker: the time rules.
        anonymous = MongoLeases(db, worker_id=None)
        assert await anonymous.claim("merge", "e3")
        assert not await MongoLeases(db, worker_id=None).claim("merge", "e3")
    finally:
        await mongo.close()
