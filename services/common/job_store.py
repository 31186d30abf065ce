"""Job store: a ``jobs`` document per job and a ``job_stages`` document per (job, stage).

Each stage writes only its own document, so two stages finishing at the same moment can
never overwrite each other, even on servers that update by read-then-write. A stage's
status only moves forward; every update is a conditional partial ``$set``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from schemas import Event
from services.common.context import subject_id
from services.common.mongo import Doc, scans_unless_by_id
from services.common.ports import JobRepo

JOBS = "jobs"
STAGES = "job_stages"


class StageStatus(enum.StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


RANK = {
    StageStatus.PENDING: 0,
    StageStatus.RUNNING: 1,
    StageStatus.COMPLETED: 2,
    StageStatus.FAILED: 2,
    StageStatus.CANCELLED: 2,
}
TERMINAL = frozenset(s for s, r in RANK.items() if r == 2)


def can_move(current: StageStatus | None, target: StageStatus) -> bool:
    """Forward only: a late or duplicate event can never move a stage back or sideways."""
    if current is None:
        return True
    return RANK[target] > RANK[current]


def predecessors(target: StageStatus) -> list[str]:
    return [s.value for s in StageStatus if RANK[s] < RANK[target]]


class JobStore:
    def __init__(self, db: AsyncDatabase[Doc], *, by_id: bool | None = None) -> None:
        """``by_id``: write stage records by ``_id`` alone, the condition checked on the
        document just read (None: when the server scans for any other filter, asked once)."""
        self._db = db
        self._jobs = db[JOBS]
        self._stages = db[STAGES]
        self._by_id = by_id

    async def _writes_by_id(self) -> bool:
        if self._by_id is None:
            self._by_id = await scans_unless_by_id(self._db)
        return self._by_id

    async def ensure_indexes(self) -> None:
        await self._jobs.create_index([("tenant_id", ASCENDING), ("created_at", ASCENDING)])
        await self._stages.create_index([("job_id", ASCENDING), ("stage", ASCENDING)], unique=True)
        await self._stages.create_index([("status", ASCENDING), ("updated_at", ASCENDING)])

    async def create_job(
        self, job_id: str, tenant_id: str, kind: str, fields: Mapping[str, Any]
    ) -> bool:
        """Insert the job once; False when it already exists (a resubmitted job)."""
        now = datetime.now(UTC)
        doc = {
            "_id": job_id,
            "job_id": job_id,
            "tenant_id": tenant_id,
            "kind": kind,
            "created_at": now,
            **fields,
        }
        try:
            await self._jobs.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def transition(
        self, job_id: str, stage: str, target: StageStatus, fields: Mapping[str, Any] | None = None
    ) -> bool:
        """Move (job, stage) to ``target`` if that is forward; returns whether it moved."""
        now = datetime.now(UTC)
        key = f"{job_id}:{stage}"
        update = {"$set": {"status": target.value, "updated_at": now, **(fields or {})}}
        allowed = {"_id": key, "status": {"$in": predecessors(target)}}
        by_id = await self._writes_by_id()
        if by_id:
            if (moved := await self._move_by_id(key, target, update)) is not None:
                return moved
        elif (await self._stages.update_one(allowed, update)).matched_count:
            return True
        try:
            # Not there yet, or there with a status that may not move to target: only the
            # first case inserts; the second collides on _id.
            await self._stages.insert_one(
                {
                    "_id": key,
                    "job_id": job_id,
                    "stage": stage,
                    "status": target.value,
                    "created_at": now,
                    "updated_at": now,
                    **(fields or {}),
                }
            )
        except DuplicateKeyError:
            # Another writer created it between our two calls: one more conditional try.
            if by_id:
                return bool(await self._move_by_id(key, target, update))
            return bool((await self._stages.update_one(allowed, update)).matched_count)
        return True

    async def _move_by_id(self, key: str, target: StageStatus, update: Doc) -> bool | None:
        """None when there is no record yet; else whether it moved to ``target``."""
        doc = await self._stages.find_one({"_id": key}, {"status": 1})
        if doc is None:
            return None
        if not can_move(StageStatus(doc["status"]), target):
            return False
        return bool((await self._stages.update_one({"_id": key}, update)).matched_count)

    async def record_progress(self, job_id: str, stage: str, fields: Mapping[str, Any]) -> bool:
        """Partial update of a non-terminal stage (progress, per-scene results)."""
        key = f"{job_id}:{stage}"
        update = {"$set": {**fields, "updated_at": datetime.now(UTC)}}
        if await self._writes_by_id():
            doc = await self._stages.find_one({"_id": key}, {"status": 1})
            if doc is None or doc["status"] in TERMINAL:
                return False
            return bool((await self._stages.update_one({"_id": key}, update)).matched_count)
        result = await self._stages.update_one(
            {"_id": key, "status": {"$nin": sorted(TERMINAL)}}, update
        )
        return bool(result.matched_count)

    async def stage(self, job_id: str, stage: str) -> Doc | None:
        return await self._stages.find_one({"_id": f"{job_id}:{stage}"})

    async def job(self, job_id: str) -> Doc | None:
        """The job with every stage's document under ``stages``."""
        job = await self._jobs.find_one({"_id": job_id})
        stages = (await self.stages_of(job_id))[job_id]
        if job is None and not stages:
            return None
        return {**(job or {"_id": job_id, "job_id": job_id}), "stages": stages}

    async def stages_of(self, *job_ids: str) -> dict[str, dict[str, Doc]]:
        """Each job's stage documents by stage name, for several jobs in one query."""
        out: dict[str, dict[str, Doc]] = {job_id: {} for job_id in job_ids}
        query = {"job_id": job_ids[0] if len(job_ids) == 1 else {"$in": list(job_ids)}}
        async for d in self._stages.find(query):
            out[d["job_id"]][d["stage"]] = d
        return out


class JobStatusRecorder:
    """StatusRecorder on the job store: RUNNING when a stage starts on an event, progress
    while it works, then COMPLETED or FAILED with every event it emitted (``outputs``, in
    emit order), so status reads need no Kafka."""

    def __init__(self, store: JobRepo) -> None:
        self._store = store

    async def started(self, stage: str, event: Event) -> None:
        await self._store.transition(
            subject_id(event),
            stage,
            StageStatus.RUNNING,
            {"tenant_id": event.tenant_id, "correlation_id": event.correlation_id},
        )

    async def finished(
        self,
        stage: str,
        event: Event,
        outputs: Sequence[Event],
        failed: bool,
        detail: str | None = None,
    ) -> None:
        target = StageStatus.FAILED if failed else StageStatus.COMPLETED
        fields: dict[str, Any] = {"outputs": [e.model_dump(mode="json") for e in outputs]}
        if detail is not None:
            # Operators only: the API and the console's tenant views never show it.
            fields["operator_detail"] = detail
        await self._store.transition(subject_id(event), stage, target, fields)

    async def progress(self, stage: str, event: Event, fields: Mapping[str, Any]) -> None:
        await self._store.record_progress(subject_id(event), stage, fields)
