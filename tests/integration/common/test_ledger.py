"""The processed-events ledger on the real MongoDB: reads and records made at once go out
together, and a record made twice keeps the first."""

from __future__ import annotations

import asyncio

from pymongo.asynchronous.database import AsyncDatabase

from services.common.ledger import COLLECTION, MongoLedger
from services.common.mongo import Doc


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
