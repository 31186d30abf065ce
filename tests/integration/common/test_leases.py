"""Event leases on the real MongoDB: one holder at a time; a holder's lease is free once
let go, once its time has passed, or at once when its holder is known to be gone (a
restarted WORKER_ID, a dead process of this host)."""

from __future__ import annotations

import asyncio
import os
import subprocess

from pymongo.asynchronous.database import AsyncDatabase

from services.common.leases import COLLECTION, MongoLeases
from services.common.mongo import Doc


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


async def test_one_holder_at_a_time_and_free_once_let_go_or_expired(
    db: AsyncDatabase[Doc],
) -> None:
    a = MongoLeases(db, worker_id="clipper-a", ttl_s=0.5, host="pod-a")
    b = MongoLeases(db, worker_id="clipper-b", ttl_s=0.5, host="pod-b")
    assert await a.claim("clip", "e1") and await a.claim("clip", "e1")  # re-entrant
    assert not await b.claim("clip", "e1")
    assert await a.renew("clip", "e1") and not await b.renew("clip", "e1")
    await b.release("clip", "e1")  # not b's to release
    assert not await b.claim("clip", "e1")
    await a.release("clip", "e1")
    assert await b.claim("clip", "e1")
    # b stops renewing (killed, cut off): free for a once its time has passed, not before.
    assert not await a.claim("clip", "e1")
    await asyncio.sleep(0.6)
    assert await a.claim("clip", "e1") and not await b.renew("clip", "e1")
    assert await db[COLLECTION].count_documents({}) == 1


async def test_a_holder_known_to_be_gone_lets_go_at_once(db: AsyncDatabase[Doc]) -> None:
    # The same WORKER_ID restarted (its earlier run is fenced off by Kafka).
    killed = MongoLeases(db, worker_id="merger-0", host="pod-x")
    assert await killed.claim("merge", "e2")
    assert not await MongoLeases(db, worker_id="merger-1", host="pod-y").claim("merge", "e2")
    restarted = MongoLeases(db, worker_id="merger-0", host="pod-z")
    assert await restarted.claim("merge", "e2") and not await killed.renew("merge", "e2")
    # No worker id: a process of this host that no longer runs, or this very pid (a
    # container restarted as pid 1 again) is gone; a live one of another host is not.
    gone = MongoLeases(db, worker_id=None, host="node", pid=dead_pid())
    assert await gone.claim("merge", "e3")
    assert await MongoLeases(db, worker_id=None, host="node").claim("merge", "e3")
    elsewhere = MongoLeases(db, worker_id=None, host="other-node", pid=os.getpid())
    assert not await elsewhere.claim("merge", "e3")
    alive = MongoLeases(db, worker_id=None, host="node", pid=1)
    assert await alive.claim("merge", "e4")
    assert not await MongoLeases(db, worker_id=None, host="node").claim("merge", "e4")


async def test_claims_and_releases_made_at_once_go_out_together_and_keep_the_rules(
    db: AsyncDatabase[Doc],
) -> None:
    a = MongoLeases(db, worker_id="clipper-a", host="pod-a")
    b = MongoLeases(db, worker_id="clipper-b", host="pod-b")
    gone = MongoLeases(db, worker_id="clipper-c", host="pod-c", ttl_s=0.01)
    assert await b.claim("clip", "held") and await gone.claim("clip", "expired")
    await asyncio.sleep(0.05)
    ids = [f"n{i}" for i in range(40)] + ["held", "expired", "n0"]
    # One batch of 43 claims: fresh leases, one someone else holds, one whose holder's time
    # has passed, and one asked twice.
    claims = await asyncio.gather(*(a.claim("clip", i) for i in ids))
    assert claims == [True] * 40 + [False, True, True]
    assert not await b.claim("clip", "n7")
    await asyncio.gather(*(a.release("clip", i) for i in [*ids, "held"]))
    # Released, except the one a never held.
    assert await db[COLLECTION].count_documents({}) == 1
    assert await b.renew("clip", "held")
