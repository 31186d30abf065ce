"""Checkpoints in MongoDB: one document per (stage, event id, step)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from services.common.mongo import Doc

COLLECTION = "stage_checkpoints"


def _id(stage: str, event_id: str, step: str) -> str:
    return f"{stage}:{event_id}:{step}"


class MongoCheckpoints:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._col = db[COLLECTION]

    async def ensure_indexes(self) -> None:
        # Serves pruning old checkpoints and listing an event's steps for operators.
        await self._col.create_index([("stage", ASCENDING), ("event_id", ASCENDING)])
        await self._col.create_index("saved_at")

    async def load(self, stage: str, event_id: str, step: str) -> Any | None:
        doc = await self._col.find_one({"_id": _id(stage, event_id, step)})
        return None if doc is None else doc.get("result")

    async def save(self, stage: str, event_id: str, step: str, result: Any) -> None:
        # Upsert: a step redone after a crash between its work and its save overwrites.
        await self._col.replace_one(
            {"_id": _id(stage, event_id, step)},
            {
                "stage": stage,
                "event_id": event_id,
                "step": step,
                "result": result,
                "saved_at": datetime.now(UTC),
            },
            upsert=True,
        )
