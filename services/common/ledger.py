"""Processed-events ledger: one document per (stage, event_id), so a redelivered event
has no second effect.

Reads and records made while an earlier one is on its way go to MongoDB together (one
``$in`` find, one unordered insert): a stage with many events in hand pays one round trip
per step for all of them (see coalesce.py). Unless one find by ``_id`` per event has cost
less lately: FerretDB 1.x answers only a filter on ``_id`` alone from the index and scans
the collection for an ``$in``, so there the batch grows with the ledger and the single
look-ups do not (see :class:`LookupPlan`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from schemas import TOPICS
from schemas.topics import DEFAULT_RETENTION_MS
from services.common import retention
from services.common.coalesce import Coalescer
from services.common.mongo import Doc

COLLECTION = "processed_events"
DUPLICATE_KEY = 11000
# A redelivery, or a replay from the earliest offset, comes no later than its topic keeps
# the event: the entry outlives the longest-kept topic by a day, then goes.
RETENTION = timedelta(
    milliseconds=max(t.retention_ms or DEFAULT_RETENTION_MS for t in TOPICS)
) + timedelta(days=1)


class LookupPlan:
    """Which way of looking a batch of keys up is cheaper, by what each has cost lately:
    one ``$in`` find for the batch, or one find by ``_id`` per key, all at once. Each way
    is tried once, and the one not taken again every ``probe_every`` batches, so the plan
    follows the collection as it grows or shrinks."""

    def __init__(self, *, probe_every: int = 50, weight: float = 0.3) -> None:
        self.per_batch: float | None = None  # seconds for one $in find
        self.per_key: float | None = None  # seconds per key, found one by one
        self._probe_every = probe_every
        self._weight = weight
        self._batches = 0

    def one_by_one(self, keys: int) -> bool:
        if keys == 1:
            return True
        if self.per_batch is None:
            return False
        if self.per_key is None:
            return True
        self._batches += 1
        cheaper = keys * self.per_key < self.per_batch
        return cheaper != (self._batches % self._probe_every == 0)

    def took(self, keys: int, seconds: float, *, one_by_one: bool) -> None:
        if one_by_one:
            self.per_key = self._mean(self.per_key, seconds / keys)
        else:
            self.per_batch = self._mean(self.per_batch, seconds)

    def _mean(self, mean: float | None, sample: float) -> float:
        return sample if mean is None else mean + self._weight * (sample - mean)


class MongoLedger:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._col = db[COLLECTION]
        self.plan = LookupPlan()
        self._seen: Coalescer[str, bool] = Coalescer(self._seen_many)
        self._record: Coalescer[Doc, None] = Coalescer(self._record_many)

    def retained(self) -> AbstractAsyncContextManager[bool]:
        """While open, entries older than :data:`RETENTION` go (by a TTL index on
        ``processed_at``, or pruned); _id is the (stage, event_id) pair."""
        return retention.kept_for(self._col, "processed_at", RETENTION)

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
        one_by_one = self.plan.one_by_one(len(keys))
        started = time.perf_counter()
        if one_by_one:
            found = await asyncio.gather(
                *(self._col.find_one({"_id": k}, {"_id": 1}) for k in keys)
            )
            seen = [doc is not None for doc in found]
        else:
            ids = {d["_id"] async for d in self._col.find({"_id": {"$in": keys}}, {"_id": 1})}
            seen = [key in ids for key in keys]
        self.plan.took(len(keys), time.perf_counter() - started, one_by_one=one_by_one)
        return seen

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
