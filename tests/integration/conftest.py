"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.common.media_store import MediaStore
from services.common.settings import Settings

MiB = 1024 * 1024


async def _store(settings: Settings) -> AsyncIterator[MediaStore]:
    async with MediaStore.from_settings(settings) as media:
        await media.ensure_bucket()
        try:
            yield media
        finally:
            await media.delete_prefix("")


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[MediaStore]:
    """The real S3 media store under the test's own key prefix, emptied afterwards."""
    async for media in _store(settings):
        yield media


@pytest.fixture
async def small_part_store(settings: Settings) -> AsyncIterator[MediaStore]:
    """:func:`store` uploading in parts of 5 MiB, the least S3 takes: multipart uploads
    of a few parts from files of a few tens of MiB."""
    async for media in _store(settings.model_copy(update={"s3_multipart_threshold": 5 * MiB})):
        yield media
