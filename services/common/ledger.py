"""Processed-events ledger: one document per (stage, event_id), so a redelivered event
has no second effect.

Reads and records made while an earlier one is on its way go to MongoDB together (one
``$in`` find, one unordered insert): a stage with many events in hand pays one round trip
per step for all of them (see coalesce.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from services.common.coalesce import Coalescer
from services.common.mongo import Doc

COLLECTION = "processed_events"
DUPLICATE_KEY = 11000


class MongoLedger:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._col = db[COLLECTION]
        self._seen: Coalescer[str, bool] = Coalescer(self._seen_many)
        self._record: Coalescer[Doc, None] = Coalescer(self._record_many)

    async def ensure_indexes(self) -> None:
        # _id is the (stage, event_id) pair; this one serves pruning and inspection by age.
        await self._col.create_index("processed_at")

    async def seen(self, stage: str, event_id: str) -> bool:
        return await self._seen(f"{stage}:{event_id}")

    async def record(self, stage: str, event_id: str, emitted: Sequence[str]) -> None:
        await self._record({
            "_id": f"{stage}:{event_id}",
            "stage": stage,
            "event_id": event_id,
            "emitted": list(emitted),
            "processed_at": datetime.now(UTC),
        })  # fmt: skip

    async def _seen_many(self, keys: list[str]) -> list[bool]:
        if len(keys) == 1:
            # A stage with one event in hand (the usual case when it keeps up): a filter on
            # _id alone, which every server answers from the index (FerretDB scans the
            # collection for an $in).
            return [await self._col.find_one({"_id": keys[0]}, {"_id": 1}) is not None]
        found = {d["_id"] async for d in self._col.find({"_id": {"$in": keys}}, {"_id": 1})}
        return [key in found for key in keys]

    async def _record_many(self, docs: list[Doc]) -> list[None]:
        try:
            await self._col.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            # Two consumers raced on one redelivered event; the first record stands.
            if not all_duplicates(exc):
                raise
        return [None] * len(docs)


def all_duplicates(exc: BulkWriteError) -> bool:
    """Whether every write of an unordered bulk write that failed failed on a key taken."""
    details = exc.details or {}
    errors = details.get("writeErrors") or []
    return (
        bool(errors)
        and not details.get("writeConcernErrors")
        and all(e.get("code") == DUPLICATE_KEY for e in errors)
    )


def duplicate_indexes(exc: BulkWriteError) -> set[int]:
    """The positions, in the batch, of the writes that failed on a key taken."""
    return {e["index"] for e in (exc.details or {}).get("writeErrors") or []
            if e.get("code") == DUPLICATE_KEY}  # fmt: skip
