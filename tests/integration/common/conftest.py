"""Fixtures of the kit's MongoDB adapter tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.common.mongo import Doc, connect, database
from services.common.settings import Settings


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[AsyncDatabase[Doc]]:
    """This test's own database on the stack's MongoDB server."""
    mongo = connect(settings)
    try:
        yield database(mongo, settings)
    finally:
        await mongo.close()
