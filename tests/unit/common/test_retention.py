"""How a collection's old documents are set to go, on a server with TTL indexes and on one
without: the driver's answers are played by a stand-in collection."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import OperationFailure
from pymongo.results import DeleteResult

from services.common import retention
from services.common.mongo import Doc

DAY = timedelta(days=1)


class Database:
    def __init__(self) -> None:
        self.commands: list[dict[str, Any]] = []

    async def command(self, command: dict[str, Any]) -> dict[str, Any]:
        self.commands.append(command)
        return {"ok": 1.0}


class Collection:
    """Refuses a TTL index with ``refusal`` (a server error code), or makes it."""

    name = "things"

    def __init__(self, refusal: int | None = None) -> None:
        self.refusal = refusal
        self.database = Database()
        self.indexes: list[tuple[str, dict[str, Any]]] = []
        self.deletes: list[dict[str, Any]] = []

    async def create_index(self, field: str, **options: Any) -> str:
        if "expireAfterSeconds" in options and self.refusal is not None:
            raise OperationFailure("refused", code=self.refusal)
        self.indexes.append((field, options))
        return f"{field}_1"

    async def delete_many(self, filter: dict[str, Any]) -> DeleteResult:
        self.deletes.append(filter)
        return DeleteResult({"n": 2}, acknowledged=True)


def collection(refusal: int | None = None) -> tuple[AsyncCollection[Doc], Collection]:
    col = Collection(refusal)
    return cast("AsyncCollection[Doc]", col), col


async def test_a_server_with_ttl_indexes_expires_documents_itself() -> None:
    col, seen = collection()
    assert await retention.expire_after(col, "at", 2 * DAY)
    assert seen.indexes == [("at", {"expireAfterSeconds": 172_800})]
    assert seen.database.commands == []


async def test_a_server_without_them_gets_a_plain_index_to_prune_by() -> None:
    col, seen = collection(retention.NOT_IMPLEMENTED)
    assert not await retention.expire_after(col, "at", DAY)
    assert seen.indexes == [("at", {})]


@pytest.mark.parametrize(
    "conflict", [retention.INDEX_OPTIONS_CONFLICT, retention.INDEX_KEY_SPECS_CONFLICT]
)
async def test_a_plain_index_made_before_is_turned_into_a_ttl_index_in_place(
    conflict: int,
) -> None:
    col, seen = collection(conflict)
    assert await retention.expire_after(col, "at", DAY)
    assert seen.indexes == []
    assert seen.database.commands == [
        {"collMod": "things", "index": {"keyPattern": {"at": 1}, "expireAfterSeconds": 86_400}}
    ]


async def test_any_other_refusal_stops_the_start() -> None:
    col, _ = collection(13)  # Unauthorized
    with pytest.raises(OperationFailure):
        await retention.expire_after(col, "at", DAY)


async def test_while_the_server_expires_documents_nothing_is_pruned() -> None:
    col, seen = collection()
    async with retention.kept_for(col, "at", DAY, every_s=0.01, first_s=(0.0, 0.0)) as expires:
        await asyncio.sleep(0.05)
    assert expires
    assert seen.deletes == []


async def test_without_ttl_indexes_old_documents_are_pruned_after_the_start_and_hourly() -> None:
    col, seen = collection(retention.NOT_IMPLEMENTED)
    async with retention.kept_for(col, "at", DAY, every_s=0.02, first_s=(0.0, 0.0)) as expires:
        await asyncio.sleep(0.07)
    assert not expires
    assert len(seen.deletes) >= 2
    cutoff = seen.deletes[0]["at"]["$lt"]
    assert abs(datetime.now(UTC) - DAY - cutoff) < timedelta(seconds=5)
    # Closed: the pruning stops with it.
    pruned = len(seen.deletes)
    await asyncio.sleep(0.05)
    assert len(seen.deletes) == pruned
