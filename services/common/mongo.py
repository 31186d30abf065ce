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
