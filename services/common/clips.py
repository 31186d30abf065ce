"""Clip metadata in MongoDB: the ``audio_clips`` cache records and the request log that
steers cache warming. The rules that plan a clip are in ``clip_rules``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, OperationFailure

from services.common.clip_rules import ClipPlan
from services.common.mongo import Doc

log = logging.getLogger(__name__)

AUDIO_CLIPS = "audio_clips"
REQUEST_LOG = "clip_request_log"
NAMESPACE_EXISTS = 48


AUDIO_CLIPS_VALIDATOR = {
    "$jsonSchema": {
        "bsonType": "object",
        "required": [
            "tenant_id",
            "episode_id",
            "clip_start_ms",
            "clip_end_ms",
            "s3_key",
            "generated_at",
            "file_size_bytes",
        ],
        "properties": {
            "tenant_id": {"bsonType": "string"},
            "episode_id": {"bsonType": "string"},
            "clip_start_ms": {"bsonType": ["int", "long"]},
            "clip_end_ms": {"bsonType": ["int", "long"]},
            "s3_key": {"bsonType": "string"},
            "generated_at": {"bsonType": "date"},
            "file_size_bytes": {"bsonType": ["int", "long"]},
            "format": {"bsonType": "string"},
        },
    }
}


@dataclass(frozen=True)
class RequestCount:
    """``requests`` identical requests for one clip range, the first at ``first_at``."""

    plan: ClipPlan
    tenant_id: str
    cache_hit: bool
    requests: int
    first_at: datetime


def check_clip_doc(doc: Doc) -> None:
    """The validator's rules, applied in process for servers that lack ``$jsonSchema``
    (FerretDB 1.x), so no server lets a malformed clip document in."""
    schema = AUDIO_CLIPS_VALIDATOR["$jsonSchema"]
    for name in schema["required"]:
        if name not in doc:
            raise ValueError(f"audio_clips document misses {name}")
    for name in ("clip_start_ms", "clip_end_ms", "file_size_bytes"):
        if not isinstance(doc[name], int) or isinstance(doc[name], bool):
            raise ValueError(f"audio_clips.{name} must be an int")
    for name in ("tenant_id", "episode_id", "s3_key"):
        if not isinstance(doc[name], str):
            raise ValueError(f"audio_clips.{name} must be a string")
    if not isinstance(doc["generated_at"], datetime):
        raise ValueError("audio_clips.generated_at must be a date")


class ClipStore:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._db = db
        self._clips = db[AUDIO_CLIPS]
        self._log = db[REQUEST_LOG]
        self.server_validates = False

    async def _create(self, **options: Any) -> bool:
        """Whether this call made the collection. The server's own check
        (check_exists=False): several submitters start at once, and the one that loses the
        race finds it made (NamespaceExists) instead of failing its start."""
        try:
            await self._db.create_collection(AUDIO_CLIPS, check_exists=False, **options)
        except OperationFailure as exc:
            if exc.code != NAMESPACE_EXISTS:
                raise
            return False
        return True

    async def ensure_collections(self) -> None:
        if AUDIO_CLIPS not in await self._db.list_collection_names():
            try:
                self.server_validates = await self._create(validator=AUDIO_CLIPS_VALIDATOR)
            except OperationFailure as exc:
                if exc.code != 238:  # NotImplemented: FerretDB has no $jsonSchema
                    raise
                log.info("server has no $jsonSchema validators; validating in process")
                await self._create()
        # Episode ids are per tenant; the same range in another format or cut mode is
        # another object: all of it in the key.
        await self._clips.create_index(
            [
                ("tenant_id", 1),
                ("episode_id", 1),
                ("clip_start_ms", 1),
                ("clip_end_ms", 1),
                ("format", 1),
                ("accurate", 1),
            ],
            unique=True,
            name="tenant_clip_range_unique",
        )
        await self._log.create_index([("requested_at", 1)])

    async def find(self, plan: ClipPlan) -> Doc | None:
        return await self._clips.find_one(_range_filter(plan))

    async def insert(self, plan: ClipPlan, size_bytes: int, generation_ms: int) -> Doc:
        """Record a generated clip; when another process recorded it first, theirs stands."""
        doc: Doc = {
            "tenant_id": plan.tenant_id,
            "episode_id": plan.episode_id,
            "clip_start_ms": plan.start_ms,
            "clip_end_ms": plan.end_ms,
            "format": plan.format,
            "accurate": plan.accurate,
            "s3_key": plan.key,
            "generated_at": datetime.now(UTC),
            "file_size_bytes": size_bytes,
            "generation_time_ms": generation_ms,
        }
        check_clip_doc(doc)
        try:
            await self._clips.insert_one(doc)
        except DuplicateKeyError:
            existing = await self.find(plan)
            if existing is not None:
                return existing
            raise
        return doc

    async def log_request(self, plan: ClipPlan, tenant_id: str, cache_hit: bool) -> None:
        # One insert per request rather than a shared counter: nothing to race on.
        await self._log.insert_one(_log_doc(plan, tenant_id, cache_hit, datetime.now(UTC)))

    async def log_requests(self, counts: Sequence[RequestCount]) -> None:
        """Many requests in one insert: an entry per range stands for ``1 + repeats``
        requests (entries without ``repeats``, as :meth:`log_request` writes, for one)."""
        if counts:
            docs = [
                {**_log_doc(c.plan, c.tenant_id, c.cache_hit, c.first_at),
                 "repeats": c.requests - 1}
                for c in counts
            ]  # fmt: skip
            await self._log.insert_many(docs, ordered=False)

    async def most_requested(self, since: timedelta, limit: int) -> list[Doc]:
        """Clip ranges by request count over the last ``since``, most requested first."""
        # An entry stands for one request plus its ``repeats`` (absent: none). FerretDB
        # 1.x has no $ifNull to default it, and computes only the first accumulator of a
        # $group right (measured: a second one sums to 0), so entries and repeats are
        # summed by two pipelines and added up here.
        since_at = datetime.now(UTC) - since
        entries = await self._sum_per_range(since_at, 1)
        repeats = await self._sum_per_range(since_at, "$repeats")
        totals = sorted(((n + repeats.get(key, 0), key) for key, n in entries.items()),
                        key=lambda t: t[0], reverse=True)  # fmt: skip
        return [{**dict(key), "count": n} for n, key in totals[:limit]]

    async def _sum_per_range(
        self, since_at: datetime, summed: int | str
    ) -> dict[tuple[tuple[str, object], ...], int]:
        pipeline: list[Doc] = [
            {"$match": {"requested_at": {"$gte": since_at}}},
            {
                "$group": {
                    "_id": {
                        "tenant_id": "$tenant_id",
                        "episode_id": "$episode_id",
                        "start_ms": "$clip_start_ms",
                        "duration_ms": "$duration_ms",
                        "format": "$format",
                        "accurate": "$accurate",
                    },
                    "n": {"$sum": summed},
                }
            },
        ]
        cursor = await self._log.aggregate(pipeline)
        return {tuple(d["_id"].items()): int(d["n"] or 0) async for d in cursor}

    async def prune_requests(self, older_than: timedelta) -> int:
        res = await self._log.delete_many({"requested_at": {"$lt": datetime.now(UTC) - older_than}})
        return res.deleted_count


def _log_doc(plan: ClipPlan, tenant_id: str, cache_hit: bool, at: datetime) -> Doc:
    return {
        "episode_id": plan.episode_id,
        "clip_start_ms": plan.start_ms,
        "duration_ms": plan.duration_ms,
        "clip_end_ms": plan.end_ms,
        "format": plan.format,
        "accurate": plan.accurate,
        "tenant_id": tenant_id,
        "cache_hit": cache_hit,
        "requested_at": at,
    }


def _range_filter(plan: ClipPlan) -> Doc:
    return {
        "tenant_id": plan.tenant_id,
        "episode_id": plan.episode_id,
        "clip_start_ms": plan.start_ms,
        "clip_end_ms": plan.end_ms,
        "format": plan.format,
        "accurate": plan.accurate,
    }
