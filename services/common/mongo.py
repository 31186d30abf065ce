"""MongoDB connection (async PyMongo) built once at start-up."""

from __future__ import annotations

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
    )  # fmt: skip


def database(client: AsyncMongoClient[Doc], settings: Settings) -> AsyncDatabase[Doc]:
    return client[settings.mongo_db]
