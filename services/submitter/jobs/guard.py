"""Idempotency keys and fair use, kept in MongoDB so every API instance agrees.

* An ``Idempotency-Key`` maps to the job it created for 24 h; a retry with the same body
  gets that job back, a different body with the same key is refused (409).
* A tenant may submit ``rate_per_minute`` jobs a minute (fixed one-minute windows: one
  counter document per tenant and minute, ``$inc`` with upsert) and have at most
  ``max_in_flight`` jobs not yet finished; past either it gets 429 with Retry-After.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from schemas.codes import Code
from services.common.errors import PermanentError
from services.common.mongo import Doc

IDEMPOTENCY = "idempotency_keys"
RATE_WINDOWS = "rate_windows"
KEY_TTL = timedelta(hours=24)


class IdempotencyConflict(PermanentError):
    public = True
    code = Code.IDEMPOTENCY_CONFLICT


class TooManyJobs(PermanentError):
    """Over the rate or the in-flight cap; ``retry_after_s`` says when to come back."""

    public = True

    def __init__(self, message: str, *, code: str, retry_after_s: int) -> None:
        super().__init__(message, code=code)
        self.retry_after_s = retry_after_s


def body_hash(body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Limits:
    rate_per_minute: int
    max_in_flight: int


class JobGuard:
    def __init__(self, db: AsyncDatabase[Doc], limits: Limits) -> None:
        self._keys = db[IDEMPOTENCY]
        self._windows = db[RATE_WINDOWS]
        self._jobs = db["jobs"]
        self._limits = limits

    async def ensure_indexes(self) -> None:
        await self._keys.create_index("created_at")
        await self._windows.create_index("expires_at")
        await self._jobs.create_index([("tenant_id", ASCENDING), ("status", ASCENDING)])

    async def remembered(self, tenant_id: str, key: str, digest: str) -> str | None:
        """The job an earlier submission with this key created (same body), None if the
        key is new or expired; raises ``IdempotencyConflict`` for another body."""
        doc = await self._keys.find_one({"_id": f"{tenant_id}:{key}"})
        if doc is None or doc["created_at"] < datetime.now(UTC) - KEY_TTL:
            return None
        if doc["body_hash"] != digest:
            raise IdempotencyConflict(
                "this Idempotency-Key was used with a different request in the last 24 h"
            )
        return str(doc["job_id"])

    async def remember(self, tenant_id: str, key: str, digest: str, job_id: str) -> str:
        """Bind the key to ``job_id``; when a concurrent submission won the key, its job."""
        doc = {"_id": f"{tenant_id}:{key}", "job_id": job_id, "body_hash": digest,
               "created_at": datetime.now(UTC)}  # fmt: skip
        try:
            await self._keys.insert_one(doc)
        except DuplicateKeyError:
            existing = await self.remembered(tenant_id, key, digest)
            if existing is None:  # expired: this submission takes the key over
                await self._keys.replace_one({"_id": doc["_id"]}, doc)
                return job_id
            return existing
        return job_id

    async def forget(self, tenant_id: str, key: str, job_id: str) -> None:
        """Unbind the key from ``job_id`` (a submission that could not be queued): the
        client's retry with the same key makes a new job instead of getting the failed one."""
        await self._keys.delete_one({"_id": f"{tenant_id}:{key}", "job_id": job_id})

    async def admit(self, tenant_id: str) -> None:
        """Count one submission against the tenant's limits, or raise ``TooManyJobs``."""
        limits = self._limits
        in_flight = await self._jobs.count_documents(
            {"tenant_id": tenant_id, "status": {"$in": ["PENDING", "RUNNING"]}}
        )
        if in_flight >= limits.max_in_flight:
            raise TooManyJobs(
                f"at most {limits.max_in_flight} jobs may be in flight at once",
                code=Code.TOO_MANY_JOBS, retry_after_s=10,
            )  # fmt: skip
        now = time.time()
        minute = int(now // 60)
        window = await self._windows.find_one_and_update(
            {"_id": f"{tenant_id}:{minute}"},
            {"$inc": {"n": 1},
             "$setOnInsert": {"expires_at": datetime.now(UTC) + timedelta(minutes=5)}},
            upsert=True, return_document=ReturnDocument.AFTER,
        )  # fmt: skip
        if window is not None and window["n"] > limits.rate_per_minute:
            raise TooManyJobs(
                f"at most {limits.rate_per_minute} jobs a minute",
                code=Code.RATE_LIMITED, retry_after_s=max(1, int((minute + 1) * 60 - now) + 1),
            )  # fmt: skip
