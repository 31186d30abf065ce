"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.common.media_store import MediaStore
from services.common.settings import Settings


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[MediaStore]:
    """The real S3 media store under the test's own key prefix, emptied afterwards."""
    async with MediaStore.from_settings(settings) as media:
        await media.ensure_bucket()
        try:
            yield media
        finally:
            await media.delete_prefix("")
