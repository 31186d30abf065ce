"""Production jobs in MongoDB, written so that no two writers ever read-modify-write the
same fields (which some MongoDB-compatible servers do not serialize):

* ``jobs``: the job as created, plus a summary (status, outputs) written only by the one
  writer that won the claim for it;
* ``job_outcomes``: every outcome for a job, appended once (``_id`` = job:event id);
* ``job_actions``: every event the lifecycle asked for, claimed once by a unique insert,
  with ``sent`` once the broker has it (the outbox);
* a job's end (completed, failed, cancelled) is itself a claim, one per result version,
  so a cancel and a completion cannot both win.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from schemas import decode_event
from services.common.mongo import Doc
from services.lifecycle.plan import TERMINAL, Action, Outcome, Retry, VideoOverdue, fold

JOBS = "jobs"
OUTCOMES = "job_outcomes"
ACTIONS = "job_actions"


def _now() -> datetime:
    return datetime.now(UTC)


class ProductionJobs:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._jobs = db[JOBS]
        self._outcomes = db[OUTCOMES]
        self._actions = db[ACTIONS]

    async def ensure_indexes(self) -> None:
        await self._jobs.create_index([("tenant_id", ASCENDING), ("created_at", ASCENDING)])
        await self._jobs.create_index([("video.source", ASCENDING), ("created_at", ASCENDING)])
        await self._outcomes.create_index([("job_id", ASCENDING), ("seq", ASCENDING)])
        await self._actions.create_index([("sent", ASCENDING), ("at", ASCENDING)])

    async def create(self, job_id: str, tenant_id: str, fields: Mapping[str, Any]) -> bool:
        """Insert the job once; False when it exists (a resubmission or a redelivery)."""
        now = _now()
        doc = {"_id": job_id, "job_id": job_id, "tenant_id": tenant_id, "kind": "production",
               "created_at": now, "updated_at": now, **fields}  # fmt: skip
        try:
            await self._jobs.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def get(self, job_id: str) -> Doc | None:
        return await self._jobs.find_one({"_id": job_id})

    async def record(self, job_id: str, event: Outcome, key: str) -> bool:
        """Append an outcome once (``key`` unique per job); False for a duplicate."""
        body: Doc
        if isinstance(event, Retry):
            body = {"retry": event.attempt}
        elif isinstance(event, VideoOverdue):
            body = {"overdue": event.seconds}
        else:
            body = event.model_dump(mode="json")
        try:
            await self._outcomes.insert_one({"_id": f"{job_id}:{key}", "job_id": job_id,
                                             "seq": _now(), "body": body})  # fmt: skip
        except DuplicateKeyError:
            return False
        return True

    async def state(self, job_id: str, job: Doc | None = None) -> tuple[Doc, list[str]] | None:
        """The job folded with its outcomes, and what each outcome did (its timeline).
        ``job``: its document when the caller has just read it (one read fewer)."""
        job = job if job is not None else await self.get(job_id)
        if job is None:
            return None
        cursor = self._outcomes.find({"job_id": job_id}).sort(
            [("seq", ASCENDING), ("_id", ASCENDING)]
        )
        outcomes: list[Outcome] = []
        async for doc in cursor:
            body = doc["body"]
            if "retry" in body:
                outcomes.append(Retry(int(body["retry"])))
            elif "overdue" in body:
                outcomes.append(VideoOverdue(int(body["overdue"])))
            else:
                outcomes.append(decode_event(json.dumps(body).encode()))
        return fold(job, outcomes)

    async def claim(self, job_id: str, action: Action, version: int = 1) -> bool:
        """Record that ``action`` is requested, once: the one caller that gets True emits
        its event (kept in the outbox until :meth:`sent`) and writes its summary."""
        if action.status in TERMINAL and not await self.end(job_id, version):
            return False
        doc = {"_id": f"{job_id}:{action.name}", "job_id": job_id, "name": action.name,
               "event": action.event.model_dump(mode="json") if action.event else None,
               "sent": action.event is None, "at": _now()}  # fmt: skip
        try:
            await self._actions.insert_one(doc)
        except DuplicateKeyError:
            return False
        if action.status is not None or action.fields:
            # Only an end writes the job's summary, and only the one that won the end: no
            # other writer touches the job document, so none can undo a cancel.
            summary: dict[str, Any] = dict(action.fields)
            if action.status is not None:
                summary["status"] = action.status
            await self.set_summary(job_id, summary)
        return True

    async def end(self, job_id: str, version: int) -> bool:
        """Claim the end of the job's ``version``: True for the one first to end it."""
        try:
            await self._actions.insert_one({"_id": f"{job_id}:end-v{version}", "job_id": job_id,
                                            "name": f"end-v{version}", "sent": True,
                                            "at": _now()})  # fmt: skip
        except DuplicateKeyError:
            return False
        return True

    async def set_summary(self, job_id: str, fields: Mapping[str, Any]) -> None:
        """For the writer that holds the claim these fields belong to."""
        await self._jobs.update_one({"_id": job_id}, {"$set": {**fields, "updated_at": _now()}})

    async def sent(self, job_id: str, name: str) -> None:
        await self._actions.update_one({"_id": f"{job_id}:{name}"}, {"$set": {"sent": True}})

    async def stale_outbox(
        self, older_than: timedelta, limit: int = 100
    ) -> list[tuple[str, str, Doc]]:
        """Claimed events not confirmed sent within ``older_than``: a worker died between
        its claim and its emit. (job id, action name, event document)."""
        cursor = self._actions.find({"sent": False, "at": {"$lt": _now() - older_than}}).limit(
            limit
        )
        return [(str(d["job_id"]), str(d["name"]), d["event"]) async for d in cursor]

    async def upstream_jobs(self, older_than: timedelta, limit: int = 100) -> list[str]:
        """Jobs waiting on an upstream video for longer than ``older_than`` (or done)."""
        cursor = self._jobs.find(
            {"video.source": "upstream", "status": {"$nin": sorted(TERMINAL)},
             "created_at": {"$lt": _now() - older_than}}, {"_id": 1},
        ).limit(limit)  # fmt: skip
        return [str(d["_id"]) async for d in cursor]

    async def fail_submission(self, job_id: str, why: str) -> None:
        """A job stored but never handed on: failed, so it is not left waiting forever."""
        if await self.end(job_id, 1):
            await self.set_summary(job_id, {"status": "FAILED", "error": {
                "code": "submit_failed", "message": why}})  # fmt: skip
