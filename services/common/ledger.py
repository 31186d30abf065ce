"""Processed-events ledger: one document per (stage, event_id), so a redelivered event
has no second effect."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.common.mongo import Doc

COLLECTION = "processed_events"


class MongoLedger:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._col = db[COLLECTION]

    async def ensure_indexes(self) -> None:
        # _id is the (stage, event_id) pair; this one serves pruning and inspection by age.
        await self._col.create_index("processed_at")

    async def seen(self, stage: str, event_id: str) -> bool:
        return await self._col.find_one({"_id": f"{stage}:{event_id}"}, {"_id": 1}) is not None

    async def record(self, stage: str, event_id: str, emitted: Sequence[str]) -> None:
        doc = {
            "_id": f"{stage}:{event_id}",
            "stage": stage,
            "event_id": event_id,
            "emitted": list(emitted),
            "processed_at": datetime.now(UTC),
        }
        try:
            await self._col.insert_one(doc)
        except DuplicateKeyError:
            # Two consumers raced on one redelivered event; the first record stands.
            pass
