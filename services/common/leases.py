"""Event leases in MongoDB: one document per event being handled, naming the process that
holds it until a time it keeps pushing forward, so two workers never handle one event at
once (a rebalance can give a second worker an event the first is still working on).

A lease whose holder stopped renewing it (killed, or cut off) is free once its time has
passed. One whose holder is known to be gone is free at once: an earlier run of the same
worker (the same ``WORKER_ID``, restarted: Kafka's static membership fences that run), or a
process of this host that no longer runs (a restarted container keeps its hostname).

Claims and releases made while an earlier one is on its way go to MongoDB together (one
unordered insert, one delete), so many events in hand cost one round trip per step.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from services.common.coalesce import Coalescer
from services.common.ledger import duplicate_indexes
from services.common.mongo import Doc

COLLECTION = "event_leases"
TTL_S = 30.0


class MongoLeases:
    def __init__(
        self, db: AsyncDatabase[Doc], *, worker_id: str | None, ttl_s: float = TTL_S,
        host: str | None = None, pid: int | None = None,
    ) -> None:  # fmt: skip
        """``host`` and ``pid`` say who this process is (by default, the truth)."""
        self._col = db[COLLECTION]
        self.ttl_s = ttl_s
        self._worker = worker_id
        self._host = host if host is not None else socket.gethostname()
        self._pid = pid if pid is not None else os.getpid()
        # This very process: a restarted worker is another holder with the same worker id.
        self.owner = f"{worker_id or self._host}:{self._pid}:{uuid.uuid4().hex[:8]}"
        self._claim: Coalescer[str, bool] = Coalescer(self._claim_many)
        self._release: Coalescer[str, None] = Coalescer(self._release_many)

    def _mine(self) -> Doc:
        until = datetime.now(UTC) + timedelta(seconds=self.ttl_s)
        return {"owner": self.owner, "worker": self._worker, "host": self._host,
                "pid": self._pid, "until": until}  # fmt: skip

    def _gone(self, held: Doc) -> bool:
        """Whether the holder of ``held`` is known not to run any more."""
        if held["until"] <= datetime.now(UTC):
            return True
        if self._worker is not None and held.get("worker") == self._worker:
            return True
        if held.get("host") != self._host or not isinstance(held.get("pid"), int):
            return False
        # Our own pid under another owner is an earlier run (a container's pid 1 again).
        return bool(held["pid"] == self._pid or not _running(held["pid"]))

    async def claim(self, stage: str, event_id: str) -> bool:
        """True when this process holds the event's lease now; False while someone else
        who may still be at it does (or the lease moved meanwhile: ask again)."""
        return await self._claim(f"{stage}:{event_id}")

    async def _claim_many(self, keys: list[str]) -> list[bool]:
        mine = self._mine()
        taken: set[int] = set()
        try:
            await self._col.insert_many([{"_id": k, **mine} for k in keys], ordered=False)
        except BulkWriteError as exc:
            taken = duplicate_indexes(exc)
            if len(taken) != len(exc.details.get("writeErrors") or ()):
                raise
        retaken = dict(zip(sorted(taken), await asyncio.gather(
            *(self._take(keys[n]) for n in sorted(taken))), strict=True))  # fmt: skip
        return [retaken.get(n, True) for n in range(len(keys))]

    async def _take(self, key: str) -> bool:
        """The lease of ``key`` is held: ours already, or free to take from a holder gone."""
        held = await self._col.find_one({"_id": key})
        if held is None:
            return False
        if held["owner"] == self.owner:
            return True
        if not self._gone(held):
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
        await self._release(f"{stage}:{event_id}")

    async def _release_many(self, keys: list[str]) -> list[None]:
        await self._col.delete_many({"_id": {"$in": keys}, "owner": self.owner})
        return [None] * len(keys)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
