"""The generation cache's records in MongoDB (the audio itself is in S3)."""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase

from services.audio_agent.cache import CacheEntry
from services.common.mongo import Doc

COLLECTION = "audio_generation_cache"


class MongoGenerationCache:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._col = db[COLLECTION]

    async def ensure_indexes(self) -> None:
        await self._col.create_index("stored_at")

    async def get(self, key: str) -> CacheEntry | None:
        doc = await self._col.find_one({"_id": key})
        if doc is None:
            return None
        return CacheEntry(
            s3_key=str(doc["s3_key"]),
            duration_s=float(doc["duration_s"]),
            request_id=doc.get("request_id"),
            continuation_state=doc.get("continuation_state"),
        )

    async def put(self, key: str, entry: CacheEntry) -> None:
        await self._col.replace_one(
            {"_id": key},
            {
                "s3_key": entry.s3_key,
                "duration_s": entry.duration_s,
                "request_id": entry.request_id,
                "continuation_state": entry.continuation_state,
                "stored_at": datetime.now(UTC),
            },
            upsert=True,
        )
