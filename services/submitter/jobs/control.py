"""Reading, listing, cancelling and retrying a tenant's jobs. Another tenant's job is
exactly as missing as a job that does not exist."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from schemas.codes import Code
from schemas.job import JobRequested, ProductionJobSpec
from schemas.names import Producer
from services.common.errors import PermanentError
from services.common.mongo import Doc
from services.common.ports import Emitter
from services.lifecycle.plan import TERMINAL, Retry
from services.lifecycle.store import ProductionJobs

JOBS = "jobs"


class JobNotFound(PermanentError):
    public = True
    code = Code.JOB_NOT_FOUND


class BadCursor(PermanentError):
    public = True
    code = Code.INVALID_REQUEST


class JobFinished(PermanentError):
    public = True
    code = Code.JOB_FINISHED


@dataclass(frozen=True)
class Page:
    jobs: list[Doc]
    next_cursor: str | None


def _cursor(doc: Doc) -> str:
    raw = json.dumps([doc["created_at"].isoformat(), doc["_id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, job_id = json.loads(raw)
        return datetime.fromisoformat(created), str(job_id)
    except (ValueError, TypeError) as exc:
        raise BadCursor("the cursor is not one this API gave out") from exc


class JobControl:
    def __init__(self, db: AsyncDatabase[Doc], emitter: Emitter) -> None:
        self._jobs = db[JOBS]
        self._production = ProductionJobs(db)
        self._emitter = emitter

    async def get(self, tenant_id: str, job_id: str) -> Doc:
        # By _id alone, the tenant checked here: a look-up every server answers from the
        # _id index (FerretDB scans the collection for any other filter).
        doc = await self._jobs.find_one({"_id": job_id})
        if doc is None or doc.get("tenant_id") != tenant_id:
            raise JobNotFound(f"no job {job_id[:64]!r}")
        return doc

    async def list(
        self, tenant_id: str, *, status: str | None = None, kind: str | None = None,
        created_after: datetime | None = None, created_before: datetime | None = None,
        limit: int = 50, cursor: str | None = None,
    ) -> Page:  # fmt: skip
        return await self.page(
            {"tenant_id": tenant_id}, status=status, kind=kind, created_after=created_after,
            created_before=created_before, limit=limit, cursor=cursor,
        )  # fmt: skip

    async def page(
        self, base: Doc, *, status: str | None = None, kind: str | None = None,
        created_after: datetime | None = None, created_before: datetime | None = None,
        limit: int = 50, cursor: str | None = None,
    ) -> Page:  # fmt: skip
        """Jobs matching ``base`` and the filters, newest first: the tenant's (``list``),
        or, for operators, any tenant's."""
        query: dict[str, Any] = dict(base)
        if status:
            query["status"] = status
        if kind:
            query["kind"] = kind
        created: dict[str, Any] = {}
        if created_after:
            created["$gte"] = created_after
        if created_before:
            created["$lt"] = created_before
        if cursor:
            at, last_id = _decode_cursor(cursor)
            # Newest first; ties on created_at broken by id, so no job is skipped or repeated.
            query["$or"] = [
                {"created_at": {"$lt": at}},
                {"created_at": at, "_id": {"$lt": last_id}},
            ]
        if created:
            query["created_at"] = created
        found = self._jobs.find(query).sort([("created_at", DESCENDING), ("_id", DESCENDING)])
        docs = [d async for d in found.limit(limit + 1)]
        more = len(docs) > limit
        docs = docs[:limit]
        return Page(docs, _cursor(docs[-1]) if more and docs else None)

    async def cancel(self, tenant_id: str, job_id: str) -> Doc:
        """CANCELLED unless it already ended; stages check before expensive work."""
        doc = await self.get(tenant_id, job_id)
        if doc.get("status") == "CANCELLED":
            return doc
        if doc.get("kind") == "production":
            found = await self._production.state(job_id)
            version = int((found[0] if found else doc).get("audio", {}).get("attempt", 1))
            # The end of a version is claimed once: a completion and a cancel cannot both win.
            if not await self._production.end(job_id, version):
                raise JobFinished(f"the job already ended ({doc.get('status')})")
            await self._production.set_summary(job_id, {"status": "CANCELLED"})
        else:
            result = await self._jobs.update_one(
                {"_id": job_id, "status": {"$nin": sorted(TERMINAL)}},
                {"$set": {"status": "CANCELLED", "updated_at": datetime.now(UTC)}},
            )
            if not result.matched_count:
                raise JobFinished(f"the job already ended ({doc.get('status')})")
        return await self.get(tenant_id, job_id)

    async def retry_audio(self, tenant_id: str, job_id: str) -> Doc:
        """A new audio attempt, a new soundtrack and a new result version; the video as
        it is. Then a nudge to the lifecycle, which sends what the job now needs."""
        doc = await self.get(tenant_id, job_id)
        spec = doc.get("spec", {})
        if doc.get("kind") != "production" or not spec.get("feature", {}).get("audio", True):
            raise JobFinished("only a production job with audio can retry its audio")
        if doc.get("status") != "COMPLETED":
            raise JobFinished(
                f"the audio can be retried once the job completed ({doc.get('status')})"
            )
        found = await self._production.state(job_id)
        attempt = int((found[0] if found else doc).get("audio", {}).get("attempt", 1)) + 1
        if not await self._production.record(job_id, Retry(attempt), f"retry-a{attempt}"):
            raise JobFinished("this retry is already under way")
        await self._production.set_summary(job_id, {"status": "RUNNING"})
        nudge = JobRequested(
            job_id=job_id,
            tenant_id=tenant_id,
            producer=Producer.SUBMITTER,
            correlation_id=doc.get("correlation_id") or job_id,
            spec=ProductionJobSpec.model_validate(spec),
        )
        await self._emitter.emit([nudge])
        return await self.get(tenant_id, job_id)
