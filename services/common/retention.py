"""Old documents leave a collection: by the server itself where it has TTL indexes
(MongoDB), by a periodic delete where it has not (FerretDB 1.x answers a TTL index with
NotImplemented).

Every process that keeps a collection this way prunes it, a little after it starts and
then every hour: a short-lived process (a ``make run``, a test stack restarted daily)
prunes too, and the deletes of two processes at once are the same delete twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Final

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import OperationFailure

from services.common.mongo import Doc

log = logging.getLogger(__name__)

NOT_IMPLEMENTED: Final = 238
# An index on the same key already exists with other options (a plain one, made before the
# collection expired anything, or a TTL index of another age).
INDEX_OPTIONS_CONFLICT: Final = 85
INDEX_KEY_SPECS_CONFLICT: Final = 86
PRUNE_EVERY_S: Final = 3600.0
# The first prune comes this long after the start, give or take: not in the start's rush,
# and not all processes of a deployment at the same moment.
FIRST_PRUNE_S: Final = (5.0, 60.0)


async def expire_after(col: AsyncCollection[Doc], field: str, age: timedelta) -> bool:
    """Index ``field`` (a date) so the server deletes documents older than ``age``; True
    when it will, False when it cannot (the index is then a plain one, for pruning)."""
    seconds = int(age.total_seconds())
    try:
        await col.create_index(field, expireAfterSeconds=seconds)
    except OperationFailure as exc:
        if exc.code == NOT_IMPLEMENTED:
            await col.create_index(field)
            return False
        if exc.code not in (INDEX_OPTIONS_CONFLICT, INDEX_KEY_SPECS_CONFLICT):
            raise
        # Changed in place: dropping and remaking it would leave the prune unindexed, and a
        # large collection without its index for as long as the build takes.
        await col.database.command({
            "collMod": col.name,
            "index": {"keyPattern": {field: 1}, "expireAfterSeconds": seconds},
        })  # fmt: skip
    return True


async def prune(col: AsyncCollection[Doc], field: str, age: timedelta) -> int:
    """Delete the documents whose ``field`` is older than ``age``; how many went."""
    result = await col.delete_many({field: {"$lt": datetime.now(UTC) - age}})
    return result.deleted_count


@asynccontextmanager
async def kept_for(
    col: AsyncCollection[Doc],
    field: str,
    age: timedelta,
    *,
    every_s: float = PRUNE_EVERY_S,
    first_s: tuple[float, float] = FIRST_PRUNE_S,
) -> AsyncIterator[bool]:
    """Keep ``col``'s documents for ``age`` after their ``field``, for as long as this is
    open; yields whether the server expires them itself (else this prunes them)."""
    if await expire_after(col, field, age):
        yield True
        return

    async def loop() -> None:
        delay = random.uniform(*first_s)
        while True:
            await asyncio.sleep(delay)
            delay = every_s
            try:
                if gone := await prune(col, field, age):
                    log.info("%s: pruned %d documents older than %s", col.name, gone, age)
            except Exception as exc:
                # An outage delays the prune to the next round, never the service.
                log.warning("%s: prune failed: %r", col.name, exc)

    task = asyncio.create_task(loop(), name=f"prune-{col.name}")
    try:
        yield False
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
