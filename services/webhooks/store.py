"""Where deliveries and their attempts are kept: MongoDB collection
``webhook_deliveries`` (one document per outcome and callback, ``_id`` = the webhook id)
and the job document's ``webhooks`` list (the last ``HISTORY_CAP`` attempts).

A delivery is due when ``state`` is PENDING and ``next_at`` has passed. Claiming one moves
``next_at`` past the lease in one conditional write, so one worker at a time attempts it
and a worker that dies mid-attempt hands it back when the lease runs out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.common.mongo import Doc
from services.webhooks.plan import PENDING, STATE_AFTER, Attempt, Delivery

DELIVERIES = "webhook_deliveries"
JOBS = "jobs"
HISTORY_CAP = 50


async def push_capped(
    col: AsyncCollection[Doc], query: Doc, name: str, entry: Doc, cap: int,
    also: Doc | None = None,
) -> bool:  # fmt: skip
    """Append ``entry`` to the list ``name`` of the document ``query`` matches, keeping
    its last ``cap`` entries; False when nothing matched."""
    update: dict[str, Any] = {"$push": {name: {"$each": [entry], "$slice": -cap}}}
    if also:
        update["$set"] = also
    if not (await col.update_one(query, update)).matched_count:
        return False
    # Some servers (FerretDB 1.x) ignore $slice; dropping the oldest one at a time is
    # atomic everywhere, and where $slice worked this matches nothing.
    for _ in range(cap):
        trim = {"_id": query["_id"], f"{name}.{cap}": {"$exists": True}}
        if not (await col.update_one(trim, {"$pop": {name: -1}})).modified_count:
            break
    return True


class DeliveryStore:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._col = db[DELIVERIES]

    async def ensure_indexes(self) -> None:
        await self._col.create_index([("state", ASCENDING), ("next_at", ASCENDING)])
        await self._col.create_index([("job_id", ASCENDING)])

    async def add(self, delivery: Delivery) -> bool:
        now = delivery.created_at
        doc = {"_id": delivery.msg_id, "job_id": delivery.job_id,
               "tenant_id": delivery.tenant_id, "event_type": delivery.event_type,
               "url": delivery.url, "body": delivery.body.decode(), "state": PENDING,
               "attempts": 0, "created_at": now, "updated_at": now,
               "deadline": delivery.deadline, "next_at": now, "history": [],
               "traceparent": delivery.traceparent}  # fmt: skip
        try:
            await self._col.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def due(self, now: datetime, limit: int) -> list[str]:
        cursor = self._col.find({"state": PENDING, "next_at": {"$lte": now}}, {"_id": 1})
        return [str(d["_id"]) async for d in cursor.sort("next_at", ASCENDING).limit(limit)]

    async def claim(self, msg_id: str, now: datetime, lease: timedelta) -> Delivery | None:
        doc = await self._col.find_one_and_update(
            {"_id": msg_id, "state": PENDING, "next_at": {"$lte": now}},
            {"$set": {"next_at": now + lease, "leased_at": now}},
            return_document=ReturnDocument.AFTER,
        )
        return _delivery(doc) if doc is not None else None

    async def settle(self, delivery: Delivery, attempt: Attempt) -> bool:
        state = STATE_AFTER[attempt.outcome]
        fields: Doc = {"state": state, "attempts": attempt.attempt, "last": attempt.doc(),
                       "updated_at": datetime.now(UTC)}  # fmt: skip
        if attempt.next_at is not None:
            fields["next_at"] = attempt.next_at
        if state != PENDING:
            fields["finished_at"] = attempt.at
            fields["reason"] = attempt.reason
        # Guarded by the attempt count: a worker whose lease ran out records nothing twice.
        query = {"_id": delivery.msg_id, "state": PENDING, "attempts": delivery.attempts}
        return await push_capped(self._col, query, "history", attempt.doc(), HISTORY_CAP, fields)

    async def get(self, msg_id: str) -> Doc | None:
        return await self._col.find_one({"_id": msg_id})


def _delivery(doc: Doc) -> Delivery:
    return Delivery(
        msg_id=str(doc["_id"]),
        job_id=doc["job_id"],
        tenant_id=doc["tenant_id"],
        event_type=doc["event_type"],
        url=doc["url"],
        body=doc["body"].encode(),
        created_at=doc["created_at"],
        deadline=doc["deadline"],
        attempts=int(doc.get("attempts", 0)),
        traceparent=doc.get("traceparent"),
    )


class JobWebhooks:
    """The part of the ``jobs`` collection this service reads and writes."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._jobs = db[JOBS]

    async def get(self, job_id: str) -> Doc | None:
        fields = {"tenant_id": 1, "callback_url": 1, "spec.callback_stages": 1}
        return await self._jobs.find_one({"_id": job_id}, fields)

    async def record(self, job_id: str, attempt: Attempt) -> None:
        # Not ``updated_at``: the lifecycle owns it (its outbox relay goes by it).
        await push_capped(self._jobs, {"_id": job_id}, "webhooks", attempt.doc(), HISTORY_CAP)
