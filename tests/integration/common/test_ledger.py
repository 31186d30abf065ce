"""The processed-events ledger on the real MongoDB: reads and records made at once go out
together, a record made twice keeps the first, old entries go, and a large ledger is read
the cheaper way."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase

from services.common import retention
from services.common.ledger import COLLECTION, RETENTION, MongoLedger
from services.common.mongo import Doc, scans_unless_by_id


async def test_reads_and_records_at_once_answer_each_event_and_first_record_wins(
    db: AsyncDatabase[Doc],
) -> None:
    ledger = MongoLedger(db)
    await ledger.record("clip", "e0", ["out-first"])
    ids = [f"e{i}" for i in range(30)]
    assert await asyncio.gather(*(ledger.seen("clip", i) for i in ids)) == [True] + [False] * 29
    # The same event recorded twice in one batch, and again after: the first record stands.
    await asyncio.gather(*(ledger.record("clip", i, [f"out-{i}"]) for i in [*ids, "e5"]))
    await ledger.record("clip", "e5", ["out-late"])
    assert all(await asyncio.gather(*(ledger.seen("clip", i) for i in ids)))
    assert not await ledger.seen("merge", "e1")  # per stage
    docs = {d["_id"]: d["emitted"] async for d in db[COLLECTION].find({})}
    assert len(docs) == 30
    assert docs["clip:e0"] == ["out-first"] and docs["clip:e5"] == ["out-e5"]


async def test_entries_older_than_the_retention_go_and_recent_ones_stay(
    db: AsyncDatabase[Doc],
) -> None:
    ledger = MongoLedger(db)
    await ledger.record("clip", "fresh", [])
    old = datetime.now(UTC) - RETENTION - timedelta(hours=1)
    await db[COLLECTION].insert_one({"_id": "clip:old", "stage": "clip", "event_id": "old",
                                     "emitted": [], "processed_at": old})  # fmt: skip
    async with ledger.retained() as expires:
        if not expires:
            # This server has no TTL index (FerretDB 1.x): the ledger prunes, as every
            # stage process does an hour apart; here at once.
            assert await retention.prune(db[COLLECTION], "processed_at", RETENTION) == 1
            assert not await ledger.seen("clip", "old")
    info = await db[COLLECTION].index_information()
    (ttl,) = [i for i in info.values() if i["key"] == [("processed_at", 1)]]
    assert ttl.get("expireAfterSeconds") == (int(RETENTION.total_seconds()) if expires else None)
    assert await ledger.seen("clip", "fresh")


async def test_a_large_ledger_is_read_by_id_where_the_server_scans_for_a_batch(
    db: AsyncDatabase[Doc],
) -> None:
    now = datetime.now(UTC)
    await db[COLLECTION].insert_many([
        {"_id": f"clip:past-{n}", "stage": "clip", "event_id": f"past-{n}", "emitted": [],
         "processed_at": now}
        for n in range(5000)
    ])  # fmt: skip
    ledger = MongoLedger(db)
    for batch in range(6):
        ids = [f"past-{batch * 10 + n}" for n in range(5)] + [f"new-{batch}-{n}" for n in range(5)]
        seen = await asyncio.gather(*(ledger.seen("clip", i) for i in ids))
        assert seen == [True] * 5 + [False] * 5  # the same answers whichever way
    assert ledger.plan.per_batch is not None and ledger.plan.per_key is not None
    # FerretDB 1.x scans 5,000 documents for the $in; MongoDB answers it from the index.
    assert ledger.plan.one_by_one(10) == await scans_unless_by_id(db)
