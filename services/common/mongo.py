"""MongoDB connection (async PyMongo) built once at start-up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.common.settings import Settings

Doc = dict[str, Any]


def connect(settings: Settings, app_name: str = "tapedeck") -> AsyncMongoClient[Doc]:
    # tz_aware so datetimes come back as UTC-aware, the only kind the schemas accept.
    return AsyncMongoClient(
        settings.mongo_url, tz_aware=True, appname=app_name,
        serverSelectionTimeoutMS=settings.mongo_timeout_ms,
        connectTimeoutMS=settings.mongo_timeout_ms,
        socketTimeoutMS=settings.mongo_socket_timeout_ms,
    )  # fmt: skip


@asynccontextmanager
async def open_database(settings: Settings, app_name: str) -> AsyncIterator[AsyncDatabase[Doc]]:
    """The service's database, its client closed on the way out."""
    client = connect(settings, app_name)
    try:
        yield database(client, settings)
    finally:
        await client.close()


def database(client: AsyncMongoClient[Doc], settings: Settings) -> AsyncDatabase[Doc]:
    return client[settings.mongo_db]


async def scans_unless_by_id(db: AsyncDatabase[Doc]) -> bool:
    """Whether the server answers a filter from an index only when it is ``_id`` alone.

    FerretDB 1.x does that: a filter on ``_id`` and any other field (a conditional
    update's) reads the whole collection, so its cost grows with the collection. It does
    not apply such a filter atomically either (see the README), so on it nothing is lost
    by reading by ``_id``, checking the condition here and writing by ``_id``.
    """
    info = await db.client.admin.command("buildInfo")
    return str(info.get("ferretdbVersion", "")).startswith("v1.")
