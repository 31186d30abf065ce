"""Isolated names (topic prefix, database, S3 prefix) for a whole test module, for modules
whose tests share one set of running services: the ``settings`` fixture is per test."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from services.common.settings import Settings


@contextmanager
def isolated_names(stack: Settings) -> Iterator[Settings]:
    from tests.conftest import _cleanup

    test_id = uuid.uuid4().hex[:12]
    s = stack.model_copy(
        update={
            "topic_prefix": f"t{test_id}.",
            "mongo_db": f"t_{test_id}",
            "s3_key_prefix": f"tests/{test_id}/",
        }
    )
    try:
        yield s
    finally:
        asyncio.run(_cleanup(s))
