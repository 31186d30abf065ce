"""Event leases in MongoDB: one document per event being handled, naming the process that
holds it until a time it keeps pushing forward, so two workers never handle one event at
once (a rebalance can give a second worker an event the first is still working on).

A lease whose holder stopped renewing it (killed, or cut off) is free once its time has
passed; one held by an earlier run of the same worker (the same ``WORKER_ID``, restarted)
is free at once, as Kafka's static membership guarantees that run is gone.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.common.mongo import Doc

COLLECTION = "event_leases"
TTL_S = 30.0


class MongoLeases:
    def __init__(
        self, db: AsyncDatabase[Doc], *, worker_id: str | None, ttl_s: float = TTL_S
    ) -> None:
        self._col = db[COLLECTION]
        self.ttl_s = ttl_s
        self._worker = worker_id
        # This very process: a restarted worker is another holder with the same worker id.
        self.owner = f"{worker_id or socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def _mine(self) -> Doc:
        until = datetime.now(UTC) + timedelta(seconds=self.ttl_s)
        return {"owner": self.owner, "worker": self._worker, "until": until}

    async def claim(self, stage: str, event_id: str) -> bool:
        """True when this process holds the event's lease now; False while someone else
        who may still be at it does (or the lease moved meanwhile: ask again)."""
        key = f"{stage}:{event_id}"
        try:
            await self._col.insert_one({"_id": key, **self._mine()})
            return True
        except DuplicateKeyError:
            pass
        held = await self._col.find_one({"_id": key})
        if held is None:
            return False
        if held["owner"] == self.owner:
            return True
        expired = held["until"] <= datetime.now(UTC)
        restarted = self._worker is not None and held.get("worker") == self._worker
        if not (expired or restarted):
            return False
        taken = await self._col.update_one({"_id": key, "owner": held["owner"]},
                                           {"$set": self._mine()})  # fmt: skip
        return bool(taken.modified_count)

    async def renew(self, stage: str, event_id: str) -> bool:
        """Push the lease's time forward; False when it is no longer this process's."""
        renewed = await self._col.update_one({"_id": f"{stage}:{event_id}", "owner": self.owner},
                                             {"$set": self._mine()})  # fmt: skip
        return bool(renewed.matched_count)

    async def release(self, stage: str, event_id: str) -> None:
        await self._col.delete_one({"_id": f"{stage}:{event_id}", "owner": self.owner})
