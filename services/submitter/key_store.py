"""API keys in MongoDB (collection ``api_keys``): hashes only, never a clear key."""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase

from services.common.mongo import Doc
from services.submitter.api_keys import KeyRecord

API_KEYS = "api_keys"


class KeyStore:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._keys = db[API_KEYS]

    async def ensure_indexes(self) -> None:
        await self._keys.create_index([("tenant_id", 1), ("created_at", 1)])

    async def get(self, key_id: str) -> KeyRecord | None:
        doc = await self._keys.find_one({"_id": key_id})
        return _record(doc) if doc else None

    async def add(self, record: KeyRecord) -> None:
        await self._keys.insert_one(
            {
                "_id": record.key_id,
                "tenant_id": record.tenant_id,
                "key_hash": record.key_hash,
                "created_at": record.created_at,
                "revoked_at": record.revoked_at,
            }
        )

    async def list(self, tenant_id: str | None = None) -> list[KeyRecord]:
        query: Doc = {} if tenant_id is None else {"tenant_id": tenant_id}
        cursor = self._keys.find(query).sort([("tenant_id", 1), ("created_at", 1)])
        return [_record(d) async for d in cursor]

    async def revoke(self, key_id: str) -> bool:
        """True when the key existed and was live; revoking twice changes nothing."""
        result = await self._keys.update_one(
            {"_id": key_id, "revoked_at": None}, {"$set": {"revoked_at": datetime.now(UTC)}}
        )
        return bool(result.modified_count)


def _record(doc: Doc) -> KeyRecord:
    return KeyRecord(
        key_id=doc["_id"],
        tenant_id=doc["tenant_id"],
        key_hash=doc["key_hash"],
        created_at=doc["created_at"],
        revoked_at=doc.get("revoked_at"),
    )
