"""Production jobs in MongoDB: every change a conditional partial update, every requested
event claimed once and kept in an outbox until it is on the broker."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.common.mongo import Doc
from services.lifecycle.plan import TERMINAL, Action, Update

JOBS = "jobs"


def _now() -> datetime:
    return datetime.now(UTC)


class ProductionJobs:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._jobs = db[JOBS]

    async def ensure_indexes(self) -> None:
        await self._jobs.create_index([("tenant_id", ASCENDING), ("created_at", ASCENDING)])
        await self._jobs.create_index([("outbox", ASCENDING), ("updated_at", ASCENDING)])
        await self._jobs.create_index([("video.status", ASCENDING), ("created_at", ASCENDING)])

    async def create(self, job_id: str, tenant_id: str, fields: Mapping[str, Any]) -> bool:
        """Insert the job once; False when it exists (a resubmission or a redelivery)."""
        now = _now()
        doc = {"_id": job_id, "job_id": job_id, "tenant_id": tenant_id, "kind": "production",
               "created_at": now, "updated_at": now, "outbox": [], **fields}  # fmt: skip
        try:
            await self._jobs.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def fail_submission(self, job_id: str, why: str) -> None:
        """A job stored but never handed on: failed, so it is not left waiting forever."""
        await self._jobs.update_one(
            {"_id": job_id, "status": "PENDING"},
            {"$set": {"status": "FAILED", "error": {"code": "submit_failed", "message": why},
                      "updated_at": _now()}},
        )  # fmt: skip

    async def get(self, job_id: str) -> Doc | None:
        return await self._jobs.find_one({"_id": job_id})

    async def apply(self, job_id: str, update: Update) -> bool:
        result = await self._jobs.update_one(
            {"_id": job_id, **update.guard},
            {
                "$set": {**update.set, "updated_at": _now()},
                "$push": {"timeline": {"at": _now(), "what": update.note}},
            },
        )
        return bool(result.matched_count)

    async def claim(self, job_id: str, action: Action) -> bool:
        """Record that ``action`` is requested, once: the one caller that gets True emits
        its event. The event waits in the outbox until :meth:`sent`."""
        fields: Doc = {**action.fields, "updated_at": _now()}
        fields[f"actions.{action.name}"] = {
            "event": action.event.model_dump(mode="json") if action.event else None,
            "at": _now(),
        }
        if action.status is not None:
            fields["status"] = action.status
        note = {"at": _now(), "what": f"requested {action.name}"}
        update: Doc = {"$set": fields, "$push": {"timeline": note}}
        if action.event is not None:
            update["$addToSet"] = {"outbox": action.name}
        guard = {"_id": job_id, f"actions.{action.name}": {"$exists": False},
                 "status": {"$nin": sorted(TERMINAL)}}  # fmt: skip
        return bool((await self._jobs.update_one(guard, update)).matched_count)

    async def sent(self, job_id: str, name: str) -> None:
        await self._jobs.update_one({"_id": job_id}, {"$pull": {"outbox": name}})

    async def stale_outbox(
        self, older_than: timedelta, limit: int = 100
    ) -> list[tuple[str, str, Doc]]:
        """Claimed events not confirmed sent within ``older_than``: a worker died between
        its claim and its emit. (job id, action name, event document)."""
        cursor = self._jobs.find(
            {"outbox.0": {"$exists": True}, "updated_at": {"$lt": _now() - older_than}},
            {"outbox": 1, "actions": 1},
        ).limit(limit)
        found = []
        async for doc in cursor:
            for name in doc.get("outbox", []):
                event = doc.get("actions", {}).get(name, {}).get("event")
                if event is not None:
                    found.append((str(doc["_id"]), name, event))
        return found

    async def overdue_videos(self, older_than: timedelta, limit: int = 100) -> list[str]:
        cursor = self._jobs.find(
            {"video.status": "WAITING", "video.source": "upstream",
             "status": {"$nin": sorted(TERMINAL)}, "created_at": {"$lt": _now() - older_than}},
            {"_id": 1},
        ).limit(limit)  # fmt: skip
        return [str(d["_id"]) async for d in cursor]
